"""Rules shared by every device, GPU or ADOR design: written once over a tiny ops namespace.

``SCALAR`` runs a formula on plain Python numbers (one design, the hot path); ``NUMPY`` on arrays
holding one value per design (``ador.perf.population``). Anything that is a rule of the runtime
rather than of an engine (how compute and data movement overlap) lives here, so both sides of a
comparison are priced by the same line of code.
"""
from __future__ import annotations

import numpy as np

from ador.hardware.components import D2D_LATENCY_S
from ador.perf.collectives import RING, reach
from ador.ops import NUMPY, SCALAR  # noqa: F401  (re-exported: the engines' formulas take them from here)


def overlapped(compute, data, overlap, X=SCALAR):
    """Time of a kernel whose compute and data movement overlap by the runtime's ``overlap``
    fraction: the longer of the two, plus the part of the shorter one that is not hidden."""
    return X.maximum(compute, data) + (1.0 - overlap) * X.minimum(compute, data)


def stage_seconds(work_s, collective_s, comm_overlap, step_overhead_s, X=SCALAR):
    """A stage's time from its operators' times: the collectives the runtime hides under the
    stage's other work (their overlapped fraction, never more than the work there is to hide them
    under) come off, the per-step overhead goes on."""
    return work_s + collective_s - X.minimum(comm_overlap * collective_s, work_s) + step_overhead_s


def p2p_cross_fraction(tp: int, pp: int, devices_per_node: int) -> float:
    """Share of a pipeline's stage-to-stage sends that cross a node boundary (stages laid out node
    by node, as many per node as fit)."""
    if pp < 2:
        return 0.0
    if tp > devices_per_node:
        return 1.0
    per_node = max(1, devices_per_node // tp)
    return (-(-pp // per_node) - 1) / (pp - 1)


class Rates:
    """What a system's runtime makes of its device, computed once per system: achieved HBM and link
    bandwidth, the latency of one collective step, the fixed cost of one operator, the overlap
    rule. The same object (with arrays for a population) feeds every engine's formulas."""
    __slots__ = ("hbm_efficiency", "hbm_bw", "link_bw", "step_latency_s", "op_overhead_s", "overlap", "direct",
                 "kv_reads", "kv_l2", "kv_split", "dequant_per_row", "fp8_cast", "net_bw", "net_step_latency_s",
                 "p2p_cross", "d2d_bw", "d2d_step_latency_s")

    def __init__(self, *, hbm_efficiency, hbm_bw, link_bw, step_latency_s, op_overhead_s, overlap, direct,
                 kv_reads=None, kv_l2=False, kv_split=True, dequant_per_row=(), fp8_cast=False, net_bw=0.0,
                 net_step_latency_s=0.0, p2p_cross=0.0, d2d_bw=0.0, d2d_step_latency_s=0.0) -> None:
        self.hbm_efficiency = hbm_efficiency
        self.hbm_bw = hbm_bw
        self.link_bw = link_bw
        self.step_latency_s = step_latency_s
        self.op_overhead_s = op_overhead_s
        self.overlap = overlap
        self.direct = direct
        self.kv_reads = kv_reads          # (kv_group, head_dim) -> KV reads per decode step (the profile's rule)
        self.kv_l2 = kv_l2                # are those reads of one head, served by the L2 (else all from HBM)
        self.kv_split = kv_split          # does decode attention split the KV sequence over thread blocks
        self.dequant_per_row = dequant_per_row   # weight-only precisions dequantised once per activation row
        self.fp8_cast = fp8_cast          # does a kernel of its own cast each FP8 GEMM's input
        self.net_bw = net_bw              # the node-to-node tier, for pipeline sends that cross nodes
        self.net_step_latency_s = net_step_latency_s
        self.p2p_cross = p2p_cross        # share of pipeline sends that cross a node boundary
        self.d2d_bw = d2d_bw              # between the dies of one device (chiplets), achieved
        self.d2d_step_latency_s = d2d_step_latency_s


def rates_of(device, runtime, *, hbm_efficiency=None, node=None, tp: int = 1, pp: int = 1) -> Rates:
    """Rates of ``device`` (a Device, or a namespace of per-design arrays) under ``runtime``, in a
    system of ``tp`` x ``pp`` devices laid out over nodes of the ``node`` tier; ``hbm_efficiency``
    overrides the profile's lookup by memory kind (populations pass an array).

    A tensor-parallel group larger than a node runs its collectives as a ring over the slowest tier
    (the network's bandwidth and step latency); pipeline sends between nodes cross the network. The
    dies of an ADOR device reach each other over die-to-die links, at the efficiency and with the
    software synchronisation the runtime gets from any link."""
    eff = runtime.hbm(device.memory_kind) if hbm_efficiency is None else hbm_efficiency
    link_bw = device.link_bw_bytes_per_s * runtime.link_efficiency
    step_latency = device.link_latency_s + runtime.collective_latency_s
    direct = reach(device.topology)
    net_bw = net_latency = p2p_cross = 0.0
    if node is not None:
        net_bw = node.bw_bytes_per_s_per_device * runtime.link_efficiency
        net_latency = node.latency_s + runtime.collective_latency_s
        p2p_cross = p2p_cross_fraction(tp, pp, node.devices_per_node)
        if tp > node.devices_per_node:
            link_bw, step_latency, direct = np.minimum(link_bw, net_bw), net_latency, RING
    d2d_bw = device.die_to_die_bw_bytes_per_s * runtime.link_efficiency if device.kind == "ador" else 0.0
    return Rates(hbm_efficiency=eff, hbm_bw=device.hbm_bw_bytes_per_s * eff, link_bw=link_bw,
                 step_latency_s=step_latency, d2d_bw=d2d_bw,
                 d2d_step_latency_s=D2D_LATENCY_S + runtime.collective_latency_s,
                 op_overhead_s=runtime.kernel_overhead_s + runtime.kernel_overhead_cycles / device.freq_hz,
                 overlap=runtime.overlap, direct=direct, kv_reads=runtime.decode_kv_reads,
                 kv_l2=runtime.kv_rereads_from_l2,
                 kv_split=runtime.decode_kv_split, dequant_per_row=runtime.dequant_per_row,
                 fp8_cast=runtime.fp8_cast_kernel, net_bw=net_bw, net_step_latency_s=net_latency, p2p_cross=p2p_cross)


def attention_kv_bytes(op, kv_reads) -> float:
    """KV-cache bytes a fused attention moves: a decode kernel that does not share KV heads across
    their query group reads them once per query head (the one write per step is counted alike)."""
    if op.m == 1 and kv_reads is not None:
        return op.kv_bytes * kv_reads(op.kv_group, op.k)
    return op.kv_bytes
