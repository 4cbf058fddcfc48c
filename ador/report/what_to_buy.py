"""What to buy: the cheapest GPU deployment and the cheapest design that serve a system-level study's
offered load within its SLOs, side by side with the margin between them. Data apart from rendering."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from ador.explore.record import is_feasible, metrics_of


@dataclass(frozen=True)
class Pick:
    trial: int
    system: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Purchase:
    gpu: Pick | None          # cheapest feasible deployment of a GPU preset
    design: Pick | None       # cheapest feasible deployment of an ADOR design
    metric: str               # what "cheapest" means (cost per million output tokens)

    @property
    def cost_ratio(self) -> float | None:
        """How many times cheaper the design's deployment is (>1: the design is cheaper)."""
        if self.gpu is None or self.design is None:
            return None
        return self.gpu.metrics[self.metric] / self.design.metrics[self.metric]


def purchase(durable: optuna.Study, metric: str = "cost_per_mtok_usd") -> Purchase:
    best: dict[str, Pick] = {}
    for t in durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        system = t.user_attrs.get("system")
        metrics = metrics_of(t)
        if not system or not is_feasible(t) or metric not in metrics:
            continue
        kind = system["kind"]
        if kind not in best or metrics[metric] < best[kind].metrics[metric]:
            best[kind] = Pick(t.number, system, metrics)
    return Purchase(best.get("gpu"), best.get("ador"), metric)


def _line(label: str, p: Pick | None) -> str:
    if p is None:
        return f"| {label} | none of the trials met the SLOs | | | | | |"
    s, m = p.system, p.metrics
    device = s["device"]
    if s.get("kind") == "ador" and "die_area_mm2" in m:          # what the design is, in a few words
        dies = int(m.get("dies", 1))
        device = f"design ({dies} die{'s' if dies > 1 else ''} of {m['die_area_mm2'] / dies:.0f} mm2)"
    return (f"| {label} | trial {p.trial}: {int(m['devices'])} x {device} (TP{s['tp']} x PP{s['pp']}, "
            f"{s['precision']}, {s['policy']}, max batch {s['max_batch']}) | {int(m['replicas'])} | "
            f"{m['cost_per_mtok_usd']:.3f} | {m['capex_usd'] / 1e3:,.0f}k | {m['power_at_load_w'] / 1e3:.1f} | "
            f"{m['serving_ttft_p99_ms']:.0f} / {m['serving_tbt_p99_ms']:.1f} |")


def markdown(p: Purchase, load) -> str:
    out = ["## What to buy", "",
           f"The cheapest deployments that serve {load.rate_rps:g} requests/s within p99 TTFT <= "
           f"{load.ttft_slo_ms:g} ms and p99 time between tokens <= {load.tbt_slo_ms:g} ms:", "",
           "| choice | deployment | replicas | USD per million output tokens | capex USD | kW at load | "
           "p99 TTFT / TBT ms |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
           _line("cheapest GPU system", p.gpu), _line("cheapest ADOR design", p.design), ""]
    ratio = p.cost_ratio
    if ratio is not None:
        cheaper, by = ("the design", ratio) if ratio >= 1 else ("the GPU system", 1 / ratio)
        out.append(f"Margin: {cheaper} is {by:.2f}x cheaper per million output tokens, both priced by one rule "
                   f"(modelled manufacturing cost times the study's markup) and run under the same runtime profile.")
    return "\n".join(out)
