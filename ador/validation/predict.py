"""Model vs measured hardware: predict each row of a measurements CSV and report the errors.

Every row is predicted with the runtime profile of the software that produced it (fitted by
``ador calibrate``); a row from a stack with no fitted profile is predicted with the ``default``
profile and counted as an extrapolation. Rows the model cannot predict (unknown model, does not
fit, ...) are counted with their reason, never dropped silently.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping

from ador.errors import AdorError, ConfigError
from ador.hardware import PRESETS, Device, System
from ador.hardware.runtime import RuntimeProfile, runtime_profiles
from ador.perf import evaluate, stage_time
from ador.validation.data import Measurement
from ador.validation.harness import harness_for, host_timed_seconds, host_timed_terms
from ador.validation.kernels import runtime_for
from ador.workload import decode_step, get_model, get_precision, prefill
from ador.workload.models import ModelSpec
from ador.workload.ops import COLLECTIVES


# One transformer layer on one device: metric -> (phase, whether its collectives are included).
# ``*_layer_ms`` is the layer as a TP shard runs it, its all-reduces included; ``*_shard_ms`` is the
# shard's own computation alone (a layer measured on one device at the shapes of a TP shard).
LAYER_METRICS: dict[str, tuple[str, bool]] = {"prefill_layer_ms": ("prefill", True),
                                              "decode_layer_ms": ("decode", True),
                                              "prefill_shard_ms": ("prefill", False),
                                              "decode_shard_ms": ("decode", False)}
METRICS = ("ttft_ms", "tbt_ms", "e2e_ms", "decode_tok_s_per_user", "output_tok_s_per_gpu", "output_tok_s",
           *LAYER_METRICS)


def layer_ops(model: ModelSpec, ops: tuple, collectives: bool = True) -> tuple:
    """The operators of the transformer layers, without embedding, LM head or pipeline sends (and
    without the collectives unless ``collectives``): those repeated once per layer (count n_layers)
    and an MoE layer's experts (count n_layers x the experts the batch hits)."""
    return tuple(op for op in ops if op.count >= model.n_layers and op.name != "embedding"
                 and (collectives or op.kind not in COLLECTIVES))


def layer_metric_ops(m: Measurement, model: ModelSpec, precision) -> tuple:
    """The per-layer operators a layer metric's row times (all n_layers of them)."""
    phase, collectives = LAYER_METRICS[m.metric]
    ops = prefill(model, precision, m.tp, m.batch, m.input_len, m.pp) if phase == "prefill" else \
        decode_step(model, precision, m.tp, m.batch, m.input_len + m.output_len, m.pp)
    return layer_ops(model, ops, collectives)


def profile_for(m: Measurement, runtimes: Mapping[str, RuntimeProfile]) -> tuple[RuntimeProfile, bool]:
    """The runtime profile that predicts ``m`` and whether that is an extrapolation (the row's stack
    has no fitted profile, so the default one stands in); either way with the kernel facts of the
    row's software (``ador.validation.kernels``)."""
    return runtime_for(m.software, runtimes)


def predict(m: Measurement, devices: Mapping[str, Device] = PRESETS,
            runtimes: Mapping[str, RuntimeProfile] | None = None) -> float:
    """The model's value for one row, in the row's unit. Raises AdorError if it cannot be predicted.

    ``runtimes`` maps software stacks to their fitted profiles (default: calibration.yaml's).
    """
    if m.hardware not in devices:
        raise ConfigError("hardware", m.hardware, "unknown hardware")
    if m.metric not in METRICS:
        raise ConfigError("metric", m.metric, f"unsupported metric (known: {', '.join(METRICS)})")
    runtime, _ = profile_for(m, runtime_profiles() if runtimes is None else runtimes)
    model = get_model(m.model)
    precision = get_precision(m.precision)
    system = System.of(devices[m.hardware], tp=m.tp, pp=m.pp, devices=m.devices, runtime=runtime)
    harness = harness_for(m, model, LAYER_METRICS)     # timed operator by operator from the host?
    if m.metric in LAYER_METRICS:
        # one layer: the per-layer operators / n_layers, no per-step overhead
        ops = layer_metric_ops(m, model, precision)
        total_s = stage_time(system, precision, ops, breakdown=False, step_overhead=False).time_s
        if harness is not None:
            total_s = host_timed_seconds(total_s, *host_timed_terms(harness, ops), system.op_overhead_s)
        return total_s / model.n_layers * 1e3
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
    extrapolated: bool = False      # predicted with the default profile: its stack has none

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.row.value) / self.row.value

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {"id": r.id, "source": r.source, "software": r.software, "hardware": r.hardware, "model": r.model,
                "precision": r.precision, "tp": r.tp, "pp": r.pp, "batch": r.batch, "input_len": r.input_len,
                "output_len": r.output_len,
                "metric": r.metric, "measured": r.value, "predicted": self.predicted, "unit": r.unit,
                "error_pct": self.error_pct, "abs_error_pct": None if self.error_pct is None else abs(self.error_pct),
                "skipped": self.skipped, "extrapolated": self.extrapolated}


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[RowResult, ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "rows": [r.to_dict() for r in self.rows]}


def _mape(results: list[RowResult]) -> float:
    return statistics.fmean(abs(r.error_pct or 0.0) for r in results) if results else float("nan")


def document(source: str) -> str:
    """The document a row's source cites: its address without a fragment (``#L89``, the line
    of a run in a file of several), so the runs of one file count as one source."""
    return source.split("#", 1)[0]


def summarise(results: list[RowResult], worst: int = 5) -> dict[str, Any]:
    done = [r for r in results if r.predicted is not None]
    skipped = [r for r in results if r.predicted is None]
    by_metric = {k: _mape([r for r in done if r.row.metric == k]) for k in sorted({r.row.metric for r in done})}
    by_hw = {k: _mape([r for r in done if r.row.hardware == k]) for k in sorted({r.row.hardware for r in done})}
    by_source = {k: _mape([r for r in done if document(r.row.source) == k])
                 for k in sorted({document(r.row.source) for r in done})}
    by_software = {k: _mape([r for r in done if r.row.stack == k]) for k in sorted({r.row.stack for r in done})}
    reasons: dict[str, int] = {}
    for r in skipped:
        reasons[str(r.skipped)] = reasons.get(str(r.skipped), 0) + 1
    ranked = sorted(done, key=lambda r: -abs(r.error_pct or 0.0))[:worst]
    return {
        "mape_pct": _mape(done), "by_metric": by_metric, "by_hardware": by_hw, "by_source": by_source,
        "by_software": by_software, "n": len(done), "n_skipped": len(skipped),
        "n_extrapolated": sum(1 for r in done if r.extrapolated), "skipped_reasons": reasons,
        "worst": [{"id": r.row.id, "error_pct": r.error_pct} for r in ranked],
    }


def predict_rows(rows: list[Measurement], devices: Mapping[str, Device] = PRESETS,
                 runtimes: Mapping[str, RuntimeProfile] | None = None) -> list[RowResult]:
    runtimes = runtime_profiles() if runtimes is None else runtimes
    results = []
    for row in rows:
        try:
            value = predict(row, devices, runtimes)
            results.append(RowResult(row, predicted=value, extrapolated=profile_for(row, runtimes)[1]))
        except AdorError as err:
            results.append(RowResult(row, skipped=str(err)))
    return results


def validate(rows: list[Measurement], devices: Mapping[str, Device] = PRESETS,
             runtimes: Mapping[str, RuntimeProfile] | None = None) -> ValidationReport:
    results = predict_rows(rows, devices, runtimes)
    return ValidationReport(tuple(results), summarise(results))
