"""Plots of serving results (data from ador.serving.sweep)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ador.report.style import system_styles

POLICY_LINES = {"continuous": "-", "chunked": "--", "concurrent": "-.", "disaggregated": ":"}


def plot_rate_sweep(data: dict[str, Any], path: Path) -> None:
    """p99 TBT and goodput against the arrival rate: each line (a system under a policy) its own
    colour and marker (a GPU keeps its family's), the line style by policy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.4))
    styles = system_styles([line["label"] for line in data["lines"]])
    for line in data["lines"]:
        colour, marker = styles[line["label"]]
        rates = [p["rate"] for p in line["points"]]
        kw = dict(color=colour, marker=marker, markersize=6, linewidth=1.6, label=line["label"],
                  linestyle=POLICY_LINES.get(line["policy"], "-"))
        ax1.plot(rates, [p["tbt_p99_ms"] for p in line["points"]], **kw)
        ax2.plot(rates, [p["goodput_rps"] for p in line["points"]], **kw)
    # (the TBT goal is each request's mean, not a p99: it is not drawn on this axis)
    ax1.set_yscale("log")
    ax1.set_xlabel("arrival rate (requests/s, Poisson)")
    ax1.set_ylabel("p99 time between tokens (ms, log scale)")
    ax1.set_title("Tail TBT under load", fontsize=10)
    ax2.plot(data["rates"], data["rates"], color="#999999", linewidth=0.8, label="every request served in time")
    ax2.set_xlabel("arrival rate (requests/s, Poisson)")
    ax2.set_ylabel("goodput (requests/s served in time)")
    ax2.set_title(f"Goodput: requests served in time\n(own TTFT <= {data['ttft_slo_ms']:g} ms and own mean TBT <= "
                  f"{data['tbt_slo_ms']:g} ms)", fontsize=10)
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.25)
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{data['model']} ({data['precision']}), {data['requests']} requests, long-tailed lengths "
                 f"(mean prompt {data['input_len']}, mean output {data['output_len']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
