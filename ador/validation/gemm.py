"""Single GEMMs measured on a GPU (``benchmarks/gpu_gemm.py``) against the model's price of the same
operator: the projection of llama-3-70b's layer graph at that shape, priced by the GPU operator model
(tile and wave quantisation, the die's fitted tensor efficiency, HBM efficiency, overlap, the runtime's
per-kernel cost). Held out like the other own measurements: nothing is fitted to them.

    python -c "from ador.validation import gemm as g
    print(g.table(g.compare('ador/data/own/gemm-h100.json', 'h100-sxm-80gb')))"
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.hardware.devices import GpuSpec
from ador.hardware.runtime import runtime_profiles
from ador.perf import gpu
from ador.perf.stage import rates
from ador.validation.kernels import DEFAULT_PROFILE
from ador.workload import decode_step, get_model, get_precision, prefill

MODEL = "llama-3-70b"
DECODE_KV = 1024          # decode GEMMs do not depend on the KV length; any will do
DECODE_MAX_TOKENS = 256   # up to this many tokens a GEMM is a decode step's (batch), beyond it a prefill's
PRECISIONS = {"bf16": "bf16", "fp8": "fp8"}


def model_seconds(hardware: str, tp: int, m: int, op_name: str, dtype: str, runtime: str = DEFAULT_PROFILE
                  ) -> tuple[float, tuple[int, int, int]]:
    """The model's time for one launch of ``op_name`` with ``m`` tokens at TP ``tp``, and its (m, n, k)."""
    if hardware not in PRESETS:
        raise ConfigError("hardware", hardware, "unknown hardware")
    if dtype not in PRECISIONS:
        raise ConfigError("dtype", dtype, f"expected one of {', '.join(PRECISIONS)}")
    model, precision = get_model(MODEL), get_precision(PRECISIONS[dtype])
    ops = decode_step(model, precision, tp, m, DECODE_KV) if m <= DECODE_MAX_TOKENS else \
        prefill(model, precision, tp, 1, m)
    op = next((o for o in ops if o.name == op_name), None)
    if op is None:
        raise ConfigError("op", op_name, f"not an operator of {MODEL}'s layer")
    device = PRESETS[hardware]
    if not isinstance(device, GpuSpec):
        raise ConfigError("hardware", hardware, "not a GPU")
    system = System.of(device, tp=tp, devices=tp, runtime=runtime_profiles()[runtime])
    seconds, _, _ = gpu.op_time(device, op, precision, tp, rates(system))
    return seconds, (op.m, op.n, op.k)


def compare(path: str | Path, hardware: str, runtime: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """Every measured GEMM of ``path`` beside the model's time; a shape the model's graph does not
    produce is an error (the file and the graph must describe the same operator)."""
    data = json.loads(Path(path).read_text())
    rows = []
    for r in data["rows"]:
        predicted_s, shape = model_seconds(hardware, r["tp"], r["m"], r["op"], r["dtype"], runtime)
        if shape != (r["m"], r["n"], r["k"]):
            raise ConfigError("shape", (r["m"], r["n"], r["k"]), f"the model's {r['op']} at TP {r['tp']} is {shape}")
        rows.append({**r, "model_us": predicted_s * 1e6, "error_pct": (predicted_s * 1e6 / r["us"] - 1.0) * 100.0})
    groups: dict[str, list[float]] = {}
    for r in rows:
        regime = f"decode (m <= {DECODE_MAX_TOKENS})" if r["m"] <= DECODE_MAX_TOKENS else \
            f"prefill (m > {DECODE_MAX_TOKENS})"
        groups.setdefault(f"{r['dtype']}, {regime}", []).append(abs(r["error_pct"]))
    return {"gpu": data.get("gpu"), "hardware": hardware, "runtime": runtime, "rows": rows,
            "mape_pct": statistics.fmean(abs(r["error_pct"]) for r in rows) if rows else float("nan"),
            "by_group": {k: {"n": len(v), "mape_pct": statistics.fmean(v)} for k, v in sorted(groups.items())}}


def table(report: dict[str, Any]) -> str:
    """Markdown: the MAPE by dtype and regime, then every GEMM."""
    out = [f"{report['gpu']} ({report['hardware']}, runtime profile `{report['runtime']}`): **MAPE "
           f"{report['mape_pct']:.1f}%** over {len(report['rows'])} GEMMs.", "",
           "| dtype, regime | GEMMs | MAPE |", "| --- | ---: | ---: |"]
    for key, group in report["by_group"].items():
        out.append(f"| {key} | {group['n']} | {group['mape_pct']:.1f}% |")
    out += ["", "| op | TP | m | n | k | dtype | measured us | TFLOP/s | model us | error |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in report["rows"]:
        out.append(f"| {r['op']} | {r['tp']} | {r['m']} | {r['n']} | {r['k']} | {r['dtype']} | {r['us']:.1f} | "
                   f"{r['tflops']:.0f} | {r['model_us']:.1f} | {r['error_pct']:+.1f}% |")
    return "\n".join(out)


WAVES_FILES = (("gemm-waves-h100.json", "h100-sxm-80gb"), ("gemm-waves-h200.json", "h200-sxm-141gb"))
# the presets whose GEMM schedule a sweep measured; every other preset's is assumed
SCHEDULE_MEASURED = frozenset(hardware for _, hardware in WAVES_FILES)


def shape_fit(ideal: Any, measured: Any) -> tuple[float, float, Any]:
    """a, b of ``a * ideal + b`` minimising the squared relative error against ``measured`` (arrays of
    seconds), and the absolute percentage errors: a sweep judged on its shape, not its level."""
    import numpy as np
    (a, b), *_ = np.linalg.lstsq(np.column_stack([ideal / measured, 1.0 / measured]), np.ones(len(measured)),
                                 rcond=None)
    return float(a), float(b), np.abs((a * ideal + b) / measured - 1.0) * 100.0


def waves(path: str | Path, hardware: str) -> dict[str, Any]:
    """How well each way of placing tiles on the SMs (``gemm_schedule``) explains a sweep of GEMMs
    across wave boundaries (``benchmarks/gpu_gemm.py --waves``). Per dtype, each GEMM is priced as
    a * flops / (dense peak x tile utilisation) + b, the tensor-core time at an efficiency 1/a plus a
    fixed cost b per launch, with a and b chosen to minimise the squared relative error (so only the
    shape across n and m is judged, not the level the whole-model fit sets); reported: each
    schedule's fitted efficiency, fixed cost and mean absolute percentage error. Memory time is not
    priced (a few m-256 shapes sit near the bandwidth bound), and b is not held non-negative: a
    negative fixed cost says the schedule's shape needed one to fit. The m-256 shapes never pass 128
    tiles, so they test the fill of one wave, not a wave boundary."""
    import dataclasses

    import numpy as np
    device = PRESETS.get(hardware)
    if not isinstance(device, GpuSpec):
        raise ConfigError("hardware", hardware, "not a GPU preset")
    rows = json.loads(Path(path).read_text())["rows"]
    out: dict[str, Any] = {"hardware": hardware, "shipped": device.gemm_schedule, "rows": len(rows), "fits": {}}
    for schedule in ("waves", "stream-k"):
        spec = dataclasses.replace(device, gemm_schedule=schedule)
        fits = {}
        for dtype in sorted({r["dtype"] for r in rows}):
            group = [r for r in rows if r["dtype"] == dtype]
            peak = gpu.dense_peak(spec, get_precision(PRECISIONS[dtype]))
            ideal = np.array([2.0 * r["m"] * r["n"] * r["k"]
                              / (peak * gpu.tile_utilisation(spec, r["m"], r["n"], r["k"])) for r in group])
            measured = np.array([r["us"] * 1e-6 for r in group])
            a, b, errors = shape_fit(ideal, measured)
            fits[dtype] = {"n": len(group), "efficiency": 1.0 / a, "fixed_us": b * 1e6,
                           "mape_pct": float(errors.mean()), "max_pct": float(errors.max())}
        out["fits"][schedule] = fits
    return out


def waves_table(report: dict[str, Any]) -> str:
    """Markdown: each schedule's fit to the wave-boundary sweep."""
    out = [f"Wave-boundary sweep on {report['hardware']} ({report['rows']} GEMMs; the preset's schedule: "
           f"`{report['shipped']}`):", "",
           "| schedule | dtype | GEMMs | fitted efficiency | fixed cost us | MAPE | worst |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for schedule, fits in report["fits"].items():
        for dtype, f in fits.items():
            out.append(f"| {schedule} | {dtype} | {f['n']} | {f['efficiency']:.3f} | {f['fixed_us']:.1f} | "
                       f"{f['mape_pct']:.1f}% | {f['max_pct']:.0f}% |")
    return "\n".join(out)


SHIPPED = (("gemm-h100.json", "h100-sxm-80gb"), ("gemm-h200.json", "h200-sxm-141gb"))
DOC_COMMAND = 'python -c "from ador.validation import gemm; gemm.update_doc(\'docs/validation.md\')"'


def shipped_reports() -> list[dict[str, Any]]:
    """The comparison for each GEMM file we measured (``ador/data/own/``)."""
    from ador.validation.data import DEFAULT_DATA
    return [compare(DEFAULT_DATA.parent / "own" / name, hardware) for name, hardware in SHIPPED]


def update_doc(path: str | Path) -> None:
    """Rewrite the generated GEMM section of ``path`` from the shipped files."""
    from ador.markdown import update_section
    from ador.validation.data import DEFAULT_DATA
    sweeps = [waves(DEFAULT_DATA.parent / "own" / name, hardware) for name, hardware in WAVES_FILES]
    update_section(Path(path), DOC_COMMAND, "\n\n".join([*(table(r) for r in shipped_reports()),
                                                         *(waves_table(r) for r in sweeps)]))
