"""Time of a stage (a list of operators) on a system, with the per-operator breakdown."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Mapping

from ador.hardware.system import System
from ador.perf import ador_engines, gpu
from ador.perf.collectives import die_link_bytes
from ador.perf.rules import SCALAR, Rates, rates_of, stage_seconds
from ador.workload.ops import COLLECTIVES, DIE_COLLECTIVES, Op
from ador.workload.precision import Precision


@dataclass(frozen=True, slots=True)
class OpTiming:
    name: str
    kind: str
    phase: str
    engine: str
    bound: str          # compute | memory | sram | noc | vector | network
    count: float
    time_s: float       # all ``count`` instances together
    flops: float        # all instances
    bytes: float        # weights + activations + KV moved, all instances
    dram_bytes: float   # weights + KV cache (always in device memory), all instances
    link_bytes: float   # collective payload sent over links; die-level: all bytes over die-to-die links
    vector_ops: float   # elementwise operations, all instances


@dataclass(frozen=True, slots=True)
class StageResult:
    time_s: float
    breakdown: tuple[OpTiming, ...] = ()

    def top(self, n: int = 5) -> list[OpTiming]:
        return sorted(self.breakdown, key=lambda t: t.time_s, reverse=True)[:n]

    def activity(self) -> dict[str, float]:
        """Work done by one device in this stage, for energy accounting."""
        return {
            "flops": sum(t.flops for t in self.breakdown),
            "vector_ops": sum(t.vector_ops for t in self.breakdown),
            "dram_bytes": sum(t.dram_bytes for t in self.breakdown),
            "onchip_bytes": sum(t.bytes - t.dram_bytes for t in self.breakdown),
            "link_bytes": sum(t.link_bytes for t in self.breakdown if t.kind not in DIE_COLLECTIVES),
            "d2d_bytes": sum(t.link_bytes for t in self.breakdown if t.kind in DIE_COLLECTIVES),
            "seconds": self.time_s,
        }

    def by_bound(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.breakdown:
            out[t.bound] = out.get(t.bound, 0.0) + t.time_s
        return out


def stage_time(system: System, precision: Precision, ops: tuple[Op, ...], *,
               engines: Mapping[str, str] | None = None, breakdown: bool = True,
               step_overhead: bool = True) -> StageResult:
    """Operators run one after another (each depends on the previous), plus the runtime's per-step
    overhead (``step_overhead``) and minus the collective time the runtime hides under compute;
    ``engines`` maps a phase to the engine that must run its matrix work on an ADOR chip
    (concurrent serving)."""
    device = system.device
    tp = system.tp
    r = rates(system)
    rt = system.runtime
    if not breakdown and not engines and device.kind == "ador":
        # the population path's definition, run on one design (ador_engines.op_seconds)
        return StageResult(ops_seconds(ops, lambda op: ador_engines.op_seconds(device, op, precision, tp, r), rt,
                                       step_overhead=step_overhead))
    op_time: Callable[..., Any] = gpu.op_time if device.kind == "gpu" else ador_engines.op_time
    work = 0.0
    comm = 0.0
    timings = []
    for op in ops:
        t, engine, bound = op_time(device, op, precision, tp, r, engines.get(op.phase) if engines else None)
        t *= op.count
        if op.kind in COLLECTIVES:
            comm += t
        else:
            work += t
        if breakdown:
            c = op.count
            link = op.comm_bytes * c if op.kind not in DIE_COLLECTIVES else \
                die_link_bytes(op.kind, op.comm_bytes * c, system.dies)
            timings.append(OpTiming(op.name, op.kind, op.phase, engine, bound, c, t, op.flops * c,
                                    op.bytes_total * c, (op.weight_bytes + op.kv_bytes) * c,
                                    link, op.vector_ops * c))
    total = stage_seconds(work, comm, rt.comm_overlap, rt.step_overhead_s if step_overhead else 0.0)
    if comm and breakdown and rt.comm_overlap:
        hidden = work + comm - (total - (rt.step_overhead_s if step_overhead else 0.0))
        shown = 1.0 - hidden / comm
        timings = [replace(t, time_s=t.time_s * shown) if t.kind in COLLECTIVES else t for t in timings]
    return StageResult(total, tuple(timings))


def ops_seconds(ops, seconds_of: Callable[[Op], Any], runtime, X=SCALAR, step_overhead: bool = True):
    """A stage's time from the time of one instance of each operator (``seconds_of``: a number, or
    an array with one value per design): operators in sequence, the collectives the runtime hides
    under compute taken off, the per-step overhead added."""
    work: Any = 0.0
    comm: Any = 0.0
    for op in ops:
        t = op.count * seconds_of(op)
        if op.kind in COLLECTIVES:
            comm = comm + t
        else:
            work = work + t
    return stage_seconds(work, comm, runtime.comm_overlap, runtime.step_overhead_s if step_overhead else 0.0, X)


def rates(system: System) -> Rates:
    """The system's rates, computed once per (device, runtime, layout)."""
    return _rates(system.device, system.runtime, system.node, system.tp, system.pp)


@lru_cache(maxsize=1024)
def _rates(device, runtime, node, tp: int, pp: int) -> Rates:
    return rates_of(device, runtime, node=node, tp=tp, pp=pp)
