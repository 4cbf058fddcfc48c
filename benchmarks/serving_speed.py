"""Serving simulator speed and memory.

Speed: scheduler iterations simulated per second of one core, Llama-3-70B on 8 devices (TP8),
Poisson arrivals at 4/s, long-tailed lengths (mean prompt 512, output 128), per policy. Baseline
in the same run: the same simulation executing one decode iteration per scheduling decision
(``step_by_step``: what the closed-form decode runs replace; the results are identical).

Memory: peak resident memory of a fresh process that simulates N requests (Llama-3-8B on one
H100 at 30 requests/s), at N = 1M and at N/10, next to the same process before simulating. The
simulator keeps only the requests in the system and streams latencies into histograms, so the
peak should not grow with N.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from ador.hardware import PRESETS, System
from ador.serving import Lengths, SchedulerConfig, poisson, simulate
from ador.workload import get_model, get_precision

REQUESTS = 10_000
MEMORY_REQUESTS = 1_000_000
CASES = (("a100_continuous", "a100-sxm-80gb", "continuous"), ("a100_chunked", "a100-sxm-80gb", "chunked"),
         ("ador_concurrent", "ador-example", "concurrent"))

_CHILD = """
import json, resource, sys, time
from ador.hardware import PRESETS, System
from ador.serving import Lengths, poisson, simulate
from ador.workload import get_model, get_precision
n = int(sys.argv[1])
system = System(device=PRESETS["h100-sxm-80gb"], tp=1)
model, precision = get_model("llama-3-8b"), get_precision("fp16")
simulate(system, model, precision, poisson(30.0, 200, Lengths("lognormal", 512), Lengths("lognormal", 128)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reqs = poisson(30.0, n, Lengths("lognormal", 512, 1.0), Lengths("lognormal", 128, 1.0), seed=1)
start = time.perf_counter()
r = simulate(system, model, precision, reqs)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"requests": n, "finished": r.n_finished, "iterations": r.iterations, "seconds": seconds,
                  "rss_before_mb": before / 1024, "peak_rss_mb": after / 1024}))
"""


def _rate(system: System, policy: str, n: int, step_by_step: bool) -> tuple[float, int]:
    model, precision = get_model("llama-3-70b"), get_precision("fp16")
    reqs = poisson(4.0, n, Lengths("lognormal", 512, 1.0), Lengths("lognormal", 128, 1.0), seed=1)
    start = time.perf_counter()
    r = simulate(system, model, precision, reqs, config=SchedulerConfig(policy=policy), step_by_step=step_by_step)
    return r.iterations / (time.perf_counter() - start), r.iterations


def memory(n: int) -> dict[str, Any]:
    """Peak RSS of a fresh process simulating ``n`` requests (Linux ru_maxrss, kB)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    n = 2_000 if quick else REQUESTS
    repeats = 2 if quick else 3
    out: dict[str, Any] = {"requests": n}
    for name, hardware, policy in CASES:
        system = System(device=PRESETS[hardware], tp=8)
        _rate(system, policy, 500, False)                       # price the shapes once (shared cache)
        rates = [_rate(system, policy, n, False)[0] for _ in range(repeats)]
        base = [_rate(system, policy, n, True)[0] for _ in range(repeats)]
        out[name] = {"iterations_per_s": statistics.median(rates), "spread": [min(rates), max(rates)],
                     "iterations": _rate(system, policy, n, False)[1],
                     "step_by_step_iterations_per_s": statistics.median(base),
                     "speedup_vs_step_by_step": statistics.median(rates) / statistics.median(base)}
    out["scheduler_iterations_per_s"] = min(out[name]["iterations_per_s"] for name, _, _ in CASES)
    big = MEMORY_REQUESTS // 100 if quick else MEMORY_REQUESTS
    out["memory"] = {"small": memory(big // 10), "large": memory(big)}
    out["peak_rss_mb_at_1m"] = out["memory"]["large"]["peak_rss_mb"] if not quick else None
    return out
