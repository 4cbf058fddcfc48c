"""Search quality: hypervolume reached after a trial budget, as a fraction of the hypervolume of
the true Pareto front of the smoke space (450 designs, enumerated exhaustively).

Hypervolume is exact (moocore), in objectives normalised to the range of all feasible designs of
the space, with the reference point 1.1 in every normalised objective.
"""
from __future__ import annotations

import dataclasses
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from ador.explore.pareto import hypervolume, normaliser, pareto_mask
from ador.explore.runner import Scorer, open_study, run_trials
from benchmarks.study_speed import _study

SAMPLERS = ("nsga2", "tpe", "pymoo-nsga2")


def exhaustive_front(study):
    scorer = Scorer(study)
    names = list(study.space.knobs)
    grids = [study.space.knobs[n].grid(n) for n in names]
    points = []
    for combo in itertools.product(*grids):
        out = scorer(dict(zip(names, combo)))
        if out.values is not None and out.user_attrs["feasible"]:
            points.append(out.values)
    mask = pareto_mask(points, study.directions)
    return points, [p for p, m in zip(points, mask) if m]


def run(quick: bool = False) -> dict[str, Any]:
    study = _study()
    start = time.perf_counter()
    all_points, front = exhaustive_front(study)
    enumerate_s = time.perf_counter() - start
    scale = normaliser(all_points, study.directions)
    true_hv = hypervolume(front, study.directions, scale=scale)
    budgets = (100, 200) if quick else (500, 1000, 2000)
    out: dict[str, Any] = {"space_designs": len(all_points), "true_front_size": len(front),
                              "enumerate_s": enumerate_s, "true_hv": true_hv, "budgets": list(budgets),
                              "fractions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in SAMPLERS:
            s = dataclasses.replace(study, name=f"q-{sampler}")
            durable, _ = open_study(s, f"sqlite:///{Path(tmp) / sampler}.db", sampler=sampler, seed=5)
            fractions = []
            done = 0
            for budget in budgets:
                run_trials(s, durable, budget - done, progress=False)
                done = budget
                feasible = [t.values for t in durable.get_trials(deepcopy=False)
                            if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
                fractions.append(hypervolume(feasible, study.directions, scale=scale) / true_hv)
            out["fractions"][sampler] = fractions
    out["hv_fraction_2000" if not quick else f"hv_fraction_{budgets[-1]}"] = out["fractions"]["nsga2"][-1]
    return out
