"""Single-design evaluation speed: Llama-3-70B, TP8, prefill of 128 x 2048 and decode at batch 128.

The study case is a fixed workload and a stream of new designs, so the operator graph is built
once (cached) and each evaluation prices it on a new design. The baseline in the same run
rebuilds the graph every time, which is what evaluating without the cache would cost.
"""
from __future__ import annotations

import dataclasses
import random

from ador.hardware import PRESETS, AdorChip, System
from ador.perf import evaluate
from ador.workload import get_model, get_precision
from ador.workload.graph import build_iteration

from benchmarks.common import Rate, rate

MODEL = "llama-3-70b"
TP = 8
BATCH = 128
INPUT_LEN = 2048
OUTPUT_LEN = 128


def random_designs(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    base = PRESETS["ador-example"]
    assert isinstance(base, AdorChip)
    designs = []
    for _ in range(n):
        designs.append(dataclasses.replace(
            base,
            systolic=dataclasses.replace(base.systolic, count=rng.randint(1, 32), rows=rng.choice([64, 128, 256]),
                                         cols=rng.choice([64, 128, 256])),
            mactree=dataclasses.replace(base.mactree, count=rng.randint(1, 256), width=rng.choice([64, 256, 1024])),
            hbm=dataclasses.replace(base.hbm, stacks=rng.randint(4, 8)),
            freq_hz=rng.uniform(0.8e9, 2.0e9),
        ))
    return designs


def _quality_study():
    from benchmarks.search_quality import _study
    return _study("studies/quality.yaml")


def knob_columns(space, n: int, seed: int = 0) -> dict:
    """``n`` random designs of ``space`` as knob columns (what a batch of trials or a chunk of an
    enumeration is)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return {name: np.array(knob.grid(name))[rng.integers(0, knob.size(name), n)] for name, knob in space.knobs.items()}


def run(quick: bool = False) -> dict[str, Rate]:
    model, precision = get_model(MODEL), get_precision("fp16")
    designs = random_designs(200 if quick else 2000)
    systems = [System(device=d, tp=TP) for d in designs]

    def warm() -> int:
        for s in systems:
            evaluate(s, model, precision, batch=BATCH, input_len=INPUT_LEN, output_len=OUTPUT_LEN, breakdown=False)
        return len(systems)

    def cold() -> int:
        few = systems[: max(20, len(systems) // 20)]
        for s in few:
            build_iteration.cache_clear()
            evaluate(s, model, precision, batch=BATCH, input_len=INPUT_LEN, output_len=OUTPUT_LEN, breakdown=False)
        return len(few)

    def with_breakdown() -> int:
        few = systems[: len(systems) // 4]
        for s in few:
            evaluate(s, model, precision, batch=BATCH, input_len=INPUT_LEN, output_len=OUTPUT_LEN)
        return len(few)

    from ador.perf.population import chip_arrays, evaluate_population
    population = random_designs(5_000 if quick else 20_000, seed=1)
    arrays = chip_arrays(population)

    def vector() -> int:
        evaluate_population(arrays, model, precision, batch=BATCH, input_len=INPUT_LEN, output_len=OUTPUT_LEN, tp=TP)
        return len(population)

    def vector_with_conversion() -> int:
        evaluate_population(chip_arrays(population), model, precision, batch=BATCH, input_len=INPUT_LEN,
                            output_len=OUTPUT_LEN, tp=TP)
        return len(population)

    from ador.explore.metrics import Workload
    from ador.explore.vector import population_metrics
    workload = Workload(BATCH, INPUT_LEN, OUTPUT_LEN)

    def vector_all_metrics() -> int:
        population_metrics(arrays, model, precision, workload, tp=TP)
        return len(population)

    from ador.explore.batch import BatchScorer
    from ador.explore.columns import design_arrays
    from ador.explore.runner import Scorer
    study = _quality_study()
    score = BatchScorer(Scorer(study))
    columns = knob_columns(study.space, len(population), seed=2)

    def vector_from_knobs() -> int:
        designs = design_arrays(study.space, columns)
        metrics = score.metrics(designs.arrays)
        score.feasible(metrics)
        return len(population)

    repeats = 3 if quick else 7
    warm()  # fill the graph cache, as the first trial of a study does
    vector()
    return {
        "vector_eval_per_s": rate("population, numpy over designs", vector, repeats),
        "vector_all_metrics_per_s": rate("population, every study metric", vector_all_metrics, repeats),
        "vector_from_knobs_per_s": rate("population from knob values, judged", vector_from_knobs, repeats),
        "vector_eval_with_conversion_per_s": rate("population, incl. building the arrays", vector_with_conversion,
                                                  repeats),
        "eval_per_s": rate("evaluate (cached graph, no breakdown)", warm, repeats),
        "eval_breakdown_per_s": rate("evaluate (cached graph, with breakdown)", with_breakdown, repeats),
        "eval_cold_per_s": rate("baseline: evaluate rebuilding the graph", cold, repeats),
    }
