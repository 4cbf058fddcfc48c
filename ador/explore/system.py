"""System-level scoring: what to build or buy to serve an offered load within SLOs.

A candidate is a device (a GPU preset under its runtime profile, or an ADOR design under the same
profile), a tensor x pipeline split, a precision and a serving policy with its scheduler constants.
It is scored the way an operator would size a deployment:

1. the split must be valid for the model (TP divides the heads, PP divides the layers) and the
   model must fit, else the candidate is infeasible with the reason, never scored;
2. one replica's capacity is the highest Poisson arrival rate at which its p99 TTFT and p99 time
   between tokens meet the SLOs (``max_sustainable_rate`` over the serving simulator);
3. replicas = ceil(offered rate / capacity): the offered load scales the replicas exactly;
4. the whole system (replicas x tp x pp devices) is simulated at the offered rate for its p99
   TTFT and TBT, and must meet the SLOs there too;
5. cost per million output tokens = (capex / lifetime + power under load x energy price) / output
   tokens per second served. Capex: every device priced by one rule (the modelled manufacturing
   cost x a stated markup, GPUs and designs alike) unless the study states purchase prices, which
   is then a named asymmetry. Power under load: the energy per output token of the static batch the
   simulator keeps in service (Little's law), times the tokens served.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ador.cost import assess
from ador.errors import AdorError, ConfigError
from ador.explore.metrics import Workload, evaluate_design
from ador.hardware import Device, System
from ador.hardware.runtime import RuntimeProfile
from ador.workload import ModelSpec, Precision

SECONDS_PER_YEAR = 365.25 * 24 * 3600
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Economics:
    """What a deployment costs beyond the model's own numbers, stated in the study file."""
    lifetime_years: float                  # capex amortised over this many years
    energy_usd_per_kwh: float              # electricity price
    markup: float = 1.0                    # device price = modelled manufacturing cost x markup, both sides
    prices_usd: dict[str, float] = field(default_factory=dict)   # stated purchase prices by device name

    def __post_init__(self) -> None:
        for name in ("lifetime_years", "energy_usd_per_kwh", "markup"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
                raise ConfigError(name, value, "must be a positive finite number")
        for name, price in self.prices_usd.items():
            if not isinstance(price, (int, float)) or not 0 < price < math.inf:
                raise ConfigError(f"prices_usd.{name}", price, "must be a positive finite number")

    def device_price_usd(self, device: Device, power_rule: str) -> float:
        if device.name in self.prices_usd:
            return self.prices_usd[device.name]
        return assess(device, power_rule).cost_usd * self.markup

    def usd_per_mtok(self, *, capex_usd: float, power_w: float, output_tok_s: float) -> float:
        """Cost of a million output tokens: capex amortised over the lifetime plus the energy, per
        token served."""
        per_second_usd = capex_usd / (self.lifetime_years * SECONDS_PER_YEAR) \
            + power_w / J_PER_KWH * self.energy_usd_per_kwh
        return per_second_usd / output_tok_s * 1e6


@dataclass(frozen=True)
class OfferedLoad:
    """Requests offered to the whole system and the service goals they must meet."""
    rate_rps: float
    input_len: int
    output_len: int
    ttft_slo_ms: float
    tbt_slo_ms: float
    lengths: Literal["fixed", "long-tailed"] = "fixed"
    requests: int = 400                    # simulated per capacity probe

    def __post_init__(self) -> None:
        for name in ("rate_rps", "ttft_slo_ms", "tbt_slo_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(name, value, "must be a positive finite number")
        for name in ("input_len", "output_len", "requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be a positive integer")
        from ador.serving.requests import MAX_RATE_PER_S, MIN_RATE_PER_S
        if not MIN_RATE_PER_S <= self.rate_rps <= MAX_RATE_PER_S:
            raise ConfigError("rate_rps", self.rate_rps, f"must be between {MIN_RATE_PER_S:g} and "
                                                         f"{MAX_RATE_PER_S:g} requests per second")

@dataclass(frozen=True)
class Candidate:
    device: Device
    tp: int
    pp: int
    precision: Precision
    runtime: RuntimeProfile
    policy: str = "chunked"
    max_batch: int = 256
    chunk_tokens: int = 512


def split_reasons(model: ModelSpec, tp: int, pp: int) -> list[str]:
    """Why a tensor x pipeline split cannot run the model (empty when it can)."""
    reasons = []
    if model.n_heads % tp:
        reasons.append(f"tp={tp} does not divide the {model.n_heads} attention heads of {model.name}")
    if model.n_layers % pp:
        reasons.append(f"pp={pp} does not divide the {model.n_layers} layers of {model.name}")
    return reasons


def _requests(load: OfferedLoad, rate: float, seed: int):
    from ador.serving import Lengths, poisson
    if load.lengths == "long-tailed":
        return poisson(rate, load.requests, Lengths("lognormal", load.input_len),
                       Lengths("lognormal", load.output_len), seed=seed)
    return poisson(rate, load.requests, Lengths("fixed", load.input_len), Lengths("fixed", load.output_len),
                   seed=seed)


def score_candidate(c: Candidate, model: ModelSpec, load: OfferedLoad, economics: Economics, *,
                    power_rule: str = "calibrated", seed: int = 0) -> tuple[dict[str, float] | None, list[str]]:
    """(metrics, reasons): metrics of a candidate that can serve the load, or None and why not."""
    from ador.serving import SchedulerConfig, percentile_capacity, simulate
    reasons = split_reasons(model, c.tp, c.pp)
    if reasons:
        return None, reasons
    config = SchedulerConfig(policy=c.policy, max_batch=c.max_batch, chunk_tokens=c.chunk_tokens)
    replica = System.of(c.device, tp=c.tp, pp=c.pp, runtime=c.runtime)

    def run(rate: float, system: System = replica):
        return simulate(system, model, c.precision, _requests(load, rate, seed), config=config,
                        ttft_slo_ms=load.ttft_slo_ms, tbt_slo_ms=load.tbt_slo_ms)

    try:
        static = evaluate_design(c.device, model, c.precision, Workload(1, load.input_len, load.output_len),
                                 tp=c.tp, pp=c.pp, runtime=c.runtime, power_rule=power_rule)
        if static["memory_utilisation"] > 1.0:
            return None, [f"does not fit: needs {100 * static['memory_utilisation']:.0f}% of device memory"]
        # the capacity search bisects on a pass/fail judgement: p99 TTFT and TBT within the SLOs
        capacity, _ = percentile_capacity(run, ttft_p99_ms=load.ttft_slo_ms, tbt_p99_ms=load.tbt_slo_ms)
    except AdorError as err:
        return None, [str(err)]
    if capacity <= 0:
        return None, ["one replica meets the p99 SLOs at no arrival rate"]
    replicas = math.ceil(load.rate_rps / capacity - 1e-9)
    system = System.of(c.device, tp=c.tp, pp=c.pp, devices=replicas * c.tp * c.pp, runtime=c.runtime)
    try:
        served = run(load.rate_rps, system)
        in_service = max(1, round(served.mean_in_system / replicas))
        at_load = evaluate_design(c.device, model, c.precision, Workload(in_service, load.input_len, load.output_len),
                                  tp=c.tp, pp=c.pp, runtime=c.runtime, power_rule=power_rule)
    except AdorError as err:
        return None, [str(err)]
    devices = system.devices
    tokens_per_s = load.rate_rps * load.output_len
    power_w = at_load["energy_per_token_j"] * tokens_per_s
    capex = economics.device_price_usd(c.device, power_rule) * devices
    metrics = {
        "replicas": float(replicas),
        "devices": float(devices),
        "capacity_rps_per_replica": capacity,
        "load_headroom": capacity * replicas / load.rate_rps - 1.0,
        "serving_ttft_p99_ms": served.ttft_ms["p99"],
        "serving_tbt_p99_ms": served.tbt_ms["p99"],
        "serving_slo_attainment": served.slo_attainment,
        "system_die_area_mm2": static["die_area_mm2"] * devices,
        "system_package_area_mm2": static["package_area_mm2"] * devices,
        "system_tdp_w": static["tdp_w"] * devices,
        "power_at_load_w": power_w,
        "capex_usd": capex,
        "cost_per_mtok_usd": economics.usd_per_mtok(capex_usd=capex, power_w=power_w, output_tok_s=tokens_per_s),
        "energy_per_token_j": at_load["energy_per_token_j"],
        "die_area_mm2": static["die_area_mm2"],
        "dies": static["dies"],
        "memory_utilisation": static["memory_utilisation"],
        "shoreline_utilisation": static["shoreline_utilisation"],
    }
    reasons = []
    if served.ttft_ms["p99"] > load.ttft_slo_ms:
        reasons.append(f"p99 TTFT {served.ttft_ms['p99']:.0f} ms > {load.ttft_slo_ms:g} ms at the offered load")
    if served.tbt_ms["p99"] > load.tbt_slo_ms:
        reasons.append(f"p99 TBT {served.tbt_ms['p99']:.1f} ms > {load.tbt_slo_ms:g} ms at the offered load")
    return metrics, reasons


def describe(c: Candidate) -> dict[str, Any]:
    return {"device": c.device.name, "kind": c.device.kind, "tp": c.tp, "pp": c.pp, "precision": c.precision.name,
            "runtime": c.runtime.name, "policy": c.policy, "max_batch": c.max_batch, "chunk_tokens": c.chunk_tokens}
