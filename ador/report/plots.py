"""Matplotlib renderings of ador.report.data objects. Each function takes ready data and a path,
writes the figure there (PNG, or SVG by the suffix) and returns the path."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ador.report.data import Breakdown, FrontData, HvHistory, RooflineData

UNITS = {"ttft_ms": "ms", "tbt_ms": "ms", "tbt_p99_ms": "ms", "e2e_ms": "ms", "output_tok_s": "tokens/s",
         "output_tok_s_per_device": "tokens/s", "output_tok_s_per_mm2": "tokens/s per mm2",
         "output_tok_s_per_w": "tokens/s per W", "energy_per_token_j": "J", "die_area_mm2": "mm2",
         "system_die_area_mm2": "mm2", "tdp_w": "W", "cost_usd": "USD", "memory_utilisation": "fraction"}
GPU_COLOURS = {"a100": "tab:blue", "h100": "tab:orange", "h200": "tab:brown", "l40s": "tab:pink",
               "mi300x": "tab:olive", "b200": "tab:cyan"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _label(metric: str, direction: str) -> str:
    better = "lower is better" if direction == "minimize" else "higher is better"
    return f"{metric} ({UNITS.get(metric, '')}; {better})"


def _spans_decades(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 30


def _front_axes(ax, data: FrontData, title: bool = True) -> None:
    if data.infeasible:
        ax.scatter([p.x for p in data.infeasible], [p.y for p in data.infeasible], s=8, color="lightgrey",
                   label=f"infeasible ({len(data.infeasible)})")
    if data.feasible:
        ax.scatter([p.x for p in data.feasible], [p.y for p in data.feasible], s=10, color="tab:green", alpha=0.35,
                   label=f"feasible ({len(data.feasible)})")
    if data.pareto:
        ax.plot([p.x for p in data.pareto], [p.y for p in data.pareto], "-o", color="tab:red", markersize=5,
                label=f"Pareto front ({len(data.pareto)})", drawstyle="steps-post" if len(data.pareto) > 1 else None)
    for gpu, (x, y) in data.baselines.items():
        colour = next((c for k, c in GPU_COLOURS.items() if gpu.startswith(k)), "black")
        misses = gpu in data.baseline_reasons       # judged by the study's SLOs and constraints
        ax.scatter([x], [y], marker="*", s=220, color="white" if misses else colour, edgecolor=colour if misses
                   else "black", linewidth=1.5, zorder=5, label=f"{gpu} (infeasible)" if misses else gpu)
        ax.annotate(gpu.split("-")[0].upper() + (" (misses SLO)" if misses else ""), (x, y),
                    textcoords="offset points", xytext=(8, 6), fontsize=9, fontweight="bold")
    xs = [p.x for p in data.feasible + data.infeasible] + [b[0] for b in data.baselines.values()]
    ys = [p.y for p in data.feasible + data.infeasible] + [b[1] for b in data.baselines.values()]
    if _spans_decades(xs):
        ax.set_xscale("log")
    if _spans_decades(ys):
        ax.set_yscale("log")
    ax.set_xlabel(_label(data.x_metric, data.x_direction))
    ax.set_ylabel(_label(data.y_metric, data.y_direction))
    ax.grid(True, which="both", alpha=0.25)
    if title:
        ax.set_title(f"{data.study}: {data.y_metric} vs {data.x_metric}")


def plot_pareto(data: FrontData, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 6))
    _front_axes(ax, data)
    ax.legend(fontsize=8, loc="best")
    return _save(plt, fig, path, 120)


def plot_projections(fronts: Sequence[FrontData], path: Path) -> Path:
    plt = _plt()
    n = len(fronts)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 5), squeeze=False)
    for ax, data in zip(axes[0], fronts):
        _front_axes(ax, data, title=False)
        ax.set_title(f"{data.y_metric} vs {data.x_metric}", fontsize=10)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{fronts[0].study}: objective projections (Pareto set recomputed in each pair)")
    return _save(plt, fig, path, 110)


def plot_hypervolume(histories: Sequence[HvHistory], path: Path, title: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for h in histories:
        ax.plot(h.trials, h.hypervolume, label=h.label)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume of feasible trials")
    ax.text(0.99, 0.02, "objectives normalised to [0, 1] over all trials shown; reference point 1.1",
            transform=ax.transAxes, ha="right", fontsize=8, color="grey")
    ax.set_title(title or "Search progress")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(plt, fig, path, 120)


def plot_breakdown(bars: Sequence[Breakdown], path: Path, top: int = 8) -> Path:
    plt = _plt()
    stages = ["prefill", "decode"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, stage in zip(axes, stages):
        mine = [b for b in bars if b.stage == stage]
        totals: dict[str, float] = {}
        for b in mine:
            for k, v in b.parts_ms.items():
                totals[k] = totals.get(k, 0.0) + v
        names = [k for k, _ in sorted(totals.items(), key=lambda kv: -kv[1])][:top]
        bottoms = [0.0] * len(mine)
        cmap = plt.get_cmap("tab10")
        for i, name in enumerate(names + ["other"]):
            heights = [(b.parts_ms.get(name, 0.0) if name != "other" else
                        sum(v for k, v in b.parts_ms.items() if k not in names)) for b in mine]
            ax.bar([b.label for b in mine], heights, bottom=bottoms, label=name, color=cmap(i % 10))
            bottoms = [x + h for x, h in zip(bottoms, heights)]
        for x, b in enumerate(mine):
            ax.text(x, b.total_ms, f"{b.total_ms:.1f} ms", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("time (ms, all layers)")
        ax.set_title("prefill (TTFT)" if stage == "prefill" else "one decode step (TBT)")
        ax.tick_params(axis="x", labelrotation=15)
        ax.legend(fontsize=7)
    fig.suptitle("Per-operator latency breakdown")
    return _save(plt, fig, path, 120)


def plot_roofline(data: Sequence[RooflineData], path: Path) -> Path:
    plt = _plt()
    import numpy as np
    fig, ax = plt.subplots(figsize=(8.5, 6))
    markers = {"prefill": "o", "decode": "^"}
    intensities = [o["intensity"] for d in data for o in d.ops] or [1.0]
    lo, hi = np.log10(min(intensities)) - 1, np.log10(max(intensities)) + 0.5
    for i, d in enumerate(data):
        colour = plt.get_cmap("tab10")(i)
        x = np.logspace(min(lo, -1), max(hi, 4), 200)
        ax.plot(x, np.minimum(d.peak_flops, x * d.bandwidth) / 1e12, color=colour,
                label=f"{d.label} roof ({d.peak_flops / 1e12:.0f} TFLOP/s, {d.bandwidth / 1e12:.2f} TB/s)")
        for stage in ("prefill", "decode"):
            ops = [o for o in d.ops if o["stage"] == stage]
            ax.scatter([o["intensity"] for o in ops], [o["flops_per_s"] / 1e12 for o in ops], color=colour,
                       marker=markers[stage], s=30, edgecolor="black", linewidth=0.4, label=f"{d.label} {stage} ops")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per DRAM byte)")
    ax.set_ylabel("achieved TFLOP/s (model)")
    ax.set_title("Roofline: operators of one prefill and one decode step")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return _save(plt, fig, path, 120)


def plot_importances(values: dict[str, dict[str, float]], path: Path) -> Path:
    plt = _plt()
    n = max(1, len(values))
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
    for ax, (objective, imp) in zip(axes[0], values.items()):
        items = sorted(imp.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
        ax.set_xlabel("importance (PED-ANOVA, normalised)")
        ax.set_title(objective)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Which knobs matter")
    return _save(plt, fig, path, 120)
