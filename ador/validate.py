"""Model vs measured hardware: predict each row of a measurements CSV and report the errors.

The CSV schema is that of ``shared/validation/measured.csv`` (README beside it); a copy of the
public file ships in ``ador/data``. Rows the model cannot predict (unknown model, does not fit,
...) are counted with their reason, never dropped silently.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ador.errors import AdorError, ConfigError
from ador.hardware import PRESETS, Device, System
from ador.hardware.calibration import software_overheads
from ador.perf import evaluate, stage_time
from ador.workload import decode_step, get_model, get_precision, prefill
from ador.workload.models import ModelSpec

DEFAULT_DATA = Path(__file__).with_name("data") / "measured.csv"
COLUMNS = ("id", "source", "hardware", "devices", "model", "precision", "tp", "batch", "input_len", "output_len",
           "metric", "value", "unit")
# Serving software behind each public source. A stack's per-forward-pass overhead (host scheduling,
# Python, sampling) is a property of the software, fitted per stack; rows of other sources use the
# median stack ("default").
SOFTWARE_OF_SOURCE = {
    "TRTLLM_PERF_v090": "tensorrt-llm",   # C++ runtime, static-batch benchmark
    "GPTFAST_README": "gpt-fast",         # torch.compile with CUDA graphs
    "SPLITWISE_PERFMODEL": "splitwise",   # the Splitwise profiling harness
    "LLMCOMPASS_A100": "pytorch",         # PyTorch layer timings (per layer: no step overhead)
}
TUNED_SOFTWARE = "tensorrt-llm"           # what GPU presets assume: vendor-tuned serving


def software_of(source: str) -> str:
    return SOFTWARE_OF_SOURCE.get(source, "default")


METRICS = ("ttft_ms", "tbt_ms", "e2e_ms", "decode_tok_s_per_user", "output_tok_s_per_gpu", "output_tok_s",
           "prefill_layer_ms", "decode_layer_ms")


@dataclass(frozen=True, slots=True)
class Measurement:
    id: str
    source: str
    hardware: str
    devices: int
    model: str
    precision: str
    tp: int
    batch: int
    input_len: int
    output_len: int
    metric: str
    value: float
    unit: str


def load_measurements(path: str | Path = DEFAULT_DATA) -> list[Measurement]:
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError("data", str(path), f"missing columns: {', '.join(missing)}")
            rows = []
            for line, raw in enumerate(reader, start=2):
                rows.append(_parse_row(raw, f"{path.name}:{line}"))
            return rows
    except FileNotFoundError:
        raise ConfigError("data", str(path), "no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError("data", str(path), f"cannot be read as CSV ({err})") from None


def _parse_row(raw: Mapping[str, str], where: str) -> Measurement:
    values: dict[str, Any] = {}
    for name in COLUMNS:
        text = (raw.get(name) or "").strip()
        if name in ("devices", "tp", "batch", "input_len", "output_len"):
            try:
                values[name] = int(text)
            except ValueError:
                raise ConfigError(f"{where}:{name}", text, "expected an integer") from None
        elif name == "value":
            try:
                values[name] = float(text)
            except ValueError:
                raise ConfigError(f"{where}:{name}", text, "expected a number") from None
            if not values[name] > 0 or math.isinf(values[name]):
                raise ConfigError(f"{where}:{name}", text, "expected a positive finite number")
        else:
            values[name] = text
    return Measurement(**values)


def _layer_time(system: System, model: ModelSpec, ops: tuple, precision) -> float:
    """One transformer layer on one device: the per-layer operators (count = n_layers) / n_layers."""
    layer_ops = tuple(op for op in ops if op.count == model.n_layers and op.name != "embedding")
    return stage_time(system, precision, layer_ops, breakdown=False).time_s / model.n_layers - \
        (system.device.efficiency.step_overhead_s / model.n_layers if system.device.kind == "gpu" else 0.0)


def predict(m: Measurement, devices: Mapping[str, Device] = PRESETS,
            overheads: Mapping[str, Mapping[str, float]] | None = None) -> float:
    """The model's value for one row, in the row's unit. Raises AdorError if it cannot be predicted.

    ``overheads`` maps software stacks to their fitted overheads (default: calibration.yaml's).
    """
    if m.hardware not in devices:
        raise ConfigError("hardware", m.hardware, "unknown hardware")
    if m.metric not in METRICS:
        raise ConfigError("metric", m.metric, f"unsupported metric (known: {', '.join(METRICS)})")
    device = devices[m.hardware]
    overheads = software_overheads() if overheads is None else overheads
    stack = software_of(m.source)
    if device.kind == "gpu" and (stack in overheads or "default" in overheads):
        fitted = {**overheads.get("default", {}), **overheads.get(stack, {})}
        device = dataclasses.replace(device, efficiency=dataclasses.replace(device.efficiency, **fitted))
    model = get_model(m.model)
    precision = get_precision(m.precision)
    system = System.of(device, tp=m.tp, devices=m.devices)
    if m.metric == "prefill_layer_ms":
        ops = prefill(model, precision, m.tp, m.batch, m.input_len)
        return _layer_time(system, model, ops, precision) * 1e3
    if m.metric == "decode_layer_ms":
        ops = decode_step(model, precision, m.tp, m.batch, m.input_len + m.output_len)
        return _layer_time(system, model, ops, precision) * 1e3
    result = evaluate(system, model, precision, batch=m.batch, input_len=m.input_len, output_len=m.output_len,
                      breakdown=False)
    if not result.fits:
        raise ConfigError("batch", m.batch, f"does not fit: needs {result.memory.total_bytes / 2**30:.1f} GiB "
                                            f"per device of {result.capacity_bytes / 2**30:.1f}")
    return {
        "ttft_ms": result.ttft_s * 1e3,
        "tbt_ms": result.tbt_s * 1e3,
        "e2e_ms": result.e2e_s * 1e3,
        "decode_tok_s_per_user": 1.0 / result.tbt_s,
        "output_tok_s_per_gpu": result.output_tok_s / system.devices,
        "output_tok_s": result.output_tok_s,
    }[m.metric]


@dataclass(frozen=True)
class RowResult:
    row: Measurement
    predicted: float | None = None
    skipped: str | None = None

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.row.value) / self.row.value

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {"id": r.id, "source": r.source, "hardware": r.hardware, "model": r.model, "precision": r.precision,
                "tp": r.tp, "batch": r.batch, "input_len": r.input_len, "output_len": r.output_len,
                "metric": r.metric, "measured": r.value, "predicted": self.predicted, "unit": r.unit,
                "error_pct": self.error_pct, "abs_error_pct": None if self.error_pct is None else abs(self.error_pct),
                "skipped": self.skipped}


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[RowResult, ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "rows": [r.to_dict() for r in self.rows]}


def _mape(results: list[RowResult]) -> float:
    return statistics.fmean(abs(r.error_pct) for r in results) if results else float("nan")


def summarise(results: list[RowResult], worst: int = 5) -> dict[str, Any]:
    done = [r for r in results if r.predicted is not None]
    skipped = [r for r in results if r.predicted is None]
    by_metric = {k: _mape([r for r in done if r.row.metric == k]) for k in sorted({r.row.metric for r in done})}
    by_hw = {k: _mape([r for r in done if r.row.hardware == k]) for k in sorted({r.row.hardware for r in done})}
    by_source = {k: _mape([r for r in done if r.row.source == k]) for k in sorted({r.row.source for r in done})}
    reasons: dict[str, int] = {}
    for r in skipped:
        reasons[r.skipped] = reasons.get(r.skipped, 0) + 1
    ranked = sorted(done, key=lambda r: -abs(r.error_pct))[:worst]
    return {
        "mape_pct": _mape(done), "by_metric": by_metric, "by_hardware": by_hw, "by_source": by_source,
        "n": len(done), "n_skipped": len(skipped), "skipped_reasons": reasons,
        "worst": [{"id": r.row.id, "error_pct": r.error_pct} for r in ranked],
    }


def predict_rows(rows: list[Measurement], devices: Mapping[str, Device] = PRESETS,
                 overheads: Mapping[str, Mapping[str, float]] | None = None) -> list[RowResult]:
    results = []
    for row in rows:
        try:
            results.append(RowResult(row, predicted=predict(row, devices, overheads)))
        except AdorError as err:
            results.append(RowResult(row, skipped=str(err)))
    return results


def validate(rows: list[Measurement], devices: Mapping[str, Device] = PRESETS,
             overheads: Mapping[str, Mapping[str, float]] | None = None) -> ValidationReport:
    results = predict_rows(rows, devices, overheads)
    return ValidationReport(tuple(results), summarise(results))
