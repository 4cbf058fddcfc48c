"""What the headline asks, in one place: the studies it runs (by role), the seeds, the baselines,
the batches and length mixes of the static view, and the serving view's load."""
from __future__ import annotations

from dataclasses import dataclass

# role -> shipped study file (studies/). The paper study is the ladder's first row (the comparison
# as the ADOR paper would make it); the symmetric study is the one the headline quotes; the two
# serving studies search designs by the simulator, under ADOR's concurrent policy and under
# chunked prefill.
PAPER, SYMMETRIC, SERVING_CONCURRENT, SERVING_CHUNKED = "paper", "symmetric", "serving-concurrent", "serving-chunked"
ROLES = {PAPER: "llama3-70b-8dev-paper", SYMMETRIC: "llama3-70b-8dev-iso",
         SERVING_CONCURRENT: "llama3-70b-8dev-serving-iso", SERVING_CHUNKED: "llama3-70b-8dev-serving-iso-chunked"}
STATIC_ROLES = (PAPER, SYMMETRIC)
SERVING_ROLES = (SERVING_CONCURRENT, SERVING_CHUNKED)

SEEDS = (1, 2, 3, 7, 11)            # >= 5 seeds per study: every ratio is a median with its range
REFERENCE = "a100-sxm-80gb"         # the GPU the ratios are taken against
BASELINES = ("a100-sxm-80gb", "h100-sxm-80gb", "h200-sxm-141gb", "b200-sxm-192gb", "mi300x-192gb")
BATCHES = (64, 128, 256)            # the static view, as the paper
# (label, mean prompt, mean output) of the sensitivity table's length mixes
LENGTH_MIXES = (("chat: 512 in / 256 out", 512, 256), ("long prompt: 8,192 in / 256 out", 8192, 256),
                ("long answer: 1,024 in / 1,024 out", 1024, 1024))
AREA_SCALES = (0.5, 1.5)            # MAC and SRAM area +-50%
PUBLISHED = {"tbt_x": 2.51, "area_eff_x": 4.01}     # ADOR paper: Llama-3-70B on 8 devices vs A100
WORKERS = 2                         # studies run side by side (one process each)


@dataclass(frozen=True)
class ServingPlan:
    """The serving view's load: Poisson arrivals of long-tailed requests, p99 SLOs."""
    requests: int = 1000
    input_len: int = 1024
    output_len: int = 256
    ttft_p99_ms: float = 2000.0
    tbt_p99_ms: float = 100.0
    attainment: float = 0.99        # capacity: the highest rate at which this share of requests meets both
    seed: int = 0


SERVING = ServingPlan()
