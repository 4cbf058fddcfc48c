"""The question asked under load: Poisson arrivals of long-tailed requests, each system's capacity
(the highest rate at which the simulated p99 TTFT and p99 TBT stay within the SLOs, the same search
as ``ador simulate --find-capacity --capacity-by p99``) and its p99s at one common rate."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ador.hardware import Device, System
from ador.hardware.runtime import RuntimeProfile
from ador.headline.plan import SERVING, ServingPlan
from ador.serving import Lengths, SchedulerConfig, percentile_capacity, poisson, simulate
from ador.workload import get_model, get_precision


@dataclass(frozen=True)
class ServingLine:
    label: str
    device: Device
    policy: str
    runtime: RuntimeProfile
    seed: int | None = None      # the study seed whose design this is (None: a GPU)


@dataclass(frozen=True)
class Served:
    line: ServingLine
    capacity_rps: float
    at_rate_rps: float           # the common rate the p99s below are taken at
    ttft_p99_ms: float
    tbt_p99_ms: float
    goodput_rps: float


def _run(device: Device, policy: str, runtime: RuntimeProfile, model: str, precision: str, *, tp: int, devices: int,
         plan: ServingPlan):
    system = System.of(device, tp=tp, devices=devices, runtime=runtime)
    base = poisson(1.0, plan.requests, Lengths("lognormal", plan.input_len), Lengths("lognormal", plan.output_len),
                   seed=plan.seed)
    config = SchedulerConfig(policy=policy)
    m, p = get_model(model), get_precision(precision)

    def at(rate: float):
        return simulate(system, m, p, base.at_rate(rate), config=config, ttft_slo_ms=plan.ttft_p99_ms)
    return at


@lru_cache(maxsize=64)
def _capacity(device: Device, policy: str, runtime: RuntimeProfile, model: str, precision: str, tp: int,
              devices: int, plan: ServingPlan) -> float:
    # cached: a serving-study knee is both a line of the table and one of its study's seeds
    at = _run(device, policy, runtime, model, precision, tp=tp, devices=devices, plan=plan)
    rate, _ = percentile_capacity(at, ttft_p99_ms=plan.ttft_p99_ms, tbt_p99_ms=plan.tbt_p99_ms)
    return rate


def capacity(line: ServingLine, model: str, precision: str, *, tp: int, devices: int,
             plan: ServingPlan = SERVING) -> float:
    return _capacity(line.device, line.policy, line.runtime, model, precision, tp, devices, plan)


def serve(lines: list[ServingLine], model: str, precision: str, *, tp: int, devices: int, common_rate: float | None,
          plan: ServingPlan = SERVING) -> list[Served]:
    """Each line's capacity and its p99s at ``common_rate`` (default: the first line's capacity)."""
    caps = [capacity(line, model, precision, tp=tp, devices=devices, plan=plan) for line in lines]
    rate = common_rate or caps[0]
    out = []
    for line, cap in zip(lines, caps):
        at = _run(line.device, line.policy, line.runtime, model, precision, tp=tp, devices=devices, plan=plan)
        r = at(rate) if rate > 0 else None
        out.append(Served(line, cap, rate, r.ttft_ms["p99"] if r else float("nan"),
                          r.tbt_ms["p99"] if r else float("nan"), r.goodput_rps if r else 0.0))
    return out
