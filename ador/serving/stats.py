"""Streaming statistics for the serving simulator: log-bucket histograms and intervals.

``LogHistogram`` keeps weighted samples in buckets whose edges grow geometrically by
``1 + RELATIVE_RESOLUTION``: any quantile it reports is within that relative error of the exact
sample quantile (it reports the bucket's geometric middle, so within half of it), its mean is exact
(a running sum), and its memory is bounded by the range of the values, not their number: 1 us to
1e5 s spans 25,000 buckets at 0.1%, and a simulation fills a few hundred. This is what lets one
simulation serve millions of requests in constant memory.

``Interval`` is a point estimate with the half-width of a two-sided 95% interval for a *repeat*
judgement: run the same design and load again with fresh seeds and as many replications, and the
new estimate falls within ``value +- half_width`` with 95% probability. From K independent
replications with estimates x_i (standard deviation s), it is t(0.975, K-1) * s * sqrt(2 / K): the
prediction interval for the mean of K new replications (a confidence interval for the true value
would be sqrt(2) narrower, and a repeat would leave it about one time in six).
"""
from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Sequence

import numpy as np

RELATIVE_RESOLUTION = 1e-3            # bucket width relative to its lower edge
_SCALE = 1.0 / math.log1p(RELATIVE_RESOLUTION)
_OFFSET = 1e6                         # keeps log-bucket keys positive so int() floors (any value > e^-999)
_ZERO = -(10 ** 9)                    # bucket of values <= 0 (reported as 0)
QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}

# Two-sided 97.5% quantiles of Student's t by degrees of freedom (any statistics table); beyond 30
# the normal quantile 1.96 is within 2%.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof: int) -> float:
    if dof < 1:
        return math.inf
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def bucket_of(value: float) -> int:
    """Bucket index of a value (the histogram's hot path inlines this)."""
    return int(math.log(value) * _SCALE + _OFFSET) if value > 0 else _ZERO


FLUSH = 4096                          # samples buffered before they are folded into the buckets


class LogHistogram:
    """Weighted samples in geometric buckets: exact count, sum and mean; quantiles within
    ``RELATIVE_RESOLUTION``. Samples are buffered (``ones``: weight 1; ``wvals`` with ``wts``) and
    folded into the buckets ``FLUSH`` at a time with numpy, so adding one costs a list append;
    the hot paths of the simulator append to the buffers directly and call ``flush`` when full."""
    __slots__ = ("counts", "weight", "total", "ones", "wvals", "wts")

    def __init__(self) -> None:
        self.counts: dict[int, float] = {}
        self.weight = 0.0
        self.total = 0.0
        self.ones: list[float] = []
        self.wvals: list[float] = []
        self.wts: list[float] = []

    def add(self, value: float, weight: float = 1.0) -> None:
        if weight == 1.0:
            self.ones.append(value)
        else:
            self.wvals.append(value)
            self.wts.append(weight)
        if len(self.ones) + len(self.wvals) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        """Fold the buffered samples into the buckets."""
        if not self.ones and not self.wvals:
            return
        v = np.asarray(self.ones + self.wvals, dtype=np.float64)
        w = np.concatenate([np.ones(len(self.ones)), np.asarray(self.wts, dtype=np.float64)])
        keys = np.full(len(v), _ZERO, dtype=np.int64)
        pos = v > 0
        keys[pos] = (np.log(v[pos]) * _SCALE + _OFFSET).astype(np.int64)
        unique, inverse = np.unique(keys, return_inverse=True)
        sums = np.bincount(inverse, weights=w)
        counts = self.counts
        for k, total in zip(unique.tolist(), sums.tolist()):
            counts[k] = counts.get(k, 0.0) + total
        self.weight += float(w.sum())
        self.total += float(np.dot(v, w))
        self.ones, self.wvals, self.wts = [], [], []

    def merge(self, other: "LogHistogram") -> "LogHistogram":
        out = LogHistogram()
        for h in (self, other):
            h.flush()
            for k, w in h.counts.items():
                out.counts[k] = out.counts.get(k, 0.0) + w
            out.weight += h.weight
            out.total += h.total
        return out

    @staticmethod
    def combined(hists: Iterable["LogHistogram"]) -> "LogHistogram":
        out = LogHistogram()
        for h in hists:
            out = out.merge(h)
        return out

    def __len__(self) -> int:
        self.flush()
        return len(self.counts)

    @property
    def mean(self) -> float:
        self.flush()
        return self.total / self.weight if self.weight else math.nan

    def quantile(self, q: float) -> float:
        """The ``q`` quantile as numpy's default (linear) percentile defines it, which is what the
        benchmark clients report (vLLM's and SGLang's take ``np.percentile`` over requests): the
        samples ranked 0 .. n-1 (a sample of weight w counting w times), the value at rank
        q (n - 1), interpolated between the two ranks around it. Each rank's value is its bucket's
        geometric middle, so the result is within half a bucket of the exact one."""
        self.flush()
        if not self.weight:
            return math.nan
        rank = q * max(self.weight - 1.0, 0.0)
        low = math.floor(rank)
        wanted = (low, low + 1) if rank > low else (low,)
        keys = sorted(self.counts)
        # a bucket holds the ranks from the weight before it up to its own: the rank's bucket is the
        # first whose running weight exceeds it (the running sums in key order, found by bisection)
        acc = list(accumulate(map(self.counts.__getitem__, keys)))
        values: list[float] = []
        for rank_wanted in wanted:
            i = bisect_right(acc, rank_wanted + 1e-9)
            values.append(self._value(keys[i] if i < len(keys) else keys[-1]))   # (rounding at the top rank)
        if len(values) == 1:
            return values[0]
        return values[0] + (rank - low) * (values[1] - values[0])

    @staticmethod
    def _value(key: int) -> float:
        if key == _ZERO:
            return 0.0
        return math.exp((key + 0.5 - _OFFSET) / _SCALE)

    def summary(self, scale: float = 1.0) -> dict[str, float]:
        """p50, p90, p99 and mean, times ``scale`` (1e3: seconds to milliseconds)."""
        out = {name: self.quantile(q) * scale for name, q in QUANTILES.items()}
        out["mean"] = self.mean * scale
        return out

    def fraction_at_most(self, value: float) -> float:
        """Share of the weight at or below ``value`` (to the bucket's resolution)."""
        self.flush()
        if not self.weight:
            return math.nan
        limit = int(math.log(value) * _SCALE + _OFFSET) if value > 0 else _ZERO
        return sum(w for k, w in self.counts.items() if k <= limit) / self.weight


@dataclass(frozen=True)
class Interval:
    """An estimate, the 95% half-width for a repeat judgement, and the replications behind it."""
    value: float
    half_width: float
    replications: int

    @property
    def relative(self) -> float:
        return self.half_width / abs(self.value) if self.value else math.inf

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "half_width": self.half_width, "replications": self.replications}


def repeat_half_width(estimates: Sequence[float]) -> float:
    """Half-width of the 95% interval in which a repeat of ``len(estimates)`` replications lands."""
    k = len(estimates)
    finite = [x for x in estimates if math.isfinite(x)]
    if k < 2 or len(finite) < k:
        return math.inf
    return t975(k - 1) * statistics.stdev(finite) * math.sqrt(2.0 / k)
