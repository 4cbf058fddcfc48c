"""Energy measured on a GPU (``benchmarks/gpu_energy.py``: the board's energy counter over CUDA-graph
replays) against the model's energy of the same work.

Each workload is priced as ``ador validate`` prices the own measurements' rows (the fitted constants,
the ``default`` profile with the kernel facts of the script's stack): a decode step and a prompt pass
of llama-3-8b through ``evaluate``, a llama-3-70b TP-8 shard's layers through the layer's operators
without collectives, a lone GEMM or matrix-vector product as one operator. Its energy is what
``ador.efficiency`` charges a generation: ``workload_energy_j`` over the stage's counted work (MACs,
vector operations, DRAM and SRAM bytes) plus static power over the model's time, under the power rule
(``calibrated`` by default). Not fitted on, but not a blind test either: these measurements are why the
rule's energy factor is anchored to a dense GEMM (``work_energy_calibration``), and its two GEMM rows sit
near the anchor by construction.

    python -c "from ador.validation import energy; print(energy.table(energy.compare(
        'ador/data/own/energy-h200.json')))"
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ador.cost import assess, workload_energy_components, workload_energy_j
from ador.cost.report import DEFAULT_POWER_RULE
from ador.errors import ConfigError
from ador.hardware import PRESETS, Device, System
from ador.hardware.devices import GpuSpec
from ador.hardware.runtime import RuntimeProfile, runtime_profiles
from ador.markdown import span
from ador.perf import evaluate, stage_time
from ador.perf.stage import StageResult
from ador.validation.kernels import runtime_for
from ador.validation.mixed import software
from ador.validation.predict import layer_ops
from ador.workload import decode_step, get_model, get_precision, prefill
from ador.workload.ops import GEMM, Op

ENERGY_FILES = ("energy-h100.json", "energy-h200.json")
PRICED = ("gemm", "gemv", "decode", "prefill", "decode_shard", "prefill_shard")
COMPONENTS = ("macs", "vector", "dram", "sram", "links", "die_to_die", "static")
DENSE_GEMM_MNK = (8192, 8192, 8192)     # benchmarks/gpu_energy.py's GEMM


@dataclass(frozen=True)
class PricedWork:
    """The model's time and energy of one replay of a measured workload, and the energy by component."""
    time_ms: float
    energy_j: float
    components_j: dict[str, float]

    @property
    def power_w(self) -> float:
        return self.energy_j / (self.time_ms * 1e-3)


def kind_of(entry: dict[str, Any]) -> str:
    """The workload's kind: ``gemv`` for the matrix-vector stream, else the script's ``workload``."""
    return "gemv" if entry["workload"] == "stream" and entry.get("name") == "gemv" else entry["workload"]


def label(row: dict[str, Any]) -> str:
    """A compared row's name for tables and plots: its kind and, where it says more, its name."""
    return row["kind"] if row["name"] in ("", row["kind"]) else f"{row['kind']} {row['name']}"


def gemm_stage(device: Device, runtime: RuntimeProfile, precision_name: str, mnk: tuple[int, int, int]
               ) -> StageResult:
    """One m x n x k GEMM on one ``device`` as the workload graph prices it: its flops, the weight
    operand (k x n) from DRAM, activations in and out, the runtime's per-kernel cost. The GEMM alone:
    its operands are in its datatype before the replays (benchmarks/gpu_energy.py casts them once), so
    no input cast is priced whatever the runtime's ``fp8_cast_kernel``."""
    m, n, k = mnk
    precision = get_precision(precision_name)
    op = Op("gemm", GEMM, "prefill" if m > 1 else "decode", 1, m=m, n=n, k=k, flops=2.0 * m * n * k,
            weight_bytes=k * n * precision.weight_bytes, act_bytes=m * k * precision.act_bytes
            + m * n * precision.hidden_bytes)
    lone = replace(runtime, fp8_cast_kernel=False)
    return stage_time(System.of(device, tp=1, runtime=lone), precision, (op,), step_overhead=False)


def dense_gemm_power_w(device: Device, runtime: RuntimeProfile, power_rule: str = DEFAULT_POWER_RULE) -> float:
    """The model's power for ``device`` running one large bf16 GEMM (8192 cubed) back to back: the
    work a GPU's power limit binds on (the anchor of ``work_energy_calibration``)."""
    stage = gemm_stage(device, runtime, "bf16", DENSE_GEMM_MNK)
    return workload_energy_j(device, get_precision("bf16").compute_dtype, stage.activity(), power_rule) / stage.time_s


def _stage(hardware: str, entry: dict[str, Any], torch_version: str) -> tuple[StageResult, str, float]:
    """The model's stage for one replay of ``entry``, the precision it runs in, and how many replays
    the stage covers (a shard's stage is all of the model's layers; a replay runs ``layers`` of them)."""
    device = PRESETS.get(hardware)
    if device is None:
        raise ConfigError("hardware", hardware, "unknown hardware")
    kind = kind_of(entry)
    if kind not in PRICED:
        raise ConfigError("workload", entry.get("workload"), f"not priced by the model (priced: {', '.join(PRICED)})")
    runtime, _ = runtime_for(software(torch_version), runtime_profiles())
    precision_name = entry.get("dtype", "bf16")
    if precision_name not in ("bf16", "fp8"):
        raise ConfigError("dtype", precision_name, "expected bf16 or fp8")
    precision = get_precision(precision_name)
    if kind in ("gemm", "gemv"):
        mnk = (entry["m"], entry["n"], entry["k"]) if kind == "gemm" else (1, entry["rows"], entry["cols"])
        return gemm_stage(device, runtime, precision_name, mnk), precision_name, 1.0
    model = get_model(entry["model"])
    tp = entry["tp"]
    system = System.of(device, tp=tp, devices=tp, runtime=runtime)
    if kind in ("decode_shard", "prefill_shard"):
        ops = decode_step(model, precision, tp, entry["batch"], entry["kv_len"]) if kind == "decode_shard" else \
            prefill(model, precision, tp, entry["batch"], entry["prompt"])
        return (stage_time(system, precision, layer_ops(model, ops, collectives=False), step_overhead=False),
                precision_name, model.n_layers / entry["layers"])
    if kind == "decode":       # the one decode step of a generation of 2 over a cache of kv_len tokens
        result = evaluate(system, model, precision, batch=entry["batch"], input_len=entry["kv_len"] - 1,
                          output_len=2)
        return result.decode, precision_name, 1.0
    result = evaluate(system, model, precision, batch=entry["batch"], input_len=entry["prompt"], output_len=1)
    return result.prefill, precision_name, 1.0


def price(hardware: str, entry: dict[str, Any], torch_version: str = "2.11.0+cu130",
          power_rule: str = DEFAULT_POWER_RULE) -> PricedWork:
    """The model's time and energy of one replay of a workload of ``benchmarks/gpu_energy.py``."""
    stage, precision_name, replays = _stage(hardware, entry, torch_version)
    parts = workload_energy_components(PRESETS[hardware], get_precision(precision_name).compute_dtype,
                                       stage.activity(), power_rule)
    per = {k: v / replays for k, v in parts.items()}
    return PricedWork(time_ms=stage.time_s * 1e3 / replays, energy_j=sum(per.values()), components_j=per)


def compare(path: str | Path, power_rule: str = DEFAULT_POWER_RULE) -> dict[str, Any]:
    """Every priced workload of ``path`` beside the model's; the board's idle power; the ratio of the
    model's energy to the measured one, its median and range."""
    data = json.loads(Path(path).read_text())
    hardware = data["hardware"]
    torch_version = data["environment"]["torch"]
    rows = []
    for entry in data["workloads"]:
        if kind_of(entry) not in PRICED:
            continue
        priced = price(hardware, entry, torch_version, power_rule)
        rows.append({"kind": kind_of(entry), "name": entry["name"], "measured_ms": entry["ms_per_replay"],
                     "measured_j": entry["j_per_replay"], "measured_w": entry["power_w"],
                     "sm_clock_mhz": entry["sm_clock_mean_mhz"], "model_ms": priced.time_ms,
                     "model_j": priced.energy_j, "model_w": priced.power_w,
                     "energy_ratio": priced.energy_j / entry["j_per_replay"], "flops": entry.get("flops"),
                     "components_j": priced.components_j})
    if not rows:
        raise ConfigError("workloads", str(path), "no workload the model prices")
    ratios = [r["energy_ratio"] for r in rows]
    return {"hardware": hardware, "gpu": data["environment"].get("gpu"), "power_rule": power_rule,
            "power_limit_w": data["environment"].get("power_limit_w"),
            "idle_w": data["idle_before"]["power_w"], "idle_after_w": data["idle_after"]["power_w"],
            "rows": rows, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios)}


def shipped_reports(power_rule: str = DEFAULT_POWER_RULE) -> list[dict[str, Any]]:
    from ador.validation.data import DEFAULT_DATA
    return [compare(DEFAULT_DATA.parent / "own" / name, power_rule) for name in ENERGY_FILES]


def table(report: dict[str, Any]) -> str:
    """Markdown: each workload's time, energy and power, measured and modelled."""
    out = [f"Energy on {report['hardware']} ({report['gpu']}, power limit {report['power_limit_w']:.0f} W; idle "
           f"{report['idle_w']:.0f} W, {report['idle_after_w']:.0f} W just after the workloads; power rule "
           f"`{report['power_rule']}`):", "",
           "| workload | measured ms | model ms | measured J | model J | model / measured J | measured W | "
           "model W | SM clock (MHz) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["rows"]:
        out.append(f"| {label(r)} | {r['measured_ms']:.3f} | {r['model_ms']:.3f} | {r['measured_j']:.3f} "
                   f"| {r['model_j']:.3f} | {r['energy_ratio']:.2f} | {r['measured_w']:.0f} | {r['model_w']:.0f} | "
                   f"{r['sm_clock_mhz']:.0f} |")
    return "\n".join(out)


def components_table(reports: Sequence[dict[str, Any]]) -> str:
    """Markdown: what the model's energy of each workload is made of (shares of its total)."""
    shown = [c for c in COMPONENTS if any(r["components_j"][c] for rep in reports for r in rep["rows"])]
    out = ["| GPU | workload | " + " | ".join(shown) + " |",
           "| --- | --- | " + " | ".join("---:" for _ in shown) + " |"]
    for rep in reports:
        for r in rep["rows"]:
            shares = [r["components_j"][c] / r["model_j"] * 100.0 for c in shown]
            out.append(f"| {rep['hardware']} | {label(r)} | " + " | ".join(f"{s:.0f}%" for s in shares)
                       + " |")
    return "\n".join(out)


def figures(reports: Sequence[dict[str, Any]] | None = None) -> dict[str, str]:
    """The figures docs/validation.md quotes from the shipped files (priced under ``calibrated``)."""
    from ador.cost.report import component_power_calibration, work_energy_calibration, work_energy_ratios
    reports = shipped_reports() if reports is None else reports
    if any(rep["power_rule"] != "calibrated" for rep in reports):
        raise ConfigError("power_rule", reports[0]["power_rule"], "the quoted figures are the calibrated rule's")
    rows = [r for rep in reports for r in rep["rows"]]
    matrix = [r for r in rows if r["kind"] in ("gemm", "prefill", "prefill_shard")]
    tdp_factor, energy_factor = component_power_calibration(), work_energy_calibration()

    def ratios(kinds: tuple[str, ...]) -> str:
        return span([r["energy_ratio"] for r in rows if r["kind"] in kinds], ".2f")

    static = [assess(PRESETS[rep["hardware"]]).working_static_w for rep in reports]
    chiplet = {name: assess(PRESETS[name]).working_static_w for name in ("b200-sxm-192gb", "mi300x-192gb")}
    sku = work_energy_ratios()
    gh100 = PRESETS["h100-sxm-80gb"]
    assert isinstance(gh100, GpuSpec)
    return {
        "n": str(len(rows)),
        "ratio_range": span([r["energy_ratio"] for r in rows], ".2f"),
        # the GEMMs sit near the anchor by construction: the range without them
        "non_gemm_ratio_range": span([r["energy_ratio"] for r in rows if r["kind"] != "gemm"], ".2f"),
        "gemm_ratio_range": ratios(("gemm",)),
        "gemv_ratio_range": ratios(("gemv",)),
        # the same stream with DRAM traffic and leakage scaled by the full-load factor, the rest as priced
        "gemv_split_range": span([(r["model_j"] - (1.0 - tdp_factor / energy_factor)
                                   * (r["components_j"]["dram"] + r["components_j"]["static"])) / r["measured_j"]
                                  for r in rows if r["kind"] == "gemv"], ".2f"),
        "median_ratio": span([rep["median_ratio"] for rep in reports], ".2f"),
        "decode_ratio_range": ratios(("decode", "decode_shard", "gemv")),
        "prefill_ratio_range": ratios(("prefill", "prefill_shard")),
        # the same work under the rule before work_energy_calibration: energy scaled by the TDP's factor
        "full_load_ratio_range": span([r["energy_ratio"] * tdp_factor / energy_factor for r in rows], ".2f"),
        "tdp_factor": f"{tdp_factor:.2f}", "energy_factor": f"{energy_factor:.2f}",
        "factor_ratio": f"{energy_factor / tdp_factor:.2f}",
        "matrix_measured_w": span([r["measured_w"] for r in matrix], ".0f"),
        "matrix_model_w": span([r["model_w"] for r in matrix], ".0f"),
        "matrix_clock_mhz": span([r["sm_clock_mhz"] for r in matrix if r["kind"] == "gemm"], ".0f"),
        "idle_w": span([rep["idle_w"] for rep in reports], ".0f"),
        "idle_after_w": span([rep["idle_after_w"] for rep in reports], ".0f"),
        "static_w": span(static, ".0f"),
        "time_error_pct": span([abs(r["model_ms"] / r["measured_ms"] - 1.0) * 100.0 for r in rows], ".0f"),
        "sku_ratios": f"{sku['a100-sxm-80gb']:.2f} (GA100), {sku['h100-sxm-80gb']:.2f} (GH100) and "
                      f"{sku['l40s-48gb']:.2f} (AD102)",
        "gh100_tensor": f"{gh100.efficiency.tensor:.3f}",
        "gemm_peak_fraction": span([r["flops"] / (r["measured_ms"] * 1e-3) / gh100.fp16_flops_per_s for r in rows
                                    if r["kind"] == "gemm" and r["name"] == "bf16"], ".2f"),
        "chiplet_static_w": f"{chiplet['b200-sxm-192gb']:.0f} W (B200) and {chiplet['mi300x-192gb']:.0f} W (MI300X",
    }


def plot(reports: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Two panels: energy per replay (model against measured, log-log) and average power per workload."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.4, 4.8))
    markers = {"gemm": "s", "gemv": "D", "decode": "o", "prefill": "^", "decode_shard": "v", "prefill_shard": "P"}
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    lo = min(min(r["measured_j"], r["model_j"]) for rep in reports for r in rep["rows"])
    hi = max(max(r["measured_j"], r["model_j"]) for rep in reports for r in rep["rows"])
    ax.plot([lo / 1.5, hi * 1.5], [lo / 1.5, hi * 1.5], color="black", linewidth=1, label="model = measured")
    for rep, colour in zip(reports, colours):
        for kind, marker in markers.items():
            pts = [r for r in rep["rows"] if r["kind"] == kind]
            if pts:
                ax.scatter([r["measured_j"] for r in pts], [r["model_j"] for r in pts], color=colour, marker=marker,
                           s=34, edgecolor="black", linewidth=0.4, label=f"{rep['hardware']}: {kind}", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured energy per replay (J, board counter)")
    ax.set_ylabel("model energy per replay (J)")
    ax.set_title("Energy of one replay", fontsize=10)
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=6.5, loc="upper left", ncol=2)
    width = 0.8 / (2 * len(reports))
    names = [label(r) for r in reports[0]["rows"]]
    for i, (rep, colour) in enumerate(zip(reports, colours)):
        at = {label(r): r for r in rep["rows"]}
        xs = range(len(names))
        off = (2 * i - len(reports)) * width
        bx.bar([x + off + width / 2 for x in xs], [at[n]["measured_w"] if n in at else 0 for n in names], width,
               color=colour, label=f"{rep['hardware']} measured")
        bx.bar([x + off + 1.5 * width for x in xs], [at[n]["model_w"] if n in at else 0 for n in names], width,
               color=colour, alpha=0.35, hatch="//", edgecolor=colour, label=f"{rep['hardware']} model")
    limit = reports[0]["power_limit_w"]
    if limit:
        bx.axhline(limit, color="black", linestyle="--", linewidth=0.8, label=f"power limit {limit:.0f} W")
    bx.set_xticks(list(range(len(names))))
    bx.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    bx.set_ylabel("average board power during the replays (W)")
    bx.set_title("Power while running", fontsize=10)
    top = max(max(r["measured_w"], r["model_w"]) for rep in reports for r in rep["rows"])
    bx.set_ylim(0, 1.3 * max(top, limit or 0.0))          # headroom for the legend above the bars
    bx.legend(fontsize=6.5, loc="upper center", ncol=3)
    bx.grid(True, axis="y", linewidth=0.3)
    fig.suptitle("GPU energy: board energy counter against the model (power rule "
                 f"`{reports[0]['power_rule']}`)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOT_NAME = "validation_energy.png"     # written beside the document update_doc rewrites
DOC_COMMAND = 'python -c "from ador.validation import energy; energy.update_doc(\'docs/validation.md\')"'


def update_doc(path: str | Path) -> None:
    """Rewrite the generated energy section of ``path`` from the shipped files, and its plot beside it."""
    from ador.markdown import update_section
    reports = shipped_reports()
    plot(reports, Path(path).parent / PLOT_NAME)
    update_section(Path(path), DOC_COMMAND, "\n\n".join(
        [f"![GPU energy: measured against the model]({PLOT_NAME})", *(table(r) for r in reports),
         "What the model's energy of each workload is made of (`calibrated` rule):", components_table(reports)]))
