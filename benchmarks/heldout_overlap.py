"""How the fitted compute/memory overlap trades the public fit against our own held-out GPU rows.

    python -c "from benchmarks import heldout_overlap; print(heldout_overlap.run())"   # about 1 min

Fits the GPU efficiencies and runtime profiles on the public rows (``ador/data/measured.csv``) twice:
as ``ador calibrate`` does (the shared ``overlap`` bounded to [0.9, 1]: a GEMM kernel pipelines its
loads under its MMAs), and with ``overlap`` free in [0, 1]. Each fit then predicts our own H100/H200
rows (``ador/data/measured-own-gpu.csv``), which neither fit sees. docs/validation.md quotes the
figures; nothing here changes the shipped calibration.
"""
from __future__ import annotations

from typing import Any

from ador.validation import calibrate
from ador.validation.data import DEFAULT_DATA, load_measurements
from ador.validation.predict import summarise

OWN_DATA = DEFAULT_DATA.parent / "measured-own-gpu.csv"
FREE_OVERLAP = (0.0, 1.0)
FREE_START = 0.5
EVALUATIONS = 8000    # as `ador calibrate`


def _fit(public: list, own: list) -> dict[str, Any]:
    f = calibrate.fit(public, max_evaluations=EVALUATIONS)
    s = summarise(calibrate.evaluate_rows(own, f.values, fitted_on=public))
    return {"public_mape_pct": round(f.mape_pct, 2), "own_mape_pct": round(s["mape_pct"], 2),
            "own_by_hardware": {k: round(v, 1) for k, v in s["by_hardware"].items()},
            "own_by_metric": {k: round(v, 1) for k, v in s["by_metric"].items()},
            "overlap": round(f.values["overlap"], 3), "hbm3": round(f.values["hbm.hbm3"], 3),
            "hbm3e": round(f.values["hbm.hbm3e"], 3), "GH100_tensor": round(f.values["GH100.tensor"], 3)}


def run() -> dict[str, Any]:
    public, own = load_measurements(DEFAULT_DATA), load_measurements(OWN_DATA)
    out = {"as_calibrated": _fit(public, own)}
    bounds, start = dict(calibrate.BOUNDS), dict(calibrate.START)
    try:
        calibrate.BOUNDS["overlap"] = FREE_OVERLAP
        calibrate.START["overlap"] = FREE_START
        out["overlap_free"] = _fit(public, own)
    finally:
        calibrate.BOUNDS.clear()
        calibrate.BOUNDS.update(bounds)
        calibrate.START.clear()
        calibrate.START.update(start)
    return out
