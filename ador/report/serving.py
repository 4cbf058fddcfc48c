"""Plots of serving results (data from ador.serving.sweep)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_rate_sweep(data: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    styles = {"continuous": "-", "chunked": "--", "concurrent": "-", "disaggregated": ":"}
    for line in data["lines"]:
        colour = "tab:green" if "ador" in line["hardware"] else "tab:blue"
        if line["policy"] == "concurrent":
            colour = "tab:red"
        if line["policy"] == "disaggregated":
            colour = "tab:purple"
        rates = [p["rate"] for p in line["points"]]
        ax1.plot(rates, [p["tbt_p99_ms"] for p in line["points"]], styles[line["policy"]], marker="o", color=colour,
                 label=line["label"], alpha=0.6 if line["policy"] == "chunked" else 1.0)
        ax2.plot(rates, [p["goodput_rps"] for p in line["points"]], styles[line["policy"]], marker="o", color=colour,
                 label=line["label"], alpha=0.6 if line["policy"] == "chunked" else 1.0)
    ax1.axhline(data["tbt_slo_ms"], color="grey", linewidth=0.8)
    ax1.text(data["rates"][-1], data["tbt_slo_ms"] * 1.05, f"TBT SLO {data['tbt_slo_ms']:g} ms", color="grey",
             fontsize=8, ha="right", va="bottom")
    ax1.set_yscale("log")
    ax1.set_xlabel("arrival rate (requests/s, Poisson)")
    ax1.set_ylabel("p99 time between tokens (ms, log scale)")
    ax1.set_title("Tail TBT under load")
    ax2.plot(data["rates"], data["rates"], color="grey", linewidth=0.8, label="every request meets the SLOs")
    ax2.set_xlabel("arrival rate (requests/s, Poisson)")
    ax2.set_ylabel("goodput (requests/s meeting TTFT and TBT SLOs)")
    ax2.set_title(f"Goodput (TTFT <= {data['ttft_slo_ms']:g} ms, mean TBT <= {data['tbt_slo_ms']:g} ms)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.25)
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{data['model']} ({data['precision']}), {data['requests']} requests, long-tailed lengths "
                 f"(mean prompt {data['input_len']}, mean output {data['output_len']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
