"""One all-reduce among the GPUs of a node, measured, against the model's price of it.

``ador/data/allreduce.csv`` holds published single-node all-reduce timings (nccl-tests and RCCL tests
tables, PyTorch, vLLM and Triton benchmarks of NCCL and of custom one- and two-shot kernels; sources,
quotes and doubts in ``allreduce-SOURCES.md``). Each is set beside what ``ador.perf.collectives``
charges for the same collective in a decode or prefill step: the best of ring, one-shot and two-shot
over the GPU's links at the fitted link efficiency, the fitted software latency per synchronisation
step, the runtime's per-kernel cost. Nothing is fitted to these rows. Where a source prints only the
bus bandwidth (nccl-tests' ``busbw``), the time is nccl-tests' own definition turned round:
``t = S x 2(n-1)/n / busbw``.

    python -c "from ador.validation import collectives; collectives.update_doc('docs/validation.md')"
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ador.errors import ConfigError
from ador.hardware import GPUS, PRESETS, Device, System
from ador.hardware.presets import NVLS_BOARDS
from ador.hardware.runtime import RuntimeProfile, runtime_profiles
from ador.perf.collectives import collective_seconds
from ador.perf.stage import rates
from ador.validation.data import csv_columns, read_rows
from ador.validation.kernels import DEFAULT_PROFILE
from ador.workload.ops import ALLREDUCE

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "allreduce.csv"
# message sizes by what they are in LLM inference: a decode step's all-reduce (batch x hidden x 2 bytes:
# 16 KB at batch 1 of an 8K model to 1 MB at batch 64), a large decode batch or a short prompt's,
# and a prefill's (a 2,048-token prompt of an 8K model: 32 MB)
SIZE_BANDS = ((256 * 1024, "up to 256 KB (decode)"), (8 * 1024 * 1024, "256 KB - 8 MB"),
              (float("inf"), "over 8 MB (prefill)"))
# what kind of kernel ran: NCCL or RCCL (what a stack uses without its own kernels, and what the fitted
# rows' TensorRT-LLM 0.5-0.9 used beyond its custom all-reduce's sizes) or a custom kernel
CUSTOM = ("vllm-custom", "triton-1shot", "torch-symm-mem")
NCCL_KIND, CUSTOM_KIND = "NCCL / RCCL", "custom kernel"
LARGE_BYTES = 256 * 1024 * 1024    # from here on an all-reduce runs at its bus bandwidth (nccl-tests curves flatten)
DOC_COMMAND = "python -c \"from ador.validation import collectives; collectives.update_doc('docs/validation.md')\""


@dataclass(frozen=True, slots=True)
class AllReduceMeasurement:
    id: str
    gpu: str
    gpus: int
    implementation: str
    message_bytes: int
    time_us: float          # as printed, or from the printed bus bandwidth
    source_url: str
    exclude: str = ""       # why the row is not compared (a data-quality reason), empty if it is

    @property
    def kind(self) -> str:
        return CUSTOM_KIND if self.implementation.startswith(CUSTOM) else NCCL_KIND

    @property
    def busbw_bytes_per_s(self) -> float:
        """nccl-tests' bus bandwidth: what each GPU's links carry per second in a ring all-reduce."""
        return self.message_bytes * 2 * (self.gpus - 1) / self.gpus / (self.time_us * 1e-6)

    @property
    def band(self) -> str:
        return next(label for top, label in SIZE_BANDS if self.message_bytes <= top)


REQUIRED = ("id", "gpu", "gpus", "implementation", "message_bytes", "source_url")


def _time_us(raw: Mapping[str, str | None], where: str) -> float:
    if raw.get("time_us"):
        return float(raw["time_us"] or 0)
    if raw.get("busbw_gb_s"):
        n, size = int(raw["gpus"] or 0), int(raw["message_bytes"] or 0)
        return 1e6 * size * 2 * (n - 1) / n / (float(raw["busbw_gb_s"] or 0) * 1e9)
    raise ConfigError("time_us", "", f"{where}: neither a time nor a bus bandwidth")


def _parse(raw: Mapping[str, str | None], where: str) -> AllReduceMeasurement:
    try:
        row = AllReduceMeasurement(str(raw["id"]), str(raw["gpu"]), int(raw["gpus"] or ""),
                                    str(raw["implementation"]), int(raw["message_bytes"] or ""), _time_us(raw, where),
                                    str(raw["source_url"]), raw.get("exclude") or "")
    except ConfigError:
        raise
    except (ValueError, ZeroDivisionError) as err:
        raise ConfigError("data", where, f"malformed row: {err}") from None
    if row.gpus < 2:
        raise ConfigError("gpus", row.gpus, f"{where}: an all-reduce needs at least 2 GPUs")
    if row.message_bytes <= 0:
        raise ConfigError("message_bytes", row.message_bytes, f"{where}: must be positive")
    if not (math.isfinite(row.time_us) and row.time_us > 0):
        raise ConfigError("time_us", row.time_us, f"{where}: must be a positive number (or busbw_gb_s one)")
    return row


def is_allreduce_file(path: str | Path) -> bool:
    """Whether a CSV holds all-reduce timings (by its header)."""
    return {"gpus", "implementation", "message_bytes"} <= csv_columns(path)


def load(path: str | Path = DEFAULT_DATA) -> list[AllReduceMeasurement]:
    return read_rows(path, REQUIRED, _parse)


def model_us(gpu: str, gpus: int, message_bytes: float, runtime: str = DEFAULT_PROFILE, *,
             devices: Mapping[str, Device] = PRESETS, profile: RuntimeProfile | None = None) -> float:
    """What one all-reduce of ``message_bytes`` per GPU among ``gpus`` GPUs costs in the model
    (``devices`` and ``profile`` replace the presets and the shipped profile ``runtime``)."""
    if gpu not in devices:
        raise ConfigError("gpu", gpu, "no preset")
    profile = runtime_profiles()[runtime] if profile is None else profile
    r = rates(System.of(devices[gpu], tp=gpus, devices=gpus, runtime=profile))
    return 1e6 * collective_seconds(ALLREDUCE, message_bytes, gpus, r.link_bw, r.step_latency_s, r.direct,
                                    r.op_overhead_s)


def compare(rows: Sequence[AllReduceMeasurement] | None = None, runtime: str = DEFAULT_PROFILE, *,
            devices: Mapping[str, Device] = PRESETS, profile: RuntimeProfile | None = None) -> dict[str, Any]:
    """Every usable row beside the model's time, the rows left out with their reasons, and the
    errors by GPU, kernel kind and size band (``devices``, ``profile``: as ``model_us``)."""
    rows = load() if rows is None else rows
    done: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    for r in rows:
        reason = r.exclude or ("" if r.gpu in devices else f"{r.gpu}: no preset")
        if reason:
            left_out.append({"id": r.id, "reason": reason})
            continue
        predicted = model_us(r.gpu, r.gpus, r.message_bytes, runtime, devices=devices, profile=profile)
        done.append({"id": r.id, "gpu": r.gpu, "gpus": r.gpus, "implementation": r.implementation, "kind": r.kind,
                     "band": r.band, "message_bytes": r.message_bytes, "measured_us": r.time_us,
                     "model_us": predicted, "error_pct": 100.0 * (predicted / r.time_us - 1.0)})
    groups: dict[tuple, list[float]] = {}
    for d in done:
        groups.setdefault((d["gpu"], d["gpus"], d["kind"], d["band"]), []).append(d["error_pct"])
    order = {label: i for i, (_, label) in enumerate(SIZE_BANDS)}
    by_group = [{"gpu": g, "gpus": n, "kind": k, "band": b, "n": len(e), "median_error_pct": statistics.median(e),
                 "mape_pct": statistics.fmean(abs(x) for x in e)}
                for (g, n, k, b), e in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2],
                                                                               order[kv[0][3]]))]
    if not done:
        raise ConfigError("data", f"{len(rows)} rows", "none can be compared (every row is left out: "
                          + "; ".join(sorted({x["reason"] for x in left_out}))[:200] + ")")
    return {"runtime": runtime, "rows": done, "left_out": left_out, "by_group": by_group,
            "mape_pct": statistics.fmean(abs(d["error_pct"]) for d in done)}


def link_fractions(rows: Sequence[AllReduceMeasurement] | None = None, runtime: str = DEFAULT_PROFILE
                   ) -> list[dict[str, Any]]:
    """Per GPU and count, the highest bus bandwidth measured at ``LARGE_BYTES`` or more, as a share of
    the GPU's link bandwidth, beside the share the fitted link efficiency gives every GPU."""
    rows = load() if rows is None else rows
    efficiency = runtime_profiles()[runtime].link_efficiency
    best: dict[tuple[str, int], AllReduceMeasurement] = {}
    for r in rows:
        if r.exclude or r.gpu not in PRESETS or r.message_bytes < LARGE_BYTES:
            continue
        key = (r.gpu, r.gpus)
        if key not in best or r.busbw_bytes_per_s > best[key].busbw_bytes_per_s:
            best[key] = r
    out = []
    for (gpu, gpus), r in sorted(best.items()):
        link = PRESETS[gpu].link_bw_bytes_per_s
        out.append({"gpu": gpu, "gpus": gpus, "id": r.id, "implementation": r.implementation,
                    "busbw_gb_s": r.busbw_bytes_per_s / 1e9, "link_gb_s": link / 1e9,
                    "fraction": r.busbw_bytes_per_s / link, "fitted_fraction": efficiency})
    return out


def group(report: dict[str, Any], gpu: str, gpus: int, kind: str, band: str) -> dict[str, Any]:
    """One line of ``by_group`` (KeyError if the data have none)."""
    for line in report["by_group"]:
        if (line["gpu"], line["gpus"], line["kind"], line["band"]) == (gpu, gpus, kind, band):
            return line
    raise KeyError((gpu, gpus, kind, band))


def table(report: dict[str, Any], *, every_row: bool = True) -> str:
    """Markdown: the errors by GPU, kernel kind and size band, then (``every_row``) every row in a
    details block."""
    out = [f"**MAPE {report['mape_pct']:.1f}%** over {len(report['rows'])} all-reduces (runtime profile "
           f"`{report['runtime']}`; {len(report['left_out'])} rows left out, reasons in the file). Error: the model's "
           "time over the measured, less one; above zero the model is slower.", "",
           "| GPU | GPUs | kernel | message size | rows | median error | MAPE |",
           "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for g in report["by_group"]:
        out.append(f"| {g['gpu']} | {g['gpus']} | {g['kind']} | {g['band']} | {g['n']} | "
                   f"{g['median_error_pct']:+.0f}% | {g['mape_pct']:.0f}% |")
    if not every_row:
        return "\n".join(out)
    out += ["", "<details><summary>Every row</summary>", "",
            "| id | GPU | GPUs | implementation | bytes | measured us | model us | error |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for d in report["rows"]:
        out.append(f"| {d['id']} | {d['gpu']} | {d['gpus']} | {d['implementation']} | {d['message_bytes']} | "
                   f"{d['measured_us']:.1f} | {d['model_us']:.1f} | {d['error_pct']:+.0f}% |")
    return "\n".join(out + ["", "</details>"])


def fractions_table(lines: Sequence[dict[str, Any]]) -> str:
    out = ["| GPU | GPUs | implementation | bus bandwidth GB/s | link GB/s | share of the link "
           "| fitted link efficiency |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for x in lines:
        out.append(f"| {x['gpu']} | {x['gpus']} | {x['implementation']} | {x['busbw_gb_s']:.0f} | {x['link_gb_s']:.0f} "
                   f"| {x['fraction']:.2f} | {x['fitted_fraction']:.3f} |")
    return "\n".join(out)


PANEL_MIN_ROWS = 5                               # a GPU x count with fewer compared rows gets no panel
CURVE_BYTES = tuple(2 ** k for k in range(10, 34))   # 1 KB .. 8 GB, the nccl-tests sweep


def nvls_presets() -> dict[str, Device]:
    """The presets with the boards whose NVSwitch reduces (NVLS) priced as ``reducing_switch``: what
    the presets' plain switch is compared with (docs/modelling.md, "What still differs")."""
    import dataclasses

    from ador.perf.collectives import REDUCING_SWITCH
    return {**PRESETS, **{n: dataclasses.replace(GPUS[n], topology=REDUCING_SWITCH) for n in NVLS_BOARDS}}


def curves(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per GPU x count with enough rows: the measured points by kernel kind and the model's time over
    the nccl-tests sizes, as priced and, for the boards whose NVSwitch reduces (NVLS), as it would be
    with the ``reducing_switch`` topology (docs/modelling.md, "What still differs")."""
    from collections import Counter

    counts = Counter((d["gpu"], d["gpus"]) for d in report["rows"])
    panels = []
    profile = runtime_profiles()[report["runtime"]]
    nvls = nvls_presets()
    for (gpu, gpus), n in sorted(counts.items()):
        if n < PANEL_MIN_ROWS:
            continue
        points = {kind: [(d["message_bytes"], d["measured_us"]) for d in report["rows"]
                         if (d["gpu"], d["gpus"], d["kind"]) == (gpu, gpus, kind)] for kind in (NCCL_KIND, CUSTOM_KIND)}
        reducing = [model_us(gpu, gpus, b, devices=nvls, profile=profile) for b in CURVE_BYTES] \
            if gpu in NVLS_BOARDS else None
        panels.append({"gpu": gpu, "gpus": gpus, "points": {k: v for k, v in points.items() if v},
                       "model_us": [model_us(gpu, gpus, b, profile=profile) for b in CURVE_BYTES],
                       "reducing_switch_us": reducing})
    return panels


def plot(panels: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Log-log time of one all-reduce against its message size, one panel per GPU x count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(panels), 2) or 1
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.4 * rows), squeeze=False)
    for ax, p in zip(axes.flat, panels):
        ax.plot(CURVE_BYTES, p["model_us"], color="black", linewidth=1.4, label="model (as shipped)")
        if p["reducing_switch_us"] is not None:
            ax.plot(CURVE_BYTES, p["reducing_switch_us"], color="black", linestyle="--", linewidth=1,
                    label="model, if its switch reduces (NVLS)")
        for (kind, pts), colour, marker in zip(p["points"].items(), ("tab:blue", "tab:orange"), ("o", "^")):
            ax.scatter([b for b, _ in pts], [t for _, t in pts], color=colour, marker=marker, s=26,
                       edgecolor="black", linewidth=0.4, label=f"measured, {kind}", zorder=3)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{p['gpus']} x {p['gpu']}", fontsize=10)
        ax.set_xlabel("message per GPU (bytes)")
        ax.set_ylabel("time of one all-reduce (us)")
        ax.grid(True, which="major", linewidth=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("One all-reduce: published timings against the model", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOT_NAME = "validation_allreduce.png"     # written beside the document update_doc rewrites


def update_doc(path: str | Path) -> None:
    """Rewrite the generated all-reduce section of ``path`` from the shipped file, and its plot beside it."""
    from ador.markdown import update_section
    rows = load()
    report = compare(rows)
    plot(curves(report), Path(path).parent / PLOT_NAME)
    update_section(Path(path), DOC_COMMAND, "\n\n".join([
        "Single-node all-reduce, measured (`ador/data/allreduce.csv`) against the model "
        "(`ador.validation.collectives`):",
        f"![one all-reduce: published timings against the model]({PLOT_NAME})",
        table(report), "Bus bandwidth at 256 MB or more, the best measured per GPU, as a share of the link:",
        fractions_table(link_fractions(rows))]))


@dataclass(frozen=True)
class StepCheck:
    """A decode step's all-reduce as a report prices it, beside the published timings of the same GPU
    and count at messages within a factor of 2 (each priced by the same profile)."""
    gpu: str
    gpus: int
    message_bytes: float
    per_step: int
    model_us: float
    profile: str                         # the runtime profile that priced them
    near: tuple[dict[str, Any], ...]     # id, implementation, message_bytes, measured_us, model_us, error_pct

    def sentence(self, label: str) -> str:
        head = (f"{label} ({self.per_step} per step, {self.message_bytes / 2**20:.2f} MiB per GPU each) are priced "
                f"at {self.model_us:.1f} us each under the `{self.profile}` profile")
        if not self.near:
            return f"{head}; no published all-reduce of {self.gpus} x {self.gpu} within 2x of that size was found."
        errors = sorted(d["error_pct"] for d in self.near)
        spread = f" ({errors[0]:+.0f}% to {errors[-1]:+.0f}%)" if len(errors) > 1 else ""
        runs = ", ".join(f"{d['id']} {d['message_bytes'] / 2**20:g} MiB"
                         for d in sorted(self.near, key=lambda d: (d["message_bytes"], d["id"])))
        return (f"{head}; the {len(self.near)} published all-reduce timings of {self.gpus} x {self.gpu} within 2x "
                f"of that size ({runs}; docs/validation.md \"One all-reduce\") come out with a median error of "
                f"{statistics.median(errors):+.0f}%{spread} by the same rule and profile.")


def step_check(gpu: str, gpus: int, message_bytes: float, per_step: int, profile: RuntimeProfile,
               rows: Sequence[AllReduceMeasurement] | None = None) -> StepCheck:
    rows = load() if rows is None else rows
    near: list[dict[str, Any]] = []
    for r in rows:
        if r.exclude or r.gpu != gpu or r.gpus != gpus or not 0.5 <= r.message_bytes / message_bytes <= 2.0:
            continue
        predicted = model_us(gpu, gpus, r.message_bytes, profile=profile)
        near.append({"id": r.id, "implementation": r.implementation, "message_bytes": r.message_bytes,
                     "measured_us": r.time_us, "model_us": predicted, "error_pct": 100.0 * (predicted / r.time_us - 1)})
    near.sort(key=lambda d: (abs(math.log2(d["message_bytes"] / message_bytes)), d["id"]))
    return StepCheck(gpu, gpus, message_bytes, per_step, model_us(gpu, gpus, message_bytes, profile=profile),
                     profile.name, tuple(near))
