"""Time of a stage (a list of operators) on a system, with the per-operator breakdown."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ador.hardware.system import System
from ador.perf import ador_engines, gpu
from ador.workload.ops import Op
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


@dataclass(frozen=True, slots=True)
class StageResult:
    time_s: float
    breakdown: tuple[OpTiming, ...] = ()

    def top(self, n: int = 5) -> list[OpTiming]:
        return sorted(self.breakdown, key=lambda t: t.time_s, reverse=True)[:n]

    def by_bound(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.breakdown:
            out[t.bound] = out.get(t.bound, 0.0) + t.time_s
        return out


def stage_time(system: System, precision: Precision, ops: tuple[Op, ...], *,
               engines: Mapping[str, str] | None = None, breakdown: bool = True) -> StageResult:
    """Operators run one after another (each depends on the previous); ``engines`` maps a phase
    to the engine that must run its matrix work on an ADOR chip (concurrent serving)."""
    device = system.device
    tp = system.tp
    if device.kind == "gpu":
        op_time = gpu.op_time
        total = device.efficiency.step_overhead_s
    else:
        op_time = ador_engines.op_time
        total = 0.0
    timings = []
    for op in ops:
        t, engine, bound = op_time(device, op, precision, tp, engines.get(op.phase) if engines else None)
        t *= op.count
        total += t
        if breakdown:
            timings.append(OpTiming(op.name, op.kind, op.phase, engine, bound, op.count, t,
                                    op.flops * op.count, op.bytes_total * op.count))
    return StageResult(total, tuple(timings))
