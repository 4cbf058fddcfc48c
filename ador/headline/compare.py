"""The static view: a design and the GPUs scored under one study's rules (runtime profile per side,
power rule, area basis), with cost per million tokens, and the ratios the report quotes."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ador.explore.config import Study
from ador.explore.metrics import Workload, evaluate_design, ratio_vs
from ador.explore.system import Economics
from ador.hardware import GPUS, Device, System
from ador.workload import get_model, get_precision

# What a token costs: capex amortised over 4 years plus energy at 0.10 USD/kWh, device price the
# modelled manufacturing cost x 3 for designs and GPUs alike (the same economics as the shipped
# system-level study, studies/llama3-70b-20rps.yaml).
ECONOMICS = Economics(lifetime_years=4, energy_usd_per_kwh=0.10, markup=3.0)
AREA_METRIC = {"die": "output_tok_s_per_mm2", "package": "output_tok_s_per_package_mm2"}


def area_basis(study: Study) -> str:
    """Which area a study's area efficiency is taken over (its objective says)."""
    return "package" if "output_tok_s_per_package_mm2" in study.metric_names else "die"


def score(device: Device, study: Study, workload: Workload | None = None) -> dict[str, float]:
    """Every metric of ``device`` at ``workload`` (default: the study's) under the study's rules,
    plus ``cost_per_mtok_usd`` and ``area_eff`` (over the study's area basis)."""
    spec = study.spec
    w = workload or study.workload
    runtime = study.runtime_for(device.kind)
    m = evaluate_design(device, get_model(spec.model), get_precision(spec.precision), w, tp=spec.tp, pp=spec.pp,
                        devices=spec.devices, runtime=runtime, power_rule=spec.power_rule)
    devices = System.of(device, tp=spec.tp, pp=spec.pp, devices=spec.devices, runtime=runtime).devices
    capex = ECONOMICS.device_price_usd(device, spec.power_rule) * devices
    power_w = m["energy_per_token_j"] * m["output_tok_s"]
    m["cost_per_mtok_usd"] = ECONOMICS.usd_per_mtok(capex_usd=capex, power_w=power_w, output_tok_s=m["output_tok_s"])
    m["area_eff"] = m[AREA_METRIC[area_basis(study)]]
    return m


# metric -> (label, unit, format, which direction is better for ratio_vs)
ROWS = (("tbt_p99_ms", "p99 TBT", "ms", "{:.2f}", "tbt_p99_ms"),
        ("ttft_ms", "TTFT", "ms", "{:.0f}", "ttft_ms"),
        ("output_tok_s", "throughput", "output tok/s", "{:.0f}", "output_tok_s"),
        ("area_eff", "area efficiency", "output tok/s per mm2", "{:.3g}", "output_tok_s_per_mm2"),
        ("die_area_mm2", "die area", "mm2 per device", "{:.0f}", "die_area_mm2"),
        ("package_area_mm2", "package area", "mm2 per device", "{:.0f}", "package_area_mm2"),
        ("energy_per_token_j", "energy", "J per output token", "{:.3f}", "energy_per_token_j"),
        ("cost_per_mtok_usd", "cost", "USD per million output tokens", "{:.3f}", "cost_per_mtok_usd"))


def ratio(key: str, design: dict[str, float], gpu: dict[str, float]) -> float | None:
    metric = next(r[4] for r in ROWS if r[0] == key)
    return ratio_vs(metric, design[key], gpu[key])


@dataclass(frozen=True)
class Versus:
    """A design against one GPU at one workload, under one study's rules."""
    gpu: str
    batch: int
    design: dict[str, float]
    baseline: dict[str, float]
    fits: bool                  # the GPU system holds the model and the batch's KV cache

    def x(self, key: str) -> float | None:
        return ratio(key, self.design, self.baseline)


def versus(design: Device, study: Study, gpus=None, batches=None) -> list[Versus]:
    """The design against each GPU (default: the study's baselines) at each batch (default: the
    study's)."""
    out = []
    for batch in batches or (study.workload.batch,):
        w = dataclasses.replace(study.workload, batch=batch)
        mine = score(design, study, w)
        for name in gpus or study.spec.baselines:
            theirs = score(GPUS[name], study, w)
            out.append(Versus(name, batch, mine, theirs, theirs["memory_utilisation"] <= 1))
    return out
