"""Matplotlib renderings of ador.report.data objects. Each function takes ready data and a path,
writes the figure there (PNG, or SVG by the suffix) and returns the path."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ador.explore.pareto import HV_DEFINITION
from ador.report.data import Breakdown, FrontData, HvHistory, RooflineData
from ador.report.style import OPERATORS, OTHER_OPERATORS, OVERHEAD, axis_label, operator_colour, system_styles

OTHER = "other operators"
STEP_OVERHEAD = "runtime overhead (per step)"



def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: Path, dpi: int = 120, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _spans_decades(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 30


def _window(values: Sequence[float], log: bool, pad: float = 0.08) -> tuple[float, float]:
    """A range around ``values`` with ``pad`` of its span on each side (in log space on a log axis)."""
    import math
    lo, hi = min(values), max(values)
    if log and lo > 0:
        a, b = math.log10(lo), math.log10(hi)
        span = (b - a) or 0.05
        return 10 ** (a - pad * span), 10 ** (b + pad * span)
    span = (hi - lo) or (abs(hi) * 0.05 or 1.0)
    return lo - pad * span, hi + pad * span


def _limits(ax, data: FrontData) -> None:
    """The SLO and constraint lines that fall inside the axes' current range."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for lim in data.limits:
        lo, hi = (x0, x1) if lim.axis == "x" else (y0, y1)
        if not min(lo, hi) <= lim.value <= max(lo, hi):
            continue
        draw = ax.axvline if lim.axis == "x" else ax.axhline
        draw(lim.value, color="#555555", linestyle="--", linewidth=1.0, zorder=1)
        fx, fy = _fraction(ax, lim.value, lim.value)
        kw = dict(color="#555555", fontsize=7.5, textcoords="offset points")
        if lim.axis == "x":          # the label on the side of the line with room
            ax.annotate(lim.label, (lim.value, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3 if fx < 0.7 else -3, -12), ha="left" if fx < 0.7 else "right", **kw)
        else:
            ax.annotate(lim.label, (1.0, lim.value), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3 if fy < 0.9 else -10), ha="right", **kw)


def _baselines(ax, data: FrontData, *, annotate: bool = True) -> None:
    styles = system_styles(list(data.baselines))
    for gpu, (x, y) in data.baselines.items():
        colour, marker = styles[gpu]
        misses = gpu in data.baseline_reasons       # judged by the study's SLOs and constraints
        ax.scatter([x], [y], marker=marker, s=110, color="white" if misses else colour, edgecolor=colour,
                   linewidth=2.0, zorder=6, label=f"{gpu} (misses the SLOs)" if misses else gpu)
        if annotate:
            ax.annotate(gpu.split("-")[0].upper() + (" (misses SLO)" if misses else ""), (x, y),
                        textcoords="offset points", xytext=(8, 6), fontsize=8.5, fontweight="bold", color=colour)


def _picks(ax, data: FrontData, *, labels: bool = True) -> None:
    """The knee (large ring) and the corners (small rings); with ``labels``, each named beside it,
    towards the middle of the axes (one label per trial)."""
    by_trial: dict[int, list[str]] = {}
    for label, p in data.picks.items():
        by_trial.setdefault(p.trial, []).append(label)
    points = {p.trial: p for p in data.picks.values()}
    for trial, names in by_trial.items():
        p, knee = points[trial], "knee" in names
        ax.scatter([p.x], [p.y], marker="o", s=170 if knee else 90, facecolor="none", edgecolor="black",
                   linewidth=2.2 if knee else 1.2, zorder=7,
                   label=(f"knee (trial {trial})" if knee else None) if not labels else None)
        if not labels:
            continue
        fx, fy = _fraction(ax, p.x, p.y)
        dx = 14 if fx < 0.6 else -14
        dy = 12 if fy < 0.6 else -16
        ax.annotate(", ".join(names) + f" (trial {trial})", (p.x, p.y), textcoords="offset points",
                    xytext=(dx, dy), ha="left" if dx > 0 else "right", va="center", fontsize=8,
                    fontweight="bold" if knee else "normal", zorder=9,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.8),
                    arrowprops=dict(arrowstyle="-", color="black", linewidth=0.6))


def _fraction(ax, x: float, y: float) -> tuple[float, float]:
    """Where (x, y) falls in the axes, 0..1 each way (log axes included)."""
    import math

    def frac(v: float, lo: float, hi: float, log: bool) -> float:
        if log and v > 0 and lo > 0:
            v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
        return (v - lo) / (hi - lo) if hi != lo else 0.5
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    return (frac(x, x0, x1, ax.get_xscale() == "log"), frac(y, y0, y1, ax.get_yscale() == "log"))


def _front_line(ax, data: FrontData) -> None:
    """The front as the staircase that bounds what it dominates (points sorted by x: the step comes
    after a point when x is minimised, before it when x is maximised)."""
    if data.pareto:
        steps = "steps-post" if data.x_direction == "minimize" else "steps-pre"
        ax.plot([p.x for p in data.pareto], [p.y for p in data.pareto], "-o", color="tab:red", markersize=4.5,
                linewidth=1.4, label=f"front ({len(data.pareto)} designs)", zorder=5,
                drawstyle=steps if len(data.pareto) > 1 else None)


def _front_axes(ax, data: FrontData, title: bool = True) -> None:
    """Every trial and the GPUs (the overview)."""
    if data.infeasible:
        ax.scatter([p.x for p in data.infeasible], [p.y for p in data.infeasible], s=7, color="#cfcfcf",
                   label=f"infeasible ({len(data.infeasible)})", zorder=2)
    if data.feasible:
        ax.scatter([p.x for p in data.feasible], [p.y for p in data.feasible], s=9, color="tab:green", alpha=0.35,
                   label=f"feasible ({len(data.feasible)})", zorder=3)
    _front_line(ax, data)
    _baselines(ax, data)
    xs = [p.x for p in data.feasible + data.infeasible] + [b[0] for b in data.baselines.values()]
    ys = [p.y for p in data.feasible + data.infeasible] + [b[1] for b in data.baselines.values()]
    if _spans_decades(xs):
        ax.set_xscale("log")
    if _spans_decades(ys):
        ax.set_yscale("log")
    _limits(ax, data)
    ax.set_xlabel(axis_label(data.x_metric, data.x_direction))
    ax.set_ylabel(axis_label(data.y_metric, data.y_direction))
    ax.grid(True, which="both", alpha=0.25)
    if title:
        ax.set_title(f"{data.study}: {data.y_metric} vs {data.x_metric}")


def _legend(ax, **options) -> None:
    """A legend where the axes have labelled artists (an empty one draws an empty box and warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def _zoom_axes(ax, data: FrontData, labels: bool = True) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The front up close: feasible trials near it, the knee and corners, SLO lines and any GPU
    that falls inside. Returns the window (x and y ranges), or None without a front."""
    if not data.pareto:
        ax.text(0.5, 0.5, "no feasible design", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return None
    fx, fy = [p.x for p in data.pareto], [p.y for p in data.pareto]
    xlog, ylog = _spans_decades(fx), _spans_decades(fy)
    # an SLO or constraint line close to the front is part of the picture: the window reaches it
    for lim in data.limits:
        values = fx if lim.axis == "x" else fy
        span = (max(values) - min(values)) or abs(max(values))
        if min(values) - 0.5 * span <= lim.value <= max(values) + 0.5 * span:
            values.append(lim.value)
    xw, yw = _window(fx, xlog), _window(fy, ylog)
    near = [p for p in data.feasible if xw[0] <= p.x <= xw[1] and yw[0] <= p.y <= yw[1]]
    ax.scatter([p.x for p in near], [p.y for p in near], s=12, color="tab:green", alpha=0.35,
               label="feasible", zorder=3)
    _front_line(ax, data)
    inside = FrontData(**{**data.__dict__, "baselines": {g: v for g, v in data.baselines.items()
                                                          if xw[0] <= v[0] <= xw[1] and yw[0] <= v[1] <= yw[1]}})
    _baselines(ax, inside)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlim(*xw)
    ax.set_ylim(*yw)
    _picks(ax, data, labels=labels)
    _limits(ax, data)
    ax.set_xlabel(axis_label(data.x_metric, data.x_direction))
    ax.set_ylabel(axis_label(data.y_metric, data.y_direction))
    ax.grid(True, which="both", alpha=0.25)
    return xw, yw


def plot_pareto(data: FrontData, path: Path) -> Path:
    """Two panels: every trial with the GPUs and the SLO lines (left, the zoomed window outlined),
    and the front up close with the knee and the corners (right)."""
    plt = _plt()
    from matplotlib.patches import Rectangle
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    _front_axes(left, data, title=False)
    left.set_title("all trials and the GPUs", fontsize=10)
    window = _zoom_axes(right, data)
    right.set_title(f"the front up close ({len(data.pareto)} distinct feasible designs)", fontsize=10)
    if window is not None:
        (x0, x1), (y0, y1) = window
        left.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="black", linestyle=":",
                                 linewidth=1.0, zorder=8))
    _legend(left, fontsize=7.5, loc="best")
    _legend(right, fontsize=7.5, loc="best")
    fig.suptitle(f"{data.study}: {data.y_metric} against {data.x_metric}", fontsize=12)
    return _save(plt, fig, path, 120)


def plot_projections(fronts: Sequence[FrontData], path: Path) -> Path:
    plt = _plt()
    n = len(fronts)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 5.2), squeeze=False)
    for ax, data in zip(axes[0], fronts):
        _zoom_axes(ax, data, labels=False)
        ax.set_title(f"{data.y_metric} vs {data.x_metric} ({len(data.pareto)} on this pair's front)", fontsize=10)
        _legend(ax, fontsize=7, loc="best")
    fig.suptitle(f"{fronts[0].study}: objective projections up close (front recomputed in each pair; the knee of "
                 "the study's front ringed large, its corners small; the GPUs are in pareto.png)", fontsize=11)
    return _save(plt, fig, path, 110)


def plot_hypervolume(histories: Sequence[HvHistory], path: Path, title: str = "", caption: str = "") -> Path:
    import textwrap
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.4))
    styles = system_styles([h.label for h in histories])
    for h in histories:
        colour, marker = styles[h.label]
        ax.plot(h.trials, h.hypervolume, label=h.label, color=colour, marker=marker, markevery=6, markersize=5)
    ax.set_xlabel("trials")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # a count of trials: no 1.25
    ax.set_ylabel("hypervolume of the feasible designs")
    ax.set_ylim(bottom=0)                                     # a hypervolume is never negative
    ax.set_title(title or "Search progress")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    fig.text(0.01, 0.01, textwrap.fill(caption or HV_DEFINITION, 120), fontsize=7.5, color="#444444",
             va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(plt, fig, path, 120, tight=False)


def plot_breakdown(bars: Sequence[Breakdown], path: Path, top: int = 8) -> Path:
    """Per-operator time of each system, prefill and one decode step side by side. An operator
    keeps its colour in both panels; the rest are grouped as "other"."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    totals: dict[str, float] = {}
    for b in bars:
        for k, v in b.parts_ms.items():
            totals[k] = totals.get(k, 0.0) + v / max(b.total_ms, 1e-12)     # share, so both stages count
    shown = [k for k, _ in sorted(totals.items(), key=lambda kv: -kv[1])][:top]
    shown.sort(key=lambda k: OPERATORS.index(k) if k in OPERATORS else len(OPERATORS))
    handles = {}
    for ax, stage in zip(axes, ("prefill", "decode")):
        mine = [b for b in bars if b.stage == stage]
        labels = [b.label for b in mine]
        bottoms = [0.0] * len(mine)
        for name in shown + [OTHER, STEP_OVERHEAD]:
            if name == OTHER:
                heights = [sum(v for k, v in b.parts_ms.items() if k not in shown) for b in mine]
            elif name == STEP_OVERHEAD:
                heights = [b.overhead_ms for b in mine]
            else:
                heights = [b.parts_ms.get(name, 0.0) for b in mine]
            if name == STEP_OVERHEAD:
                handles[name] = ax.bar(labels, heights, bottom=bottoms, color=OVERHEAD, edgecolor="#888888",
                                       hatch="///", linewidth=0.5, label=name)
            else:
                colour = OTHER_OPERATORS if name == OTHER else operator_colour(name)
                handles[name] = ax.bar(labels, heights, bottom=bottoms, color=colour, edgecolor="white",
                                       linewidth=0.5, label=name)
            bottoms = [x + h for x, h in zip(bottoms, heights)]
        peak = max((b.total_ms for b in mine), default=1.0)
        for x, b in enumerate(mine):
            ax.text(x, b.total_ms + 0.015 * peak, f"{b.total_ms:.1f} ms", ha="center", va="bottom", fontsize=9)
        ax.set_ylim(0, peak * 1.12)              # room for the totals below the title
        ax.set_ylabel("time (ms, all layers)")
        ax.set_title("prefill of the batch (TTFT)" if stage == "prefill" else "one decode step (TBT)", fontsize=10,
                     pad=8)
        ax.tick_params(axis="x", labelrotation=10)
        ax.grid(True, axis="y", alpha=0.25)
    names = shown + [OTHER, STEP_OVERHEAD]
    fig.legend([handles[n] for n in names], names, loc="lower center", ncol=min(10, len(names)), fontsize=8,
               frameon=False)
    fig.suptitle("Per-operator latency breakdown")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(plt, fig, path, 120, tight=False)


def plot_roofline(data: Sequence[RooflineData], path: Path) -> Path:
    plt = _plt()
    import numpy as np
    fig, ax = plt.subplots(figsize=(8.5, 6))
    intensities = [o["intensity"] for d in data for o in d.ops] or [1.0]
    lo, hi = np.log10(min(intensities)) - 1, np.log10(max(intensities)) + 0.5
    styles = system_styles([d.label for d in data])
    for d in data:
        colour, system_marker = styles[d.label]
        x = np.logspace(min(lo, -1), max(hi, 4), 200)
        ax.plot(x, np.minimum(d.peak_flops, x * d.bandwidth) / 1e12, color=colour,
                label=f"{d.label} roof ({d.peak_flops / 1e12:.0f} TFLOP/s, {d.bandwidth / 1e12:.2f} TB/s)")
        for stage in ("prefill", "decode"):      # filled: prefill operators; hollow: decode operators
            ops = [o for o in d.ops if o["stage"] == stage]
            ax.scatter([o["intensity"] for o in ops], [o["flops_per_s"] / 1e12 for o in ops],
                       facecolor=colour if stage == "prefill" else "white", edgecolor=colour, marker=system_marker,
                       s=34, linewidth=1.2, label=f"{d.label} {stage} ops")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per DRAM byte)")
    ax.set_ylabel("achieved TFLOP/s (model)")
    ax.set_title("Roofline: operators of one prefill and one decode step")
    ax.grid(True, which="both", alpha=0.25)
    _legend(ax, fontsize=7)
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
