"""Search quality: the hypervolume a sampler's feasible front reaches after a trial budget, as a
fraction of the exact front's (``ador.explore.enumerate``: every design of the space scored).

Full run: the quality study (studies/quality.yaml: Llama-3-70B on 8 devices, p99 TBT vs output
tokens/s per mm2, TDP <= 1000 W) on a 2,913,120-design space; NSGA-II, TPE, pymoo NSGA-II and
random search at 1,000 / 5,000 / 20,000 trials, three seeds each. ``--quick``: the smoke study
(1,728 designs) at 100 / 200 trials, one seed, so CI stays fast.

Hypervolume is exact (moocore), in objectives scaled to [0, 1] over every feasible design of the
space (the range ``enumerate`` records), against the reference point 1.1 in every objective.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ador.explore.config import load_study
from ador.explore.enumerate import enumerate_front
from ador.explore.record import is_feasible
from ador.explore.runner import open_study, run_trials
from benchmarks.study_speed import REPO

SAMPLERS = ("nsga2", "tpe", "pymoo-nsga2", "random")
FULL = {"study": "studies/quality.yaml", "budgets": (1000, 5000, 20000), "seeds": (1, 2, 3)}
QUICK = {"study": "studies/smoke.yaml", "budgets": (100, 200), "seeds": (1,)}
# budgets past which a sampler's run would take hours on two cores, left out and shown as not run
# (none now: TPE's estimators were built over every trial until ador bounded them, and it stopped at
# 5,000)
MAX_TRIALS: dict[str, int] = {}


def _study(path: str):
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return load_study(path)
    finally:
        os.chdir(cwd)


def sampler_fractions(study, front, sampler: str, seed: int, budgets, folder: Path) -> list[float | None]:
    """The hypervolume fraction after each budget of one sampler's run (None: budget not run)."""
    s = dataclasses.replace(study, name=f"q-{sampler}-{seed}")
    durable, _ = open_study(s, f"sqlite:///{folder / s.name}.db", sampler=sampler, seed=seed)
    out: list[float | None] = []
    done = 0
    for budget in budgets:
        if budget > MAX_TRIALS.get(sampler, budget):
            out.append(None)
            continue
        run_trials(s, durable, budget - done, progress=False)
        done = budget
        feasible = [t.values for t in durable.get_trials(deepcopy=False) if is_feasible(t)]
        out.append(front.fraction(feasible))
    return out


def run(quick: bool = False, samplers=SAMPLERS) -> dict[str, Any]:
    setup = QUICK if quick else FULL
    study = _study(str(setup["study"]))
    front = enumerate_front(study)
    budgets: tuple[int, ...] = setup["budgets"]       # type: ignore[assignment]
    seeds: tuple[int, ...] = setup["seeds"]           # type: ignore[assignment]
    # the exact front, and so every fraction, moves with the model: a figure names the version it measured
    out: dict[str, Any] = {"study": study.name, "space_designs": front.designs, "feasible_designs": front.feasible,
                           "true_front_size": len(front.points), "model_version": front.model_version,
                           "enumerate_s": front.seconds,
                           "budgets": list(budgets), "seeds": list(seeds), "fractions": {}, "seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in samplers:
            start = time.perf_counter()
            runs = [sampler_fractions(study, front, sampler, seed, budgets, Path(tmp)) for seed in seeds]
            out["seconds"][sampler] = time.perf_counter() - start
            # per budget: the fraction of each seed
            out["fractions"][sampler] = [[r[i] for r in runs] for i in range(len(budgets))]
    nsga = out["fractions"]["nsga2"] if "nsga2" in out["fractions"] else None
    if nsga:
        for budget, per_seed in zip(budgets, nsga):
            out[f"hv_fraction_{budget}"] = min(per_seed)
    return out


def table(quality: dict[str, Any]) -> list[str]:
    """Rows of the printed table: mean over seeds [lowest seed] per budget."""
    rows = [f"{'sampler':14}" + "".join(f"{b:>20,}" for b in quality["budgets"]) + "    seconds"]
    for sampler, per_budget in quality["fractions"].items():
        cells = []
        for per_seed in per_budget:
            if any(f is None for f in per_seed):
                cells.append(f"{'not run':>20}")
            else:
                cells.append(f"{100 * sum(per_seed) / len(per_seed):12.1f}% [{100 * min(per_seed):5.1f}]")
        rows.append(f"{sampler:14}" + "".join(cells) + f"{quality['seconds'][sampler]:11.0f}")
    return rows
