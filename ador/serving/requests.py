"""Requests: Poisson or burst arrivals with fixed or long-tailed lengths, or a trace CSV."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ador.errors import ConfigError

MAX_TOKENS = 10_000_000      # longest prompt or output of one request (ten times the longest context today)
MAX_REQUESTS = 10_000_000    # requests of one simulation (they are held in memory)
MAX_CV = 100.0               # coefficient of variation of long-tailed lengths


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    arrival_s: float
    prompt_len: int
    output_len: int


@dataclass(frozen=True)
class Lengths:
    """Prompt or output lengths: ``fixed`` (always ``mean``) or ``lognormal`` (long-tailed, with
    the given mean and coefficient of variation ``cv``, clipped to [minimum, maximum])."""
    kind: Literal["fixed", "lognormal"] = "fixed"
    mean: int = 512
    cv: float = 1.0
    minimum: int = 1
    maximum: int = 32768

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "lognormal"):
            raise ConfigError("lengths", self.kind, "expected fixed or lognormal")
        for name in ("mean", "minimum", "maximum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_TOKENS:
                raise ConfigError(f"length {name}", value, f"must be a whole number from 1 to {MAX_TOKENS:,}")
        if self.maximum < self.minimum:
            raise ConfigError("length maximum", self.maximum, f"must be >= minimum={self.minimum}")
        if not (isinstance(self.cv, (int, float)) and 0 <= self.cv <= MAX_CV):
            raise ConfigError("length-cv", self.cv, f"must be a number from 0 to {MAX_CV:g}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, self.mean, dtype=np.int64)
        sigma2 = np.log1p(self.cv ** 2)
        mu = np.log(self.mean) - sigma2 / 2
        x = rng.lognormal(mu, np.sqrt(sigma2), n)
        return np.clip(np.round(x), self.minimum, self.maximum).astype(np.int64)


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_REQUESTS:
        raise ConfigError("requests", n, f"must be from 1 to {MAX_REQUESTS:,}")


def poisson(rate_per_s: float, n: int, prompt: Lengths, output: Lengths, seed: int = 0) -> list[Request]:
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
        raise ConfigError("rate", rate_per_s, "an arrival rate must be a finite number > 0")
    _check_count(n)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
    arrivals -= arrivals[0]
    p, o = prompt.sample(rng, n), output.sample(rng, n)
    return [Request(i, float(a), int(pl), int(ol)) for i, (a, pl, ol) in enumerate(zip(arrivals, p, o))]


def burst(n: int, prompt: Lengths, output: Lengths, at_s: float = 0.0, seed: int = 0) -> list[Request]:
    _check_count(n)
    if not (at_s >= 0 and math.isfinite(at_s)):
        raise ConfigError("at_s", at_s, "an arrival time must be a finite number >= 0")
    rng = np.random.default_rng(seed)
    p, o = prompt.sample(rng, n), output.sample(rng, n)
    return [Request(i, at_s, int(pl), int(ol)) for i, (pl, ol) in enumerate(zip(p, o))]


def load_trace(path: str | Path) -> list[Request]:
    """CSV with columns arrival_s (or arrival_time), prompt_len, output_len (one request a row)."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            arrival_col = "arrival_s" if "arrival_s" in cols else "arrival_time" if "arrival_time" in cols else None
            if arrival_col is None or "prompt_len" not in cols or "output_len" not in cols:
                raise ConfigError("trace", str(path), "needs columns arrival_s, prompt_len, output_len")
            out: list[Request] = []
            for line, row in enumerate(reader, start=2):
                try:
                    a, p, o = float(row[arrival_col]), int(row["prompt_len"]), int(row["output_len"])
                except (TypeError, ValueError):
                    raise ConfigError(f"trace:{line}", dict(row),
                                      "arrival, prompt_len and output_len must be numbers") from None
                if not (math.isfinite(a) and a >= 0) or not (1 <= p <= MAX_TOKENS and 1 <= o <= MAX_TOKENS):
                    raise ConfigError(f"trace:{line}", dict(row), f"needs a finite arrival >= 0 and lengths from 1 "
                                                                  f"to {MAX_TOKENS:,}")
                if len(out) >= MAX_REQUESTS:
                    raise ConfigError("trace", str(path), f"has more than {MAX_REQUESTS:,} requests")
                out.append(Request(len(out), a, p, o))
    except FileNotFoundError:
        raise ConfigError("trace", str(path), "no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError("trace", str(path), f"cannot be read ({type(err).__name__})") from None
    if not out:
        raise ConfigError("trace", str(path), "has no requests")
    out.sort(key=lambda r: r.arrival_s)
    return [Request(i, r.arrival_s, r.prompt_len, r.output_len) for i, r in enumerate(out)]
