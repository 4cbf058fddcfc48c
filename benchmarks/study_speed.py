"""Persisted study throughput: ador's default path vs plain Optuna + SQLite, same objective.

Both score the same designs with the same function and store the same per-trial data (the
design and its metrics as user attributes, constraint values), each trial committed to a SQLite
file before the next starts. The baseline is Optuna used as its docs show: study.optimize over a
SQLite RDBStorage with the NSGA-II sampler, on a file in WAL mode as ador's (the fair baseline:
one fsync per commit for both). A second baseline is the same Optuna study in memory (nothing
persisted). Runs alternate so drift hits both alike.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from ador.explore.config import load_study
from ador.explore.params import distributions, knob_values
from ador.explore.runner import Scorer, open_study, run_trials

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).resolve().parents[1]


def _study():
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return load_study("studies/smoke.yaml")
    finally:
        os.chdir(cwd)


def plain_optuna(study, n_trials: int, path: Path | None) -> float:
    """Plain Optuna's trials/s: on a SQLite file in WAL mode, or in memory (``path`` None)."""
    scorer = Scorer(study)
    dists = distributions(study.space)

    def objective(trial: optuna.Trial):
        params = {name: trial._suggest(name, dist) for name, dist in dists.items()}
        outcome = scorer(knob_values(study.space, params))
        for key, value in outcome.user_attrs.items():
            trial.set_user_attr(key, value)
        if outcome.values is None:
            raise optuna.TrialPruned()
        for key, c in outcome.constraints.items():
            trial.set_constraint(key, c)
        return outcome.values

    sampler = optuna.samplers.NSGAIISampler(seed=1, population_size=20)
    storage = None
    if path is not None:
        import sqlite3
        with sqlite3.connect(path) as conn:           # WAL is a property of the file: set before Optuna opens it
            conn.execute("PRAGMA journal_mode=WAL")
        storage = f"sqlite:///{path}"
    s = optuna.create_study(storage=storage, sampler=sampler, directions=study.directions, study_name="baseline")
    start = time.perf_counter()
    s.optimize(objective, n_trials=n_trials)
    return n_trials / (time.perf_counter() - start)


def ador_default(study, n_trials: int, path: Path) -> float:
    s = dataclasses.replace(study, name="ador")
    durable, _ = open_study(s, f"sqlite:///{path}")
    start = time.perf_counter()
    run_trials(s, durable, n_trials, progress=False)
    return n_trials / (time.perf_counter() - start)


def run(quick: bool = False) -> dict[str, Any]:
    study = _study()
    n = 60 if quick else 300
    repeats = 2 if quick else 3
    plain, memory, fast, ratios, mem_ratios = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            p = plain_optuna(study, n, Path(tmp) / f"plain{r}.db")
            m = plain_optuna(study, n, None)
            a = ador_default(study, n, Path(tmp) / f"ador{r}.db")
            plain.append(p)
            memory.append(m)
            fast.append(a)
            ratios.append(a / p)
            mem_ratios.append(a / m)
    return {
        "trials_per_run": n,
        "optuna_sqlite_trials_per_s": statistics.median(plain),
        "optuna_memory_trials_per_s": statistics.median(memory),
        "ador_trials_per_s": statistics.median(fast),
        "study_speedup_vs_optuna_sqlite": statistics.median(ratios),
        "study_speedup_spread": [min(ratios), max(ratios)],
        "study_speed_vs_optuna_memory": statistics.median(mem_ratios),
    }
