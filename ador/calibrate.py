"""Fit the GPU presets' achievable efficiencies on measured data (``ador calibrate``).

Few constants, each with a physical meaning:
- per GPU die (GA100, GH100, AD102; SKUs of one die share them): the fraction of the dense fp16
  and fp8 tensor peaks that GEMMs reach, and the fraction of HBM bandwidth streaming kernels reach;
- shared by all GPUs: fraction of link bandwidth and per-step latency of collectives, fraction of
  the SIMT peak that weight dequantisation reaches, and how much of the shorter of compute and
  memory time a kernel hides under the longer;
- per serving software stack (TensorRT-LLM, gpt-fast, ...): the per-forward-pass overhead (host
  scheduling, sampling) and the per-kernel overhead (launch and tail; eager PyTorch launches more,
  smaller kernels than a fused runtime).
The loss is the mean absolute percentage error over all rows, minimised with Powell's method from
a fixed start, so the fit is deterministic. No row, model or source gets a constant of its own.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ador.errors import AdorError
from ador.hardware.calibration import CALIBRATION_FILE
from ador.hardware.devices import GpuEfficiency, GpuSpec
from ador.hardware.presets import _GPU_SPECS
from ador.validate import TUNED_SOFTWARE, Measurement, RowResult, predict_rows, software_of

LAYER_METRICS = ("prefill_layer_ms", "decode_layer_ms")

# GPU dies and the presets built on them (datasheets / whitepapers).
DIES: dict[str, tuple[str, ...]] = {
    "GA100": ("a100-sxm-80gb", "a100-sxm-40gb"),
    "GH100": ("h100-sxm-80gb", "h200-sxm-141gb"),
    "AD102": ("l40s-48gb",),
}
PER_DIE = ("tensor", "tensor_fp8", "hbm")
SHARED = ("link", "collective_latency_s", "dequant", "overlap")
PER_SOFTWARE = ("step_overhead_s", "kernel_overhead_s")
# Search ranges: efficiencies between 5% and 100%; overheads between 0.1 us and 20 ms.
_BOUNDS = {"tensor": (0.05, 1.0), "tensor_fp8": (0.05, 1.0), "hbm": (0.05, 1.0), "link": (0.05, 1.0),
           "dequant": (0.01, 1.0), "kernel_overhead_s": (1e-7, 1e-4), "step_overhead_s": (1e-7, 2e-2),
           "collective_latency_s": (1e-7, 1e-4), "overlap": (0.0, 1.0)}
_LOG_SCALE = {"kernel_overhead_s", "step_overhead_s", "collective_latency_s"}


@dataclass(frozen=True)
class Parameter:
    name: str          # GpuEfficiency field
    die: str | None    # a GPU die, a software stack ("software:NAME"), or None: shared by all GPUs

    @property
    def key(self) -> str:
        return f"{self.die}.{self.name}" if self.die else self.name

    def encode(self, value: float) -> float:
        lo, hi = _BOUNDS[self.name]
        value = min(max(value, lo), hi)
        if self.name in _LOG_SCALE:
            lo, hi, value = math.log(lo), math.log(hi), math.log(value)
        x = min(max((value - lo) / (hi - lo), 1e-6), 1 - 1e-6)
        return math.log(x / (1 - x))   # logit: the optimiser works unbounded

    def decode(self, z: float) -> float:
        lo, hi = _BOUNDS[self.name]
        x = 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
        if self.name in _LOG_SCALE:
            return math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo)))
        return lo + x * (hi - lo)


def die_of(hardware: str) -> str | None:
    return next((die for die, names in DIES.items() if hardware in names), None)


def parameters_for(rows: Sequence[Measurement]) -> list[Parameter]:
    """Only constants that some row exercises: a die's fp8 efficiency needs fp8 rows, etc."""
    params: list[Parameter] = []
    for die, names in DIES.items():
        mine = [r for r in rows if r.hardware in names]
        if not mine:
            continue
        if any(r.precision != "fp8" for r in mine):
            params.append(Parameter("tensor", die))
        if any(r.precision == "fp8" for r in mine):
            params.append(Parameter("tensor_fp8", die))
        params.append(Parameter("hbm", die))
    for name in SHARED:
        if name == "dequant" and not any(r.precision.endswith("-wo") for r in rows):
            continue
        if name in ("link", "collective_latency_s") and not any(r.tp > 1 for r in rows):
            continue
        params.append(Parameter(name, None))
    for stack in sorted({software_of(r.source) for r in rows}):
        whole_passes = any(software_of(r.source) == stack and r.metric not in LAYER_METRICS for r in rows)
        for name in PER_SOFTWARE:
            if name == "step_overhead_s" and not whole_passes:
                continue      # per-layer timings carry no per-pass overhead
            params.append(Parameter(name, f"software:{stack}"))
    return params


def overheads_from(values: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per-stack overheads from fitted values, with "default" the median over the stacks."""
    stacks: dict[str, dict[str, float]] = {}
    for key, value in values.items():
        if key.startswith("software:"):
            stack, name = key.removeprefix("software:").rsplit(".", 1)
            stacks.setdefault(stack, {})[name] = value
    if stacks:
        stacks["default"] = {name: statistics.median(s[name] for s in stacks.values() if name in s)
                             for name in PER_SOFTWARE if any(name in s for s in stacks.values())}
    return stacks


def efficiencies(values: dict[str, float], source: str) -> dict[str, GpuEfficiency]:
    """Efficiency of every GPU preset from fitted values; constants a die was not fitted for take
    the mean over the dies that were (GPUs with no measurements at all get those means too)."""
    default = GpuEfficiency()
    means = {}
    for name in PER_DIE:
        fitted = [v for k, v in values.items() if k.endswith("." + name)]
        means[name] = statistics.fmean(fitted) if fitted else getattr(default, name)
    shared = {name: values.get(name, getattr(default, name)) for name in SHARED}
    stacks = overheads_from(values)
    tuned = stacks.get(TUNED_SOFTWARE, stacks.get("default", {}))
    for name in PER_SOFTWARE:
        shared[name] = tuned.get(name, getattr(default, name))
    out = {}
    for spec in _GPU_SPECS:
        die = die_of(spec.name)
        per_die = {name: values.get(f"{die}.{name}", means[name]) for name in PER_DIE}
        note = source if die and any(f"{die}.{n}" in values for n in PER_DIE) else \
            f"{source}; no measurements of this GPU: per-die constants are the means of the fitted dies"
        out[spec.name] = GpuEfficiency(**per_die, **shared, source=note)
    return out


def _devices(effs: dict[str, GpuEfficiency]) -> dict[str, GpuSpec]:
    return {s.name: dataclasses.replace(s, efficiency=effs[s.name]) for s in _GPU_SPECS}


def evaluate_rows(rows: Sequence[Measurement], values: dict[str, float]) -> list[RowResult]:
    """Predict ``rows`` with the efficiencies and software overheads given by fitted ``values``."""
    return predict_rows(list(rows), _devices(efficiencies(values, "")), overheads_from(values))


def _loss(rows: Sequence[Measurement], params: list[Parameter]) -> Callable[[Sequence[float]], float]:
    def loss(z: Sequence[float]) -> float:
        values = {p.key: p.decode(x) for p, x in zip(params, z)}
        results = evaluate_rows(rows, values)
        errors = [abs(r.error_pct) for r in results if r.predicted is not None]
        return statistics.fmean(errors) if errors else 0.0
    return loss


@dataclass(frozen=True)
class Fit:
    values: dict[str, float]
    mape_pct: float
    n_rows: int
    evaluations: int


def fit(rows: Sequence[Measurement], *, max_evaluations: int = 8000) -> Fit:
    """Minimise MAPE over ``rows``. Starts from the defaults; Powell, then Nelder-Mead to polish."""
    from scipy.optimize import minimize   # fitting is offline; the package imports scipy only here

    params = parameters_for(rows)
    if not params:
        raise AdorError("no rows of a calibrated GPU to fit")
    default = GpuEfficiency()
    z0 = [p.encode(getattr(default, p.name) if p.name != "step_overhead_s" else 1e-3) for p in params]
    loss = _loss(rows, params)
    first = minimize(loss, z0, method="Powell", options={"maxfev": max_evaluations // 2, "xtol": 1e-3, "ftol": 1e-5})
    second = minimize(loss, first.x, method="Nelder-Mead",
                      options={"maxfev": max_evaluations // 2, "xatol": 1e-3, "fatol": 1e-4, "adaptive": True})
    best = second if second.fun <= first.fun else first
    values = {p.key: p.decode(x) for p, x in zip(params, best.x)}
    return Fit(values, float(best.fun), len(rows), int(first.nfev + second.nfev))


def cross_validate(rows: Sequence[Measurement], *, key: Callable[[Measurement], str] = lambda r: r.source,
                   max_evaluations: int = 3000) -> dict[str, Any]:
    """Leave one group (by default one source) out: fit on the rest, predict the group."""
    out = {}
    for group in sorted({key(r) for r in rows}):
        train = [r for r in rows if key(r) != group]
        test = [r for r in rows if key(r) == group]
        try:
            f = fit(train, max_evaluations=max_evaluations)
        except AdorError:
            continue
        results = evaluate_rows(test, f.values)
        done = [abs(r.error_pct) for r in results if r.predicted is not None]
        out[group] = {"n": len(done), "mape_pct": statistics.fmean(done) if done else None,
                      "train_mape_pct": f.mape_pct}
    return out


def fold_of(row: Measurement, folds: int = 5) -> str:
    """A stable fold for a row (from its id), for k-fold cross-validation."""
    return f"fold{int(hashlib.sha256(row.id.encode()).hexdigest(), 16) % folds}"


def write_calibration(f: Fit, data_path: Path, out: Path = CALIBRATION_FILE) -> dict[str, Any]:
    digest = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()[:16]
    source = (f"fitted by `ador calibrate` on {Path(data_path).name} (sha256 {digest}, {f.n_rows} rows), "
              f"MAPE {f.mape_pct:.2f}%")
    effs = efficiencies(f.values, source)
    doc = {
        "fit": {"command": "ador calibrate", "data": Path(data_path).name, "data_sha256_16": digest,
                "rows": f.n_rows, "mape_pct": round(f.mape_pct, 3), "evaluations": f.evaluations,
                "date": dt.date.today().isoformat(),
                "values": {k: float(f"{v:.6g}") for k, v in sorted(f.values.items())}},
        "gpus": {name: {k: (float(f"{v:.6g}") if isinstance(v, float) else v)
                        for k, v in dataclasses.asdict(e).items()} for name, e in effs.items()},
        "software": {name: {k: float(f"{v:.6g}") for k, v in o.items()}
                     for name, o in overheads_from(f.values).items()},
    }
    header = ("# GPU efficiencies fitted on measured data. Regenerate with `ador calibrate`; do not edit by hand.\n"
              "# See ador/calibrate.py for what each constant means and docs/validation.md for the errors.\n")
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return doc
