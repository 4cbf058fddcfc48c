"""Serving simulator speed: requests simulated per second (Llama-3-70B, 8 devices, TP8, Poisson
arrivals, long-tailed lengths). Baseline in the same run: the same simulation pricing every piece
from the operator graph with the piece cache (and graph cache) disabled, on fewer requests."""
from __future__ import annotations

import statistics
import time
from typing import Any

from ador.hardware import PRESETS, System
from ador.perf import iteration
from ador.serving import Lengths, SchedulerConfig, poisson, simulate
from ador.workload import get_model, get_precision

REQUESTS = 10_000


def _time(system, n: int, policy: str, cache: bool) -> float:
    model, precision = get_model("llama-3-70b"), get_precision("fp16")
    reqs = poisson(4.0, n, Lengths("lognormal", 512, 1.0), Lengths("lognormal", 128, 1.0), seed=1)
    original = iteration.IterationCost.__init__
    if not cache:
        def uncached(self, *a, **k):
            original(self, *a, **{**k, "cache": False})
        iteration.IterationCost.__init__ = uncached  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        simulate(system, model, precision, reqs, config=SchedulerConfig(policy=policy))
        return n / (time.perf_counter() - start)
    finally:
        iteration.IterationCost.__init__ = original  # type: ignore[method-assign]


def run(quick: bool = False) -> dict[str, Any]:
    n = 2_000 if quick else REQUESTS
    repeats = 2 if quick else 3
    out: dict[str, Any] = {"requests": n}
    for name, system, policy in (("a100_continuous", System(device=PRESETS["a100-sxm-80gb"], tp=8), "continuous"),
                                 ("ador_concurrent", System(device=PRESETS["ador-example"], tp=8), "concurrent")):
        rates = [_time(system, n, policy, True) for _ in range(repeats)]
        base = _time(system, 300 if quick else 1000, policy, False)
        out[name] = {"requests_per_s": statistics.median(rates), "spread": [min(rates), max(rates)],
                     "seconds_for_10k": REQUESTS / statistics.median(rates), "uncached_requests_per_s": base,
                     "speedup_vs_uncached": statistics.median(rates) / base}
    out["serving_requests_per_s"] = min(out["a100_continuous"]["requests_per_s"],
                                        out["ador_concurrent"]["requests_per_s"])
    return out
