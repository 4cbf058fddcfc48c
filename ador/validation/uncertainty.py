"""How far a ratio can be trusted, from the model's own errors.

A ratio "design / GPU" carries the error of the GPU model (its cross-validated error on held-out
measured rows: refits on the calibration folds, stored by ``ador calibrate --cv`` in
calibration.yaml ``fit.heldout``), the error of the design model (its error on published
accelerators, ador/validation/accelerators.py) and, for area efficiency, the error of the area
model (its die estimates of GPUs whose floorplans are published, ador/cost/area.py). The errors
are taken as independent relative errors, combined in quadrature: a ratio r gets the interval
[r / (1 + s), r * (1 + s)] with s the root sum of squares of the sides' RMS errors. That is a
one-sigma-like band, not a guarantee; a report says which errors went in.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache

from ador.errors import ConfigError


@dataclass(frozen=True)
class Band:
    """One side's relative error on one kind of quantity."""
    label: str          # where the errors come from, for a report
    n: int              # how many errors
    bias_pct: float     # signed mean: above 0, the model predicts too high
    rms_pct: float      # root mean square

    def sentence(self) -> str:
        return f"{self.label}: RMS {self.rms_pct:.1f}% over {self.n} rows (bias {self.bias_pct:+.1f}%)"


def _band(label: str, errors: list[float]) -> Band:
    if not errors:
        raise ConfigError("uncertainty", label, "no errors to estimate a band from")
    return Band(label, len(errors), statistics.fmean(errors), math.sqrt(statistics.fmean(e * e for e in errors)))


def gpu_band(family: str) -> Band:
    """The GPU model's 5-fold held-out error on the ``family`` of metrics (decode, prefill, throughput)."""
    from ador.hardware.calibration import fit_record
    held = (fit_record().get("heldout") or {}).get(family)
    if not held:
        raise ConfigError("calibration.fit.heldout", family, "no held-out errors stored: run `ador calibrate --cv "
                                                             "--write-package`")
    return Band(f"GPU model, 5-fold held-out {family} rows", int(held["n"]), float(held["bias_pct"]),
                float(held["rms_pct"]))


@lru_cache(maxsize=4)
def design_band(family: str, profile: str = "ador-paper") -> Band:
    """The design model's error on published accelerators' ``family`` rows, each predicted under
    ``profile`` (ador/validation/accelerators.py)."""
    from ador.validation.accelerators import validate_accelerators
    from ador.validation.coverage import FAMILIES
    report = validate_accelerators(profile=profile)
    errors = [e for r in report.rows if r.row.metric in FAMILIES[family] and (e := r.error_pct) is not None]
    return _band(f"design model, published accelerators' {family} rows under `{profile}`", errors)


@lru_cache(maxsize=1)
def area_band() -> Band:
    """The area model's error on GPU dies whose floorplans are published (estimate vs datasheet)."""
    from ador.cost.area import die_area, floorplan_of
    from ador.hardware import GPUS
    errors, dies = [], set()
    for gpu in GPUS.values():
        fp = floorplan_of(gpu)
        if fp is None or fp.name in dies:
            continue
        dies.add(fp.name)
        errors.append(100.0 * (sum(die_area(fp).values()) - gpu.die_area_mm2) / gpu.die_area_mm2)
    return _band(f"area model, {len(errors)} GPU dies with published floorplans", errors)


def spread(*bands: Band) -> float:
    """The combined relative error of a ratio whose sides carry ``bands`` (quadrature)."""
    return math.sqrt(sum((b.rms_pct / 100.0) ** 2 for b in bands))


def interval(ratio: float, *bands: Band) -> tuple[float, float]:
    s = spread(*bands)
    return ratio / (1.0 + s), ratio * (1.0 + s)
