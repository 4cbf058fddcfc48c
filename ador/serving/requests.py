"""Requests: Poisson or burst arrivals with fixed or long-tailed lengths, or a trace CSV.

Streams are columnar (``RequestArrays``: three numpy arrays), so a million requests take 24 MB;
they still read as a sequence of ``Request``. Every entry point checks its input once (finite,
non-negative arrivals in order; lengths >= 1) and raises ``ConfigError`` naming the field, so
the simulator never sees a NaN that would stall its clock.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, overload

import numpy as np

from ador.errors import ConfigError

MAX_TOKENS = 10_000_000      # longest prompt or output of one request (ten times the longest context today)
MAX_REQUESTS = 10_000_000    # requests of one simulation (their columns are held in memory: 24 bytes each)
# arrival rates a run can be asked for: beyond them the gaps underflow a float's resolution of a
# run's clock, or the run outlasts any trace (a request every 30,000 years)
MIN_RATE_PER_S, MAX_RATE_PER_S = 1e-12, 1e12
MAX_ARRIVAL_S = 2.0 ** 32    # a double's spacing at 2**32 s is 2**-20 s, about a microsecond
MAX_CV = 100.0               # beyond this nearly all of a log-normal's mass sits on the clip bounds


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    arrival_s: float
    prompt_len: int
    output_len: int


def _number(field: str, value, *, minimum: float, maximum: float = math.inf, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(field, value, "must be a number")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        bound = f"between {minimum:g} and {maximum:g}" if math.isfinite(maximum) else f">= {minimum:g}"
        raise ConfigError(field, value, f"must be a finite number {bound}")
    if integer and int(value) != value:
        raise ConfigError(field, value, "must be a whole number")


@dataclass(frozen=True)
class Lengths:
    """Prompt or output lengths in tokens.

    - ``fixed``: always ``mean``;
    - ``lognormal``: long-tailed with mean ``mean`` and coefficient of variation ``cv``, clipped
      to [minimum, maximum] (clipping moves the mean a little when the bounds bite);
    - ``truncated-lognormal``: a log-normal with coefficient of variation ``cv`` restricted to
      [minimum, maximum] (samples outside are drawn again), its location solved so that the mean
      of what is kept is ``mean``: a dataset with a stated mean and a stated bound, such as a
      benchmark's ShareGPT sample filtered to prompts of at most 1,024 tokens;
    - ``uniform``: whole numbers drawn uniformly from [minimum, maximum] (a benchmark's "random"
      dataset; ``mean`` is then informative only).
    """
    kind: Literal["fixed", "lognormal", "truncated-lognormal", "uniform"] = "fixed"
    mean: float = 512
    cv: float = 1.0
    minimum: int = 1
    maximum: int = 32768

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "lognormal", "truncated-lognormal", "uniform"):
            raise ConfigError("lengths", self.kind, "must be fixed, lognormal, truncated-lognormal or uniform")
        _number("mean", self.mean, minimum=1, maximum=MAX_TOKENS)
        _number("length-cv", self.cv, minimum=0, maximum=MAX_CV)
        _number("minimum", self.minimum, minimum=1, maximum=MAX_TOKENS, integer=True)
        _number("maximum", self.maximum, minimum=self.minimum, maximum=MAX_TOKENS, integer=True)
        if self.kind == "truncated-lognormal" and not self.minimum < self.mean < self.maximum:
            raise ConfigError("mean", self.mean, f"a truncated distribution needs minimum < mean < maximum "
                                                 f"({self.minimum} .. {self.maximum})")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "uniform":
            return rng.integers(self.minimum, self.maximum + 1, n, dtype=np.int64)
        if self.kind == "fixed" or self.cv == 0:
            return np.full(n, max(1, round(self.mean)), dtype=np.int64)
        sigma = math.sqrt(math.log1p(self.cv ** 2))
        if self.kind == "lognormal":
            x = rng.lognormal(math.log(self.mean) - sigma ** 2 / 2, sigma, n)
            return np.clip(np.round(x), self.minimum, self.maximum).astype(np.int64)
        mu = _truncated_location(self.mean, sigma, self.minimum, self.maximum)
        out = np.empty(0)
        while len(out) < n:
            x = rng.lognormal(mu, sigma, max(16, 2 * (n - len(out))))
            out = np.concatenate([out, x[(x >= self.minimum) & (x <= self.maximum)]])
        return np.clip(np.round(out[:n]), self.minimum, self.maximum).astype(np.int64)


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _truncated_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    a, b = (math.log(lo) - mu) / sigma, (math.log(hi) - mu) / sigma
    mass = _phi(b) - _phi(a)
    if mass <= 1e-300:
        return lo if b <= 0 else hi
    return math.exp(mu + sigma ** 2 / 2) * (_phi(b - sigma) - _phi(a - sigma)) / mass


def _truncated_location(mean: float, sigma: float, lo: float, hi: float) -> float:
    """The log-normal location whose restriction to [lo, hi] has mean ``mean`` (bisection: the
    truncated mean grows with the location)."""
    left, right = math.log(lo) - 10 * sigma - 10, math.log(hi) + 10 * sigma + 10
    for _ in range(200):
        mid = (left + right) / 2
        if _truncated_mean(mid, sigma, lo, hi) < mean:
            left = mid
        else:
            right = mid
    return (left + right) / 2


class RequestArrays(Sequence):
    """Requests as columns: arrival times (s, non-decreasing), prompt and output lengths.
    Indexing and iteration give ``Request`` objects."""
    __slots__ = ("arrival_s", "prompt_len", "output_len")

    def __init__(self, arrival_s, prompt_len, output_len, *, where: str = "requests") -> None:
        a = np.asarray(arrival_s, dtype=np.float64)
        p, o = np.asarray(prompt_len), np.asarray(output_len)
        if not (a.ndim == p.ndim == o.ndim == 1 and len(a) == len(p) == len(o)):
            raise ConfigError(where, (a.shape, p.shape, o.shape), "arrivals and lengths must be equal-length lists")
        if len(a) == 0:
            raise ConfigError(where, 0, "has no requests")
        for name, col in (("prompt_len", p), ("output_len", o)):
            if not np.issubdtype(col.dtype, np.number) or not np.all(np.isfinite(col)):
                raise ConfigError(f"{where}.{name}", _first_bad(col), "lengths must be finite numbers")
            if np.any(col < 1) or np.any(col > MAX_TOKENS) or np.any(col != np.round(col)):
                bad = col[(col < 1) | (col > MAX_TOKENS) | (col != np.round(col))][0]
                raise ConfigError(f"{where}.{name}", bad.item(), f"lengths must be whole numbers 1 .. {MAX_TOKENS}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            bad = a[~np.isfinite(a) | (a < 0)][0]
            raise ConfigError(f"{where}.arrival_s", float(bad), "arrival times must be finite and >= 0")
        if np.any(np.diff(a) < 0):
            raise ConfigError(f"{where}.arrival_s", "unsorted", "arrival times must not decrease")
        self.arrival_s = a
        self.prompt_len = p.astype(np.int64)
        self.output_len = o.astype(np.int64)

    @classmethod
    def of(cls, requests: "Sequence[Request] | RequestArrays") -> "RequestArrays":
        """Columns from any sequence of requests, sorted by arrival (stable)."""
        if isinstance(requests, RequestArrays):
            return requests
        if not len(requests):
            raise ConfigError("requests", 0, "nothing to simulate")
        a = np.array([r.arrival_s for r in requests], dtype=np.float64)
        p = np.array([r.prompt_len for r in requests], dtype=np.float64)
        o = np.array([r.output_len for r in requests], dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ConfigError("requests.arrival_s", float(a[~np.isfinite(a)][0]), "arrival times must be finite")
        order = np.argsort(a, kind="stable")
        return cls(a[order], p[order], o[order])

    def __len__(self) -> int:
        return len(self.arrival_s)

    @overload
    def __getitem__(self, i: int) -> Request: ...
    @overload
    def __getitem__(self, i: slice) -> "RequestArrays": ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return RequestArrays(self.arrival_s[i], self.prompt_len[i], self.output_len[i])
        return Request(int(range(len(self))[i]), float(self.arrival_s[i]), int(self.prompt_len[i]),
                       int(self.output_len[i]))

    def __iter__(self) -> Iterator[Request]:
        for i, (a, p, o) in enumerate(zip(self.arrival_s.tolist(), self.prompt_len.tolist(),
                                          self.output_len.tolist())):
            yield Request(i, a, p, o)

    @property
    def lengths_only(self) -> bool:
        """Every arrival at 0: lengths alone (as benchmarks publish them per request), whose arrivals a
        rate or a closed loop's clients supply."""
        return not self.arrival_s.any()

    def arriving(self, arrival_s) -> "RequestArrays":
        """The same lengths, in the same order, arriving at ``arrival_s``."""
        return RequestArrays(arrival_s, self.prompt_len, self.output_len)

    def at_rate(self, factor: float) -> "RequestArrays":
        """The same requests arriving ``factor`` times as fast (arrival times divided by it)."""
        _number("rate", factor, minimum=MIN_RATE_PER_S)
        return self.arriving(self.arrival_s / factor)


def _first_bad(col: np.ndarray):
    try:
        bad = col[~np.isfinite(col)]
        return bad[0].item() if len(bad) else None
    except TypeError:
        return str(col[0])


def _check_count(n) -> None:
    _number("requests", n, minimum=1, maximum=MAX_REQUESTS, integer=True)


def poisson(rate_per_s: float, n: int, prompt: Lengths, output: Lengths, seed: int = 0, *,
            paced: bool = False) -> RequestArrays:
    """``n`` requests with exponential inter-arrival times at ``rate_per_s`` (first at t = 0).
    ``paced``: as vLLM's ``vllm bench serve`` sends them since 0.10 (PR 21108): the cumulative
    gaps, first one included, rescaled so that the last request leaves at exactly n / rate, which
    takes the random total span out of a run's throughput."""
    _number("rate", rate_per_s, minimum=MIN_RATE_PER_S, maximum=MAX_RATE_PER_S)
    if rate_per_s <= 0:
        raise ConfigError("rate", rate_per_s, "an arrival rate must be > 0")
    _check_count(n)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, int(n)))
    if paced:
        arrivals *= (int(n) / rate_per_s) / arrivals[-1]
    else:
        arrivals -= arrivals[0]
    return RequestArrays(arrivals, prompt.sample(rng, int(n)), output.sample(rng, int(n)))


def burst(n: int, prompt: Lengths, output: Lengths, at_s: float = 0.0, seed: int = 0) -> RequestArrays:
    """``n`` requests all arriving at ``at_s`` (an offline benchmark)."""
    _check_count(n)
    _number("at_s", at_s, minimum=0)
    rng = np.random.default_rng(seed)
    return RequestArrays(np.full(int(n), float(at_s)), prompt.sample(rng, int(n)), output.sample(rng, int(n)))


def _cell(row: dict, col: str, line: int, integer: bool) -> float:
    text = (row.get(col) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"trace:{line}:{col}", text, "must be a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"trace:{line}:{col}", text, "must be finite")
    if integer and (value < 1 or value != int(value) or value > MAX_TOKENS):
        raise ConfigError(f"trace:{line}:{col}", text, f"must be a whole number of tokens, 1 .. {MAX_TOKENS}")
    if not integer and not 0 <= value <= MAX_ARRIVAL_S:
        raise ConfigError(f"trace:{line}:{col}", text, "an arrival time is 0 .. 2**32 s (beyond, a double's "
                                                       "resolution of the run's clock is coarser than a microsecond)")
    return value


def load_trace(path: str | Path) -> RequestArrays:
    """CSV with columns arrival_s (or arrival_time), prompt_len, output_len (one request a row),
    sorted by arrival time on loading."""
    path = Path(path)
    arrivals, prompts, outputs = [], [], []
    try:
        # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            arrival_col = "arrival_s" if "arrival_s" in cols else "arrival_time" if "arrival_time" in cols else None
            if arrival_col is None or "prompt_len" not in cols or "output_len" not in cols:
                raise ConfigError("trace", str(path), "needs columns arrival_s, prompt_len, output_len")
            for line, row in enumerate(reader, start=2):
                if None in row:          # DictReader's key for cells beyond the header's
                    raise ConfigError(f"trace:{line}", ",".join(row[None]), f"more cells than the header's "
                                                                            f"{len(cols)} columns")
                arrivals.append(_cell(row, arrival_col, line, False))
                prompts.append(_cell(row, "prompt_len", line, True))
                outputs.append(_cell(row, "output_len", line, True))
    except FileNotFoundError:
        raise ConfigError("trace", str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigError("trace", str(path), "is a directory, not a CSV file") from None
    except UnicodeDecodeError as err:
        raise ConfigError("trace", str(path), f"is not UTF-8 text (byte {err.start})") from None
    except csv.Error as err:
        raise ConfigError("trace", str(path), f"cannot be read as CSV ({err})") from None
    except OSError as err:
        raise ConfigError("trace", str(path), f"cannot be read ({err.strerror})") from None
    if not arrivals:
        raise ConfigError("trace", str(path), "has no requests")
    a = np.array(arrivals)
    order = np.argsort(a, kind="stable")
    return RequestArrays(a[order], np.array(prompts)[order], np.array(outputs)[order], where="trace")
