"""How ador's NSGA-II default crossover was chosen (docs/performance.md, "Crossover"), as a command:

    python -m benchmarks.crossover_choice            # about 6 minutes on 2 cores
    python -m benchmarks.crossover_choice --single   # each 5,000-trial run in one piece
    python -m benchmarks.crossover_choice --quick    # the smoke study, to check that it runs

1. The quality study (exact front from ``enumerate``): the hypervolume fraction at 5,000 trials of
   NSGA-II with each of Optuna's numerical crossovers on the seeds the choice was made on (1-3),
   then of uniform, BLX-alpha and VSBX on seeds it was not made on (4-9). As the search-quality
   benchmark runs them, 1,000 trials and then 4,000 more (a resume: the sampler's random stream
   restarts from the seed and the stored count); ``--single`` runs the 5,000 at once, another
   stream of the same seeds.
2. The headline study (llama3-70b-8dev, no exact front): the hypervolume of each run's feasible
   designs after 3,000 trials, uniform against VSBX on seeds 1-4, in one box over every run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ador.explore.config import SamplerSpec
from ador.explore.pareto import hypervolume, to_minimise
from ador.explore.record import is_feasible
from ador.explore.runner import open_study, run_trials
from benchmarks.search_quality import _study, sampler_fractions

CHOICE = ("uniform", "sbx", "blxalpha", "vsbx", "undx")
CHECK = ("uniform", "blxalpha", "vsbx")


def _with(study, crossover: str, name: str):
    options = {**study.spec.sampler.options, "crossover": crossover}
    spec = dataclasses.replace(study.spec, sampler=SamplerSpec("nsga2", options))
    return dataclasses.replace(study, name=name, spec=spec)


def quality(crossovers, seeds, budgets: tuple[int, ...], path: str) -> dict[str, list[float]]:
    """Per crossover, each seed's fraction after the last of ``budgets`` (run one after another)."""
    from ador.explore.enumerate import enumerate_front
    study = _study(path)
    front = enumerate_front(study)
    out = {}
    for c in crossovers:
        with tempfile.TemporaryDirectory() as tmp:       # one folder per crossover: the runs share names
            runs = [sampler_fractions(_with(study, c, f"x-{c}"), front, "nsga2", s, budgets, Path(tmp))[-1]
                    for s in seeds]
        out[c] = [float(x) for x in runs if x is not None]
    return out


def headline(crossovers, seeds, trials: int, path: str) -> dict[str, list[float]]:
    study = _study(path)
    points: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in crossovers:
            for s in seeds:
                run = _with(study, c, f"h-{c}-{s}")
                durable, _ = open_study(run, f"sqlite:///{tmp}/{run.name}.db", sampler="nsga2", seed=s)
                run_trials(run, durable, trials, progress=False)
                points[(c, s)] = [t.values for t in durable.get_trials(deepcopy=False) if is_feasible(t)]
    every = to_minimise([v for vs in points.values() for v in vs], study.directions)
    lo, hi = every.min(axis=0), every.max(axis=0)

    def scale(q):
        return (to_minimise(q, study.directions) - lo) / np.where(hi > lo, hi - lo, 1.0)
    return {c: [hypervolume(points[(c, s)], study.directions, scale=scale) for s in seeds] for c in crossovers}


def run(quick: bool = False, single: bool = False) -> dict[str, Any]:
    q: tuple[str, tuple[int, ...], tuple[int, ...], int]
    h: tuple[str, tuple[int, ...], int]
    if quick:
        q = ("studies/smoke.yaml", (1,), (2,), 100)
        h = ("studies/smoke.yaml", (1,), 100)
    else:
        q = ("studies/quality.yaml", (1, 2, 3), (4, 5, 6, 7, 8, 9), 5000)
        h = ("studies/llama3-70b-8dev.yaml", (1, 2, 3, 4), 3000)
    path, choice_seeds, check_seeds, budget = q
    budgets = (budget,) if single else (budget // 5, budget)
    out = {"budgets": list(budgets),
           "choice": quality(CHOICE, choice_seeds, budgets, path),
           "check": quality(CHECK, check_seeds, budgets, path),
           "headline": headline(("uniform", "vsbx"), h[1], h[2], h[0])}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smoke study, one seed")
    parser.add_argument("--single", action="store_true", help="each quality-space run in one piece")
    args = parser.parse_args()
    r = run(args.quick, args.single)
    for part in ("choice", "check", "headline"):
        for c, values in r[part].items():
            shown = ", ".join(f"{v:.4f}" for v in values)
            print(f"{part:9} {c:9} mean {statistics.fmean(values):.4f}  ({shown})")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
