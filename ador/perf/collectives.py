"""Tensor- and pipeline-parallel collectives over chip-to-chip links: algorithm by topology and TP.

Each algorithm costs a latency per synchronisation step (the link's hop latency plus the runtime's
software synchronisation) and the bytes each device moves over its links at their achieved
bandwidth. ``t`` devices, payload ``S`` bytes per device:

- ring all-reduce (NCCL's ring; Patarasuk & Yuan, JPDC 2009): 2(t-1) steps, 2(t-1)/t * S;
- one-shot all-reduce (every device reads every peer's buffer after one barrier; TensorRT-LLM's
  custom all-reduce for small messages): 1 step, (t-1) * S;
- two-shot all-reduce (reduce-scatter then all-gather, each peer read directly; TensorRT-LLM's
  custom all-reduce for medium messages): 2 steps, 2(t-1)/t * S;
- in-switch all-reduce (NVLink SHARP, NCCL's NVLS algorithm on third-generation NVSwitch and later):
  each device loads its 1/t of the buffer already reduced by the switch (multimem.ld_reduce: S sent,
  S/t received), then stores it once for the switch to multicast (S/t sent, S received): 2 steps,
  (1 + 1/t) * S over full-duplex links, where two-shot moves 2(t-1)/t * S;
- all-gather of S gathered bytes: ring t-1 steps, direct 1 step, (t-1)/t * S either way;
- pipeline send: 1 step, S.

A ring topology (DFX, LPU) can only run the ring algorithms; a switch (NVSwitch) or a fully
connected mesh (Infinity Fabric) reaches every peer directly, and the runtime picks the fastest of
the three for each message size, as TensorRT-LLM does; a reducing switch (NVSwitch with SHARP: H100,
H200, B200 boards) adds the in-switch all-reduce, which NCCL picks on such boards. A topology's
``reach`` encodes this: RING (0), DIRECT (1), SWITCH_REDUCE (2).
"""
from __future__ import annotations

from ador.hardware.components import Topology
from ador.ops import SCALAR
from ador.workload.ops import ALLREDUCE, DEVICE_KIND_OF, DIE_ALLREDUCE, P2P

LINK = "link"
D2D = "die_to_die"
RING, DIRECT, SWITCH_REDUCE = 0, 1, 2
REDUCING_SWITCH: Topology = "reducing_switch"     # the topology whose switch reduces (NVLink SHARP)


def reach(topology):
    """RING, DIRECT or SWITCH_REDUCE for a topology name (or an array of names: an array of reaches)."""
    return 1 * (topology != "ring") + 1 * (topology == REDUCING_SWITCH)


def collective_seconds(kind: str, comm_bytes: float, tp: int, bw, step_latency_s, direct, fixed_s, X=SCALAR):
    """Seconds of one collective; ``direct`` is the topology's reach (RING, DIRECT, SWITCH_REDUCE; a
    bool means RING or DIRECT), or an array of reaches with one value per design."""
    if kind == P2P:
        return comm_bytes / bw + step_latency_s + fixed_s
    t = tp
    if kind == ALLREDUCE:
        ring = 2 * (t - 1) * step_latency_s + 2 * (t - 1) / t * comm_bytes / bw
        one_shot = step_latency_s + (t - 1) * comm_bytes / bw
        two_shot = 2 * step_latency_s + 2 * (t - 1) / t * comm_bytes / bw
        best_direct = X.minimum(ring, X.minimum(one_shot, two_shot))
        in_switch = 2 * step_latency_s + (1 + 1 / t) * comm_bytes / bw
        best_direct = X.where(direct >= SWITCH_REDUCE, X.minimum(best_direct, in_switch), best_direct)
    else:
        ring = (t - 1) * step_latency_s + (t - 1) / t * comm_bytes / bw
        best_direct = X.minimum(ring, step_latency_s + (t - 1) / t * comm_bytes / bw)
    return X.where(direct >= DIRECT, best_direct, ring) + fixed_s


def collective_op_seconds(op, tp: int, r, X=SCALAR):
    """One collective operator under rates ``r``: pipeline sends that cross a node boundary go over
    the network tier, the rest over the chip-to-chip links (works on numbers or per-design arrays)."""
    t = collective_seconds(op.kind, op.comm_bytes, tp, r.link_bw, r.step_latency_s, r.direct, r.op_overhead_s, X)
    if op.kind == P2P and r.p2p_cross:
        over_net = collective_seconds(P2P, op.comm_bytes, tp, r.net_bw, r.net_step_latency_s, False, r.op_overhead_s, X)
        t = (1.0 - r.p2p_cross) * t + r.p2p_cross * over_net
    return t


def collective_time(op, tp: int, r) -> tuple[float, str, str]:
    return collective_op_seconds(op, tp, r), LINK, "network"


def die_link_bytes(kind: str, payload_bytes, dies):
    """Bytes one die-level collective moves over all the die-to-die links of a device (a number or
    an array of die counts): a ring all-reduce sends 2(n-1)/n of the payload from each of n dies, an
    all-gather (n-1)/n of what is gathered; nothing at one die."""
    return payload_bytes * (2 * (dies - 1) if kind == DIE_ALLREDUCE else dies - 1)


def die_collective_seconds(op, dies, tp: int, r, X=SCALAR):
    """One die-level collective among the ``dies`` dies of a device (a number, or an array with one
    value per design): the device-level algorithm over the die-to-die links, which form a ring;
    nothing at one die. Under tensor parallelism across devices it is the inner level of one
    hierarchical collective (reduce-scatter among the dies, each die's share across devices,
    all-gather among the dies: the device-level part keeps its time, since each die sends 1/dies
    of the payload over 1/dies of the links), so only a collective of its own (TP 1) pays the
    runtime's per-operator cost."""
    fixed = r.op_overhead_s if tp == 1 else 0.0
    t = collective_seconds(DEVICE_KIND_OF[op.kind], op.comm_bytes, X.maximum(dies, 2), r.d2d_bw,
                           r.d2d_step_latency_s, False, fixed, X)
    return X.where(dies > 1, t, 0.0)
