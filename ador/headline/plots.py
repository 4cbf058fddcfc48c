"""The headline's two figures: every seed's front of the paper-style and symmetric studies, with
the knee of each and the A100; the fairness ladder as bars with their seed ranges."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ador.headline.picks import Spread  # noqa: E402
from ador.headline.plan import PAPER, SYMMETRIC  # noqa: E402


def fronts(h, path: Path) -> Path:
    """Both static studies' fronts, each seed a line, the knees marked, A100 under each study's rules."""
    from ador.hardware import GPUS
    from ador.headline.compare import score
    from ador.headline.plan import REFERENCE
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, role, title in ((axes[0], PAPER, "as the paper would have it (dies only, paper runtime)"),
                            (axes[1], SYMMETRIC, "symmetric (same runtime, stacks, links, power; package area)")):
        s = h.searched[role]
        for seed in sorted(s.fronts):
            pts = sorted(s.fronts[seed])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1, alpha=0.8,
                        label=f"seed {seed} front")
            if seed in s.knees:
                k = s.knees[seed].metrics
                ax.plot(k[s.study.metric_names[0]], k[s.study.metric_names[1]], "k*", ms=11,
                        label="knee of each seed" if seed == min(s.knees) else None)
        g = score(GPUS[REFERENCE], s.study)
        ax.plot(g["tbt_p99_ms"], g[s.study.metric_names[1]], "s", color="#1f77b4", ms=9, label="8 x A100")
        ax.set_xlabel("p99 time between tokens (ms), lower is better")
        ax.set_ylabel("output tokens/s per mm2 of " + ("package" if "package" in s.study.metric_names[1] else "die"))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Llama-3-70B on 8 devices, batch 128: fronts of 5 seeds per study", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ladder(labels: list[str], tbt: list[Spread], area: list[Spread], path: Path) -> Path:
    """Bars at the median over seeds, whiskers over the seeds' range, one pair per ladder row."""
    import numpy as np
    y = np.arange(len(labels))[::-1]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.5))
    for offset, spreads, colour, name in ((0.2, tbt, "#2ca02c", "p99 TBT x"), (-0.2, area, "#9467bd", "area eff. x")):
        med = np.array([s.median for s in spreads])
        err = np.array([[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]])
        ax.barh(y + offset, med, height=0.38, color=colour, xerr=err, capsize=3, label=name)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("design / 8 x A100 (above 1 favours the design); median over seeds, whiskers: range")
    ax.set_title("The fairness ladder: each row removes one modelling asymmetry (cumulative)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
