"""Persisted study throughput on the headline study (studies/llama3-70b-8dev.yaml: Llama-3-70B on
8 devices, NSGA-II with populations of 100), every trial committed to SQLite: Optuna's NSGA-II on
the batch path (a generation asked through Optuna, scored in one vectorised call, told, committed
in one transaction), pymoo's NSGA-II engine on the same path (pymoo breeds the generation in
numpy), and Optuna's NSGA-II one trial at a time (scored alone, one transaction per trial), all
in the same run, interleaved."""
from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ador.explore import batch
from ador.explore.runner import open_study, run_trials
from benchmarks.search_quality import _study


def trials_per_s(study, n: int, batched: bool, folder: Path, tag: str, sampler: str | None = None) -> float:
    s = dataclasses.replace(study, name=f"speed-{tag}")
    durable, _ = open_study(s, f"sqlite:///{folder / s.name}.db", sampler=sampler)
    batch.ENABLED = batched
    try:
        start = time.perf_counter()
        run_trials(s, durable, n, progress=False, sampler=sampler)
        return n / (time.perf_counter() - start)
    finally:
        batch.ENABLED = True


def run(quick: bool = False) -> dict[str, Any]:
    study = _study("studies/llama3-70b-8dev.yaml")
    n = 300 if quick else 3000
    repeats = 1 if quick else 3
    batched, pymoo, scalar = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):           # interleaved, so drift of the shared machine hits all three
            batched.append(trials_per_s(study, n, True, Path(tmp), f"b{i}"))
            pymoo.append(trials_per_s(study, n, True, Path(tmp), f"p{i}", sampler="pymoo-nsga2"))
            scalar.append(trials_per_s(study, n, False, Path(tmp), f"s{i}"))
    return {"trials": n, "batch_trials_per_s": statistics.median(batched),
            "pymoo_trials_per_s": statistics.median(pymoo), "scalar_trials_per_s": statistics.median(scalar),
            "batch_spread": [min(batched), max(batched)], "pymoo_spread": [min(pymoo), max(pymoo)],
            "scalar_spread": [min(scalar), max(scalar)]}
