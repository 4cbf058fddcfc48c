"""Tensor- and pipeline-parallel collectives over chip-to-chip links (latency + size/bandwidth)."""
from __future__ import annotations

from ador.workload.ops import ALLREDUCE, P2P, Op

LINK = "link"


def collective_seconds(op: Op, tp: int, bw, step_latency_s, ring, fixed_s):
    """Ring or direct (switch / fully connected) collective: the bandwidth term is the same
    (each device sends 2(t-1)/t of the payload for an all-reduce, (t-1)/t for an all-gather);
    a ring pays a latency per step, a direct exchange one per phase. Works on numbers or arrays
    (``ring`` a bool or a bool array)."""
    if op.kind == P2P:
        return op.comm_bytes / bw + step_latency_s + fixed_s
    t = tp
    share = (t - 1) / t
    if op.kind == ALLREDUCE:
        volume, ring_steps, direct_steps = 2 * share * op.comm_bytes, 2 * (t - 1), 2
    else:
        volume, ring_steps, direct_steps = share * op.comm_bytes, t - 1, 1
    steps = ring * ring_steps + (1 - ring) * direct_steps
    return volume / bw + steps * step_latency_s + fixed_s


def collective_time(op: Op, tp: int, bw: float, step_latency_s: float, topology: str,
                    fixed_s: float) -> tuple[float, str, str]:
    return collective_seconds(op, tp, bw, step_latency_s, topology == "ring", fixed_s), LINK, "network"
