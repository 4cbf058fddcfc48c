"""Scoring one design on a study's workload: every metric an objective or constraint can name.

This is the hot path of every study: plain Python over cached operator graphs, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from ador.cost import RETICLE_LIMIT_MM2
from ador.cost.report import DEFAULT_POWER_RULE
from ador.efficiency import efficiency
from ador.hardware import Device, System
from ador.hardware.runtime import RuntimeProfile
from ador.perf import evaluate
from ador.perf.evaluate import memory_utilisation, tbt_p99_s
from ador.workload import ModelSpec, Precision

if TYPE_CHECKING:
    from ador.serving.simulator import ServingResult

# metric -> the direction that is better
METRICS: dict[str, str] = {
    "ttft_ms": "minimize",
    "tbt_ms": "minimize",                  # mean over the generation
    "tbt_p99_ms": "minimize",              # 99th percentile of the generation's steps
    "e2e_ms": "minimize",
    "output_tok_s": "maximize",            # all devices of the system
    "output_tok_s_per_device": "maximize",
    "output_tok_s_per_mm2": "maximize",    # per mm2 of all dies of the system
    "output_tok_s_per_package_mm2": "maximize",   # per mm2 of all packages (dies + HBM on interposer)
    "output_tok_s_per_w": "maximize",
    "energy_per_token_j": "minimize",
    "die_area_mm2": "minimize",            # one device, all its dies
    "dies": "minimize",                    # one device: dies it is cut into (the reticle applies to each)
    "system_die_area_mm2": "minimize",
    "package_area_mm2": "minimize",        # one device: dies and HBM stacks on the interposer
    "system_package_area_mm2": "minimize",
    "tdp_w": "minimize",                   # one device, by the study's power rule
    "cost_usd": "minimize",                # whole system
    "memory_utilisation": "minimize",      # needed / capacity per device
    "shoreline_utilisation": "minimize",   # PHY edge needed / die edge available (> 1: does not fit)
    "hbm_bandwidth_tb_s": "minimize",      # one device: peak DRAM bandwidth (for iso constraints)
    "hbm_stacks": "minimize",              # one device: active HBM stacks
    "link_bandwidth_gb_s": "minimize",     # one device: chip-to-chip bandwidth per direction
    # from the serving simulator, when the study's workload names an arrival rate
    "serving_ttft_p99_ms": "minimize",
    "serving_tbt_p99_ms": "minimize",
    "serving_goodput_rps": "maximize",
    "serving_slo_attainment": "maximize",
    "serving_output_tok_s": "maximize",
}
# of a system-level study (ador/explore/system.py): a whole deployment serving an offered load
SYSTEM_METRIC_DIRECTIONS = {
    "cost_per_mtok_usd": "minimize",       # capex over the lifetime + energy, per million output tokens
    "capex_usd": "minimize",
    "power_at_load_w": "minimize",
    "system_tdp_w": "minimize",
    "replicas": "minimize",
    "devices": "minimize",
    "capacity_rps_per_replica": "maximize",
    "load_headroom": "maximize",           # capacity of all replicas over the offered load, minus 1
}
METRICS.update(SYSTEM_METRIC_DIRECTIONS)
SYSTEM_METRICS = set(SYSTEM_METRIC_DIRECTIONS)
SERVING_METRICS = {m for m in METRICS if m.startswith("serving_")}
ENERGY_METRICS = {"output_tok_s_per_w", "energy_per_token_j"}


@dataclass(frozen=True)
class Workload:
    batch: int
    input_len: int
    output_len: int


# study metric -> what the serving simulator's judgement calls it
SERVING_JUDGED = {"serving_ttft_p99_ms": "ttft_p99_ms", "serving_tbt_p99_ms": "tbt_p99_ms",
                  "serving_goodput_rps": "goodput_rps", "serving_slo_attainment": "slo_attainment",
                  "serving_output_tok_s": "output_tok_s"}


@dataclass(frozen=True)
class ServingLoad:
    """Requests the serving metrics are measured on: Poisson arrivals at ``arrival_rate``, judged
    over replications of ``requests`` requests (steady state: warm-up and drain excluded) until
    the metrics in ``targets`` are known within ``ci`` (relative 95% repeat interval), at most
    ``max_requests`` simulated per design."""
    arrival_rate: float
    requests: int
    policy: str
    long_tailed: bool
    ttft_slo_ms: float | None
    tbt_slo_ms: float | None
    ci: float | None = 0.05
    max_requests: int = 20_000
    targets: tuple[str, ...] = ()


def serving_metrics(device: Device, model: ModelSpec, precision: Precision, workload: Workload, load: ServingLoad,
                    *, tp: int, pp: int = 1, devices: int | None = None, seed: int = 0,
                    runtime: RuntimeProfile | str | None = None) -> dict[str, float]:
    """The serving metrics with their intervals (``<metric>_ci``: half-width of the 95% interval a
    repeat judgement with fresh seeds falls in) and what they cost (replications, requests)."""
    from ador.serving import STEADY, Lengths, SchedulerConfig, poisson, simulate
    from ador.serving.precision import judge
    kind: Literal["fixed", "lognormal"] = "lognormal" if load.long_tailed else "fixed"
    system = System.of(device, tp=tp, pp=pp, devices=devices, runtime=runtime)
    config = SchedulerConfig(policy=load.policy)

    def run(k: int, n: int) -> ServingResult:
        # the same seeds for every design (common random numbers): designs compare on equal terms
        reqs = poisson(load.arrival_rate, n, Lengths(kind, workload.input_len), Lengths(kind, workload.output_len),
                       seed=seed + k)
        return simulate(system, model, precision, reqs, config=config, ttft_slo_ms=load.ttft_slo_ms,
                        tbt_slo_ms=load.tbt_slo_ms, window=STEADY)
    names = tuple(SERVING_JUDGED.values())
    targets = tuple(SERVING_JUDGED[m] for m in load.targets) or names
    j = judge(run, names, ci=load.ci, requests=load.requests, max_requests=load.max_requests, targets=targets)
    out = {metric: j.value(name) for metric, name in SERVING_JUDGED.items()}
    out.update({f"{metric}_ci": j.intervals[name].half_width for metric, name in SERVING_JUDGED.items()})
    out["serving_replications"] = float(j.replications)
    out["serving_requests"] = float(j.requests)
    return out


def device_metrics(device: Device, *, devices: int, power_rule: str = DEFAULT_POWER_RULE) -> dict[str, float]:
    """What a device is, independent of any workload: areas, power, cost, memory and links (the
    metrics iso constraints compare); ``devices`` of them make the system."""
    from ador.cost import assess
    cost = assess(device, power_rule)
    return {
        "die_area_mm2": cost.die_area_mm2,
        "dies": float(cost.dies),
        "system_die_area_mm2": cost.die_area_mm2 * devices,
        "package_area_mm2": cost.package_area_mm2,
        "system_package_area_mm2": cost.package_area_mm2 * devices,
        "tdp_w": cost.tdp_w,
        "cost_usd": cost.cost_usd * devices,
        "shoreline_utilisation": cost.package.shoreline_utilisation if cost.package else 0.0,
        "hbm_bandwidth_tb_s": device.hbm_bw_bytes_per_s / 1e12,
        "hbm_stacks": float(device.memory_stacks),
        "link_bandwidth_gb_s": device.link_bw_bytes_per_s / 1e9,
    }


def evaluate_design(device: Device, model: ModelSpec, precision: Precision, workload: Workload, *, tp: int,
                    pp: int = 1, devices: int | None = None, need_energy: bool = True,
                    runtime: RuntimeProfile | str | None = None,
                    power_rule: str = DEFAULT_POWER_RULE) -> dict[str, float]:
    """All metrics of ``device`` serving ``workload`` under ``runtime`` (default: the fitted
    TensorRT-LLM profile, for GPUs and designs alike); raises AdorError if the design is invalid."""
    system = System.of(device, tp=tp, pp=pp, devices=devices, runtime=runtime)
    result = evaluate(system, model, precision, batch=workload.batch, input_len=workload.input_len,
                      output_len=workload.output_len, breakdown=need_energy)
    eff = efficiency(system, result, energy=need_energy, power_rule=power_rule)
    p99 = tbt_p99_s(system, model, precision, workload.batch, workload.input_len, workload.output_len, result.tbt_s)
    metrics = {
        "ttft_ms": result.ttft_s * 1e3,
        "tbt_ms": result.tbt_s * 1e3,
        "tbt_p99_ms": p99 * 1e3,
        "e2e_ms": result.e2e_s * 1e3,
        "output_tok_s": result.output_tok_s,
        "output_tok_s_per_device": result.output_tok_s / system.devices,
        "output_tok_s_per_mm2": eff["output_tok_s_per_mm2"],
        "output_tok_s_per_package_mm2": eff["output_tok_s_per_package_mm2"],
        "memory_utilisation": memory_utilisation(result.memory.total_bytes, result.capacity_bytes),
        **device_metrics(device, devices=system.devices, power_rule=power_rule),
    }
    if need_energy:
        metrics["energy_per_token_j"] = eff["energy_per_output_token_j"]
        metrics["output_tok_s_per_w"] = eff["output_tok_s_per_w"]
    return metrics


# What makes a scored design impossible to build or run: (code, applies only to single dies, test on
# the metrics, the reason given). A test works on numbers (one design) and on arrays (a population:
# ``ador.explore.vector.feasibility_codes``); each reason's code is one bit of a population's code.
FEASIBILITY_CHECKS: tuple[tuple[int, bool, Callable[[Any], Any], Callable[[Any], str]], ...] = (
    (1, False, lambda m: m["memory_utilisation"] > 1.0,
     lambda m: f"does not fit: needs {100 * m['memory_utilisation']:.0f}% of device memory"
               if m["memory_utilisation"] < math.inf
               else "does not fit: the runtime's reserve leaves no device memory"),
    (2, True, lambda m: m["die_area_mm2"] / m.get("dies", 1.0) > RETICLE_LIMIT_MM2,
     lambda m: f"die of {m['die_area_mm2'] / m.get('dies', 1.0):.0f} mm2 exceeds the "
               f"{RETICLE_LIMIT_MM2:.0f} mm2 reticle"),
    (4, True, lambda m: m["shoreline_utilisation"] > 1.0,
     lambda m: f"PHYs need {100 * m['shoreline_utilisation']:.0f}% of the die edge they can use"),
)


def feasibility(metrics: dict[str, float], *, reticle: bool = True) -> list[str]:
    """Reasons a scored design cannot be built or run (empty when feasible). ``reticle``: the die
    limits apply (a single-die design; multi-die GPUs are judged without them)."""
    return [reason(metrics) for _, die_only, test, reason in FEASIBILITY_CHECKS
            if (reticle or not die_only) and test(metrics)]


def ratio_vs(metric: str, design: float, baseline: float) -> float | None:
    """How many times better the design is than the baseline on ``metric`` (>1: better)."""
    if not baseline or not design or any(map(math.isnan, (design, baseline))):
        return None
    return design / baseline if METRICS.get(metric) == "maximize" else baseline / design


def finite(metrics: dict[str, Any]) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values())
