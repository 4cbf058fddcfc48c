"""What the die-synchronisation assumption is worth (docs/modelling.md, row "dies (chiplets)").

Each step of a die-level collective pays the runtime's software collective latency (fitted on
GPUs) besides the 2 ns die-to-die hop. This runs the 20 req/s system study (about 2 minutes), takes
its cheapest ADOR deployment, and scores it again with die steps at the bare hop: the p99 TBT, the
cost per million output tokens and the margin over the cheapest GPU system, both ways.

    python -c "from benchmarks import die_sync; print(die_sync.run())"
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.search_quality import _study


def run() -> dict[str, Any]:
    import optuna

    import ador.perf.rules as rules
    from ador.explore.record import design_of
    from ador.explore.runner import open_study, run_trials
    from ador.explore.system import Candidate, score_candidate
    from ador.hardware.components import D2D_LATENCY_S
    from ador.perf import stage
    from ador.report.what_to_buy import purchase
    from ador.serving import simulator
    from ador.workload import get_model, get_precision
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study("studies/llama3-70b-20rps.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        durable, _ = open_study(study, f"sqlite:///{Path(tmp) / 'die-sync.db'}")
        run_trials(study, durable, study.spec.trials, progress=False)
        bought = purchase(durable)
        assert bought.design is not None and bought.gpu is not None
        trial = durable.trials[bought.design.trial]
    p = trial.params
    design = design_of(study, trial)
    candidate = Candidate(design, p["system.tp"], p["system.pp"], get_precision(p["system.precision"]),
                          study.runtime_for("ador"), policy=p["serving.policy"],
                          max_batch=2 ** p["serving.max_batch:log2"], chunk_tokens=2 ** p["serving.chunk_tokens:log2"])
    gpu_cost = bought.gpu.metrics["cost_per_mtok_usd"]

    def score() -> dict[str, float]:
        stage._rates.cache_clear()
        simulator.iteration_cost.cache_clear()
        m, _ = score_candidate(candidate, get_model(study.spec.model), study.spec.load, study.spec.economics,
                               seed=study.spec.seed)
        assert m is not None
        return {"tbt_p99_ms": m["serving_tbt_p99_ms"], "cost_per_mtok_usd": m["cost_per_mtok_usd"],
                "replicas": m["replicas"], "margin_vs_gpu": gpu_cost / m["cost_per_mtok_usd"]}

    out: dict[str, Any] = {"trial": trial.number, "dies": getattr(design, "dies", 1), "modelled": score()}
    real = rules.rates_of

    def bare_hop(*args, **kwargs):
        r = real(*args, **kwargs)
        r.d2d_step_latency_s = D2D_LATENCY_S
        return r
    stage.rates_of = bare_hop           # the one place a system's rates are made (stage.rates)
    try:
        out["bare_hop"] = score()
    finally:
        stage.rates_of = real
        stage._rates.cache_clear()
        simulator.iteration_cost.cache_clear()
    return out
