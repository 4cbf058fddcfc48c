"""The fitted constants as docs/validation.md states them, generated from the shipped calibration
(``ador/hardware/calibration.yaml``), so the page says what ador prices with, refit after refit."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from ador.hardware.calibration import CALIBRATION_FILE
from ador.markdown import update_section
from ador.validation.calibrate import BOUNDS, MEMORY

DOC_COMMAND = "python -c \"from ador.validation import fit_table; fit_table.update_doc('docs/validation.md')\""

# (constant, scope, meaning): the constants ``ador calibrate`` fits (ador.validation.calibrate)
CONSTANTS = (
    ("tensor", "per die (`GpuEfficiency`)", "fraction of the dense fp16 tensor peak large GEMMs reach"),
    ("tensor_fp8", "per die", "the same for fp8 GEMMs"),
    ("dequant", "all GPUs", "fraction of the SIMT rate weight-only dequantisation reaches"),
    ("hbm", "runtime profiles, per memory generation",
     "fraction of DRAM bandwidth streaming kernels reach (an ADOR design with the same HBM gets the same)"),
    ("link_efficiency", "runtime profiles", "fraction of NVLink/PCIe bandwidth collectives reach"),
    ("collective_latency_s", "runtime profiles",
     "software latency per collective step, on top of the link's hop latency"),
    ("overlap", "runtime profiles", "share of the shorter of compute/memory time a kernel hides"),
    ("step_overhead_s", "per software stack", "per forward pass"),
    ("kernel_overhead_s", "per software stack", "per kernel"),
    ("request_overhead_s", "per software stack",
     "per request: front end, tokenisation, admission (in TTFT and end-to-end latency); stacks without "
     "first-token or end-to-end rows take the median stack's"),
)


def _seconds(value: float) -> str:
    if value >= 0.1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    if value >= 1e-6:
        return f"{value * 1e6:.3g} us"
    return "~0"


def _value(key: str, value: float, on_bounds: set[str]) -> str:
    text = _seconds(value) if key.endswith("_s") else f"{value:.3f}"
    if key not in on_bounds:
        return text
    lo, hi = BOUNDS[MEMORY if key.startswith(f"{MEMORY}.") else key.rsplit(".", 1)[-1]]
    if abs(value - lo) <= abs(hi - value):
        return f"{'~0' if key.endswith('_s') else text} (its lower bound)"
    return f"{text} (its upper bound)"


def fitted_values(fit: Mapping[str, Any], constant: str) -> str:
    """One constant's fitted values, by die, memory kind or stack where it has several."""
    values: dict[str, float] = fit["values"]
    on_bounds = set(fit.get("on_bounds") or ())
    if constant in values:
        return _value(constant, values[constant], on_bounds)
    parts = []
    for key, value in values.items():
        if constant == "hbm" and key.startswith("hbm."):
            parts.append(f"{key.split('.', 1)[1].upper()} {_value(key, value, on_bounds)}")
        elif key.endswith(f".{constant}"):
            group = key[:-len(constant) - 1]
            parts.append(f"{group.removeprefix('software:')} {_value(key, value, on_bounds)}")
    return ", ".join(parts) if parts else "not fitted (no rows exercise it)"


def table(calibration: Mapping[str, Any]) -> str:
    fit = calibration["fit"]
    out = ["| constant | scope | fitted value | meaning |", "| --- | --- | --- | --- |"]
    out += [f"| `{name}` | {scope} | {fitted_values(fit, name)} | {meaning} |" for name, scope, meaning in CONSTANTS]
    held = fit.get("heldout") or {}
    family = ", ".join(f"{name} RMS {h['rms_pct']:.1f}% over {h['n']} rows" for name, h in held.items())
    budget = (f" (each fold's fit at most {fit['cv_evaluations']:,} evaluations)" if "cv_evaluations" in fit
              else "")
    cv = (f"; 5-fold {fit['kfold_mape_pct']:.2f}%, leave one source out {fit['loso_mape_pct']:.2f}%{budget}"
          if "kfold_mape_pct" in fit else "")
    out += ["", f"Fitted on {fit['rows']} rows ({fit['data']}, sha256 {fit['data_sha256_16']}) on {fit['date']}: "
                f"MAPE {fit['mape_pct']:.2f}% in-sample{cv}."
            + (f" The 5-fold held-out errors by metric family (`fit.heldout`): {family}." if family else "")]
    return "\n".join(out)


def shipped() -> dict[str, Any]:
    return yaml.safe_load(CALIBRATION_FILE.read_text())


def update_doc(path: str | Path) -> None:
    """Rewrite the generated table of fitted constants in ``path`` from the shipped calibration."""
    update_section(Path(path), DOC_COMMAND, table(shipped()))
