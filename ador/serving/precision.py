"""Serving metrics to a requested precision, over independent replications.

One simulation of N requests gives one estimate of a p99; how far another seed would move it is
what makes a design's score trustworthy or not. ``judge`` runs independent replications (the same
load, seeds 0, 1, 2, ...; each with its own warm-up excluded) until every requested metric's 95%
repeat interval (``ador.serving.stats.Interval``) is within ``ci`` of its value, or ``max_reps``
replications have run; when the first replications show that would not do, it starts again with
longer replications. The estimate is the mean over replications. ``ador simulate --ci 5%`` sizes
the run this way, and studies judge every trial so.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ador.errors import ConfigError
from ador.serving.simulator import ServingResult
from ador.serving.stats import Interval, repeat_half_width

MIN_REPLICATIONS = 3       # the fewest seeds an interval is computed from
MAX_REPLICATIONS = 12      # the most a judgement spends before reporting the interval it reached
MAX_REQUESTS = 1_000_000   # requests a judgement may simulate in all when it grows its replications
_SCALARS = ("output_tok_s", "total_tok_s", "requests_per_s", "goodput_rps", "slo_attainment", "mean_in_system",
            "mean_e2e_ms")
_FAMILIES = ("ttft", "tbt", "tpot", "e2e", "queue")


def metric_of(result: ServingResult, name: str) -> float:
    """``ttft_p99_ms``, ``tbt_mean_ms``, ... (family, statistic) or a scalar such as ``goodput_rps``."""
    if name in _SCALARS:
        return float(getattr(result, name))
    family, _, stat = name.removesuffix("_ms").partition("_")
    if family in _FAMILIES and stat in ("p50", "p90", "p99", "mean"):
        return getattr(result, f"{family}_ms")[stat]
    raise ConfigError("metric", name, f"not a serving metric (e.g. tbt_p99_ms, ttft_mean_ms, "
                                      f"{', '.join(_SCALARS)})")


@dataclass(frozen=True)
class Judgement:
    intervals: dict[str, Interval]
    replications: int
    requests: int                      # simulated in all
    target: float | None               # requested relative half-width
    met: bool                          # every interval within the target
    results: tuple[ServingResult, ...] = field(repr=False, default=())
    requests_per_replication: int = 0

    def value(self, name: str) -> float:
        return self.intervals[name].value

    def to_dict(self) -> dict:
        return {"replications": self.replications, "requests": self.requests,
                "requests_per_replication": self.requests_per_replication, "target": self.target,
                "met": self.met, "intervals": {k: v.to_dict() for k, v in self.intervals.items()}}


def parse_ci(text: str | float | None) -> float | None:
    """``5%`` or ``0.05`` -> 0.05; None stays None."""
    if text is None:
        return None
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError("ci", text, "expected a relative half-width such as 5% or 0.05") from None
    if not 0 < value < 1 or not math.isfinite(value):
        raise ConfigError("ci", text, "must be between 0% and 100%")
    return value


def judge(run: Callable[[int, int], ServingResult], metrics: Sequence[str], *, ci: float | None = 0.05,
          requests: int = 1000, grow: bool = True, min_reps: int = MIN_REPLICATIONS,
          max_reps: int = MAX_REPLICATIONS, max_requests: int = MAX_REQUESTS, first_seed: int = 0,
          targets: Sequence[str] | None = None) -> Judgement:
    """Replicate ``run(seed, n_requests)`` until each metric's repeat interval is within ``ci``
    (relative) of its value. When the intervals after ``min_reps`` replications show that
    ``max_reps`` would not be enough (the half-width falls as one over the square root of the
    replications), and ``grow``, the replications start again with proportionally more requests
    each, as long as ``max_reps`` of them still fit in ``max_requests`` simulated in all: a p99
    needs many requests per replication, a mean few. ``ci=None`` runs exactly ``min_reps``
    replications of ``requests``."""
    if min_reps < 1 or max_reps < min_reps:
        raise ConfigError("replications", (min_reps, max_reps), "need 1 <= min <= max")
    n = requests
    spent = 0
    while True:
        results: list[ServingResult] = []
        samples: dict[str, list[float]] = {m: [] for m in metrics}
        intervals: dict[str, Interval] = {}
        met = regrow = False
        for k in range(min_reps if ci is None else max_reps):
            res = run(first_seed + k, n)
            results.append(res)
            spent += res.n_requests
            for m in metrics:
                samples[m].append(metric_of(res, m))
            if len(results) < min_reps:
                continue
            intervals = {m: _interval(xs) for m, xs in samples.items()}
            if ci is None:
                break
            judged = [intervals[m] for m in (targets or metrics)]
            met = all(iv.half_width <= ci * abs(iv.value) or iv.half_width == 0 for iv in judged)
            if met:
                break
            need = max(len(results) * (iv.half_width / (ci * abs(iv.value))) ** 2 if iv.value else math.inf
                       for iv in judged)
            factor = min(16, math.ceil(need / max_reps)) if math.isfinite(need) else 16
            if grow and need > max_reps and spent + factor * n * max_reps <= max_requests:
                n *= factor
                regrow = True
                break
        if not regrow:
            return Judgement(intervals, len(results), spent, ci, met, tuple(results), n)


def _interval(xs: list[float]) -> Interval:
    finite = [x for x in xs if math.isfinite(x)]
    value = statistics.fmean(finite) if finite else math.nan
    return Interval(value, repeat_half_width(xs), len(xs))
