"""Service-level objectives: the keys a study's ``slo:`` and ``ador simulate --slo`` share, and
what each one bounds (the table in docs/studies.md).

Every key names its statistic and unit, so "TBT SLO" no longer means the p99 in one place and the
mean in another:

- ``ttft_p99_ms``: 99th-percentile time to first token. A static-batch study bounds ``ttft_ms``
  (the batch's TTFT, which all its requests share); a study with an arrival rate bounds
  ``serving_ttft_p99_ms``, and a request counts as served in time only if its own TTFT is within.
- ``tbt_p99_ms``: 99th-percentile time between tokens: ``tbt_p99_ms`` (the p99 decode step of the
  static batch) or ``serving_tbt_p99_ms``.
- ``tbt_mean_ms``: a request's mean time between tokens (TPOT): ``tbt_ms`` of the static batch;
  under an arrival rate a request counts as served in time only if its own mean is within.

SLO attainment and goodput count the requests served in time; ``ador simulate`` judges each
request the same way and checks the p99 keys against the simulated percentiles. The names of
earlier versions (``ttft_ms``, ``tbt_ms``; ``--ttft-slo``, ``--tbt-slo``) are still read, with a
warning naming the key they now are.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SloKey:
    static_metric: str            # what a static-batch study constrains
    serving_metric: str | None    # what a study with an arrival rate constrains (None: nothing)
    per_request: bool             # a request must meet it to count as served in time (goodput)
    meaning: str


SLO_KEYS: dict[str, SloKey] = {
    "ttft_p99_ms": SloKey("ttft_ms", "serving_ttft_p99_ms", True,
                          "99th-percentile time to first token, ms"),
    "tbt_p99_ms": SloKey("tbt_p99_ms", "serving_tbt_p99_ms", False,
                         "99th-percentile time between tokens, ms"),
    "tbt_mean_ms": SloKey("tbt_ms", None, True,
                          "mean time between tokens of a request (TPOT), ms"),
}


class SloDeprecationWarning(FutureWarning):
    """An SLO written with a name of an earlier version (shown to users, unlike DeprecationWarning)."""


def renamed(old: str, *, serving: bool) -> str | None:
    """The key an earlier name now is: ``ttft_ms`` was the TTFT bound (p99 of the requests);
    ``tbt_ms`` bounded the p99 decode step of a static batch but, under an arrival rate, each
    request's mean TBT."""
    if old == "ttft_ms":
        return "ttft_p99_ms"
    if old == "tbt_ms":
        return "tbt_mean_ms" if serving else "tbt_p99_ms"
    return None


def upgrade(raw: Any, *, serving: bool, where: str, warn: bool = True) -> Any:
    """An ``slo`` mapping with earlier names replaced by explicit ones (a warning for each when
    ``warn``: a file the user can edit, not a stored study)."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        new = renamed(str(key), serving=serving)
        if new is None:
            out[key] = value
            continue
        if warn:
            warnings.warn(f"{where}.{key} is deprecated: write {new} ({SLO_KEYS[new].meaning})", SloDeprecationWarning,
                          stacklevel=3)
        if new in raw:
            from ador.errors import ConfigError
            raise ConfigError(f"{where}.{key}", value, f"{new} is given too; {key} is its old name")
        out[new] = value
    return out


def check_target(field: str, value: float | None) -> None:
    if value is None:
        return
    from ador.errors import ConfigError
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(field, value, "an SLO is a positive number of milliseconds")


def parse_option(text: str) -> tuple[str, float]:
    """``KEY=MS`` of ``ador simulate --slo``."""
    from ador.errors import ConfigError, UnknownNameError
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError("--slo", text, f"expected KEY=MS (keys: {', '.join(SLO_KEYS)})")
    if key not in SLO_KEYS:
        new = renamed(key, serving=True)
        if new is None:
            raise UnknownNameError("--slo", key, f"unknown SLO (known: {', '.join(SLO_KEYS)})")
        warnings.warn(f"--slo {key} is deprecated: write {new} ({SLO_KEYS[new].meaning})", SloDeprecationWarning,
                      stacklevel=2)
        key = new
    try:
        target = float(value)
    except ValueError:
        raise ConfigError(f"--slo {key}", value, "expected a number of milliseconds") from None
    check_target(f"--slo {key}", target)
    return key, target


def verdicts(slo: Mapping[str, float], result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A simulation against each SLO of ``slo`` (KEY -> target, ms): a p99 key's simulated value
    and whether it is met; ``tbt_mean_ms`` is judged request by request (SLO attainment)."""
    out: dict[str, dict[str, Any]] = {}
    for key, target in slo.items():
        if key == "tbt_mean_ms":
            out[key] = {"target_ms": target, "judged": "per request (slo_attainment, goodput_rps)"}
            continue
        value = (result.get(key.replace("_p99", "")) or {}).get("p99")
        out[key] = {"target_ms": target, "value_ms": value, "met": value is not None and value <= target}
    return out


def simulator_targets(slo: Mapping[str, float]) -> tuple[float | None, float | None]:
    """What the serving simulator judges each request by: (TTFT, mean TBT) targets in ms."""
    return slo.get("ttft_p99_ms"), slo.get("tbt_mean_ms")
