"""What binds, read from the model's own breakdown: the time of the step a ratio is quoted on, split
by what bounds each operator, and sentences generated from those numbers (so a report's explanation
cannot contradict its figures). Computation in ``anatomy``/``compare``; ``sentences`` formats.
"""
from __future__ import annotations

from dataclasses import dataclass

from ador.hardware import Device, System
from ador.hardware.runtime import RuntimeProfile
from ador.perf.evaluate import p99_decode_kv
from ador.perf.stage import StageResult, stage_time
from ador.workload import ModelSpec, Precision
from ador.workload.graph import decode_step, prefill

HOST = "host overhead"       # the runtime's per-step cost: in the stage time, in no operator
# How each bound reads in a sentence (ador/perf/stage.py OpTiming.bound).
BOUND_WORDS = {"compute": "compute-bound operators", "memory": "memory-bound operators (weights and KV cache "
               "streamed from HBM)", "sram": "SRAM-bound operators", "noc": "NoC-bound operators",
               "vector": "vector-unit-bound operators", "network": "collectives over the links",
               "die_to_die": "collectives between the dies of each device",
               "parallelism": "decode attention held back by its kernel's parallelism (too few thread blocks "
               "to stream the KV cache at HBM bandwidth)",
               "l2": "decode attention re-reading each KV head once per query head through the L2",
               HOST: "per-step host overhead"}


@dataclass(frozen=True)
class Anatomy:
    """One stage of one system, split by bound: the time the ratio is quoted on and its parts."""
    label: str                       # "8 x a100-sxm-80gb"
    stage: str                       # "p99 decode step" | "prefill"
    time_ms: float
    ms_by_bound: dict[str, float]    # sums to time_ms (host overhead included)
    dram_gb: float                   # HBM traffic of the stage, per device
    memory_bound_dram_gb: float      # of which moved by the memory-bound operators
    tflop: float                     # matrix and attention work of the stage, per device

    def share(self, bound: str) -> float:
        return self.ms_by_bound.get(bound, 0.0) / self.time_ms if self.time_ms else 0.0

    @property
    def effective_hbm_tb_s(self) -> float:
        """HBM bytes over the memory-bound time: the bandwidth the memory-bound operators reach."""
        mem_s = self.ms_by_bound.get("memory", 0.0) / 1e3
        return self.memory_bound_dram_gb / 1e3 / mem_s if mem_s else 0.0


def _anatomy(label: str, stage: str, result: StageResult) -> Anatomy:
    by = dict(result.by_bound())
    host = result.time_s - sum(by.values())
    if host > 1e-12:
        by[HOST] = host
    act = result.activity()
    memory_bound = sum(t.dram_bytes for t in result.breakdown if t.bound == "memory")
    ms = {k: v * 1e3 for k, v in sorted(by.items(), key=lambda kv: -kv[1])}
    return Anatomy(label, stage, result.time_s * 1e3, ms, act["dram_bytes"] / 1e9, memory_bound / 1e9,
                   act["flops"] / 1e12)


def decode_anatomy(device: Device, model: ModelSpec, precision: Precision, *, tp: int, batch: int, input_len: int,
                   output_len: int, runtime: RuntimeProfile | str | None = None, label: str | None = None,
                   pp: int = 1, devices: int | None = None) -> Anatomy:
    """The p99 decode step (the step ``tbt_p99_ms`` quotes when it is above the mean), split by bound."""
    system = System.of(device, tp=tp, pp=pp, devices=devices, runtime=runtime)
    kv = p99_decode_kv(input_len, output_len)
    result = stage_time(system, precision, decode_step(model, precision, tp, batch, kv, pp, system.dies))
    return _anatomy(label or f"{system.devices} x {device.name}", "p99 decode step", result)


def prefill_anatomy(device: Device, model: ModelSpec, precision: Precision, *, tp: int, batch: int, input_len: int,
                    runtime: RuntimeProfile | str | None = None, label: str | None = None, pp: int = 1,
                    devices: int | None = None) -> Anatomy:
    system = System.of(device, tp=tp, pp=pp, devices=devices, runtime=runtime)
    result = stage_time(system, precision, prefill(model, precision, tp, batch, input_len, pp, system.dies))
    return _anatomy(label or f"{system.devices} x {device.name}", "prefill", result)


def _parts(a: Anatomy, limit: int = 4) -> str:
    parts = [f"{100 * a.share(b):.0f}% {BOUND_WORDS.get(b, b)}" for b in a.ms_by_bound][:limit]
    return ", ".join(parts)


def dominant(a: Anatomy) -> str:
    """The bound that takes the largest share of the stage."""
    return next(iter(a.ms_by_bound), HOST)


def describe(a: Anatomy) -> str:
    """One sentence: the stage's time and its split by bound."""
    return f"{a.label}'s {a.stage} takes {a.time_ms:.2f} ms: {_parts(a)}."


def compare(design: Anatomy, baseline: Anatomy) -> str:
    """One sentence: how much longer the baseline's stage is and which bound's time differs most."""
    bounds = set(design.ms_by_bound) | set(baseline.ms_by_bound)
    gaps = sorted(((baseline.ms_by_bound.get(b, 0.0) - design.ms_by_bound.get(b, 0.0), b) for b in bounds),
                  key=lambda g: -abs(g[0]))
    gap, bound = gaps[0]
    ratio = baseline.time_ms / design.time_ms if design.time_ms else float("inf")
    total = baseline.time_ms - design.time_ms
    if total > 0 and 0 < gap <= total:
        share = f" ({gap:.2f} of the {total:.2f} ms difference)"
    elif total > 0 and gap > total:
        share = (f" ({gap:.2f} ms, more than the whole {total:.2f} ms difference: "
                 f"{design.label} spends {gap - total:.2f} ms more than {baseline.label} in other bounds)")
    else:
        share = ""
    return (f"{baseline.label}'s {baseline.stage} is {ratio:.2f}x as long as {design.label}'s; the largest part of the "
            f"gap is in {BOUND_WORDS.get(bound, bound)}: {baseline.ms_by_bound.get(bound, 0.0):.2f} ms against "
            f"{design.ms_by_bound.get(bound, 0.0):.2f} ms{share}.")


def bandwidth(a: Anatomy) -> str:
    """One sentence: what the memory-bound operators move and the bandwidth they reach."""
    if not a.ms_by_bound.get("memory"):
        return f"{a.label}'s {a.stage} has no memory-bound operator."
    return (f"{a.label}'s memory-bound operators move {a.memory_bound_dram_gb:.2f} GB per device in "
            f"{a.ms_by_bound['memory']:.2f} ms, {a.effective_hbm_tb_s:.2f} TB/s.")


def area_split(*, ratio: float, throughput_ratio: float, area_ratio: float, design_mm2: float, baseline_mm2: float,
               basis: str, baseline: str) -> str:
    """One sentence: an area-efficiency ratio as its throughput and area factors."""
    return (f"Area efficiency {ratio:.2f}x against {baseline} is {throughput_ratio:.2f}x the throughput on "
            f"{area_ratio:.2f}x less area ({design_mm2:.0f} against {baseline_mm2:.0f} mm2 of {basis} per device).")
