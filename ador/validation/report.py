"""Rendering of a validation report: text table, Markdown section and predicted-vs-measured plot.

Computation lives in ``ador.validate``; these functions only format what it returns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ador.markdown import update_section

COMMAND = "ador validate --update-doc"


def text_table(report: dict[str, Any], worst: int) -> str:
    s = report["summary"]
    lines = [f"{'id':5} {'hardware':15} {'model':15} {'prec':7} {'tp':>2} {'batch':>5} {'in':>5} {'out':>5} "
             f"{'metric':22} {'measured':>10} {'predicted':>10} {'error':>7}"]
    for r in report["rows"]:
        if r["predicted"] is None:
            continue
        lines.append(f"{r['id']:5} {r['hardware']:15} {r['model']:15} {r['precision']:7} {r['tp']:>2} {r['batch']:>5} "
                     f"{r['input_len']:>5} {r['output_len']:>5} {r['metric']:22} {r['measured']:10.4g} "
                     f"{r['predicted']:10.4g} {r['error_pct']:+6.1f}%")
    lines.append("")
    lines.append(f"MAPE {s['mape_pct']:.2f}% over {s['n']} rows ({s['n_skipped']} not predicted)")
    for title, key in (("by metric", "by_metric"), ("by hardware", "by_hardware"), ("by source", "by_source")):
        lines.append(f"  {title}: " + ", ".join(f"{k} {v:.1f}%" for k, v in s[key].items()))
    if s["skipped_reasons"]:
        lines.append("  not predicted: " + "; ".join(f"{n} x {why}" for why, n in s["skipped_reasons"].items()))
    lines.append("  worst rows: " + ", ".join(f"{w['id']} {w['error_pct']:+.1f}%" for w in s["worst"][:worst]))
    return "\n".join(lines)


def markdown_section(report: dict[str, Any], plot_name: str | None) -> str:
    s = report["summary"]
    out = [f"**MAPE {s['mape_pct']:.2f}%** over {s['n']} rows ({s['n_skipped']} not predicted).", ""]
    for title, key in (("metric", "by_metric"), ("hardware", "by_hardware"), ("source", "by_source")):
        out += [f"| {title} | MAPE |", "| --- | ---: |"]
        out += [f"| {k} | {v:.1f}% |" for k, v in s[key].items()]
        out.append("")
    if plot_name:
        out += [f"![predicted vs measured]({plot_name})", ""]
    out += ["| id | source | hardware | model | precision | tp | batch | in | out | metric | measured | predicted "
            "| error |",
            "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in report["rows"]:
        if r["predicted"] is None:
            continue
        out.append(f"| {r['id']} | {r['source']} | {r['hardware']} | {r['model']} | {r['precision']} | {r['tp']} | "
                   f"{r['batch']} | {r['input_len']} | {r['output_len']} | {r['metric']} | {r['measured']:.4g} | "
                   f"{r['predicted']:.4g} | {r['error_pct']:+.1f}% |")
    return "\n".join(out)


def update_doc(path: Path, section: str, data_name: str | None = None) -> None:
    """Replace the generated section of a hand-written document (appending it if absent); a data
    file other than the default one has a section of its own, named by the file."""
    update_section(path, COMMAND if data_name is None else f"ador validate --data {data_name} --update-doc", section)


def plot(report: dict[str, Any], path: Path, *, colour_by: str = "hardware",
         title: str = "ador vs measured GPUs", short: Callable[[str], str] = str) -> None:
    """Log-log predicted vs measured, one colour per ``colour_by`` value (hardware by default), one
    marker per metric; ``short`` abbreviates legend labels. The legend sits beside the axes, where it
    hides no point however the rows spread."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["predicted"] is not None]
    hardware = sorted({r[colour_by] for r in rows})
    metrics = sorted({r["metric"] for r in rows})
    markers = dict(zip(metrics, "o^sDvP*X"))
    fig, ax = plt.subplots(figsize=(10, 6.5))
    colours = plt.get_cmap("tab10")
    for i, hw in enumerate(hardware):
        for metric in metrics:
            pts = [r for r in rows if r[colour_by] == hw and r["metric"] == metric]
            if pts:
                ax.scatter([r["measured"] for r in pts], [r["predicted"] for r in pts], color=colours(i),
                           marker=markers[metric], s=36, edgecolor="black", linewidth=0.4, alpha=0.85)
    lo = min(min(r["measured"], r["predicted"]) for r in rows) / 1.5
    hi = max(max(r["measured"], r["predicted"]) for r in rows) * 1.5
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="exact")
    for f, style in ((1.1, ":"), (1.25, "--")):
        ax.plot([lo, hi], [lo * f, hi * f], color="grey", linestyle=style, linewidth=0.8)
        ax.plot([lo, hi], [lo / f, hi / f], color="grey", linestyle=style, linewidth=0.8,
                label=f"±{round((f - 1) * 100)}%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (ms or tokens/s, as the row's unit)")
    ax.set_ylabel("predicted by ador (same unit)")
    s = report["summary"]
    ax.set_title(f"{title}: MAPE {s['mape_pct']:.1f}% over {s['n']} rows")
    from matplotlib.lines import Line2D
    handles: list[Any] = [Line2D([], [], color=colours(i), marker="o", linestyle="", label=short(hw))
                          for i, hw in enumerate(hardware)]
    handles += [Line2D([], [], color="black", marker=markers[m], linestyle="", label=m) for m in metrics]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
