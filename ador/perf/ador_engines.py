"""Latency of one operator on the engines of an ADOR chip.

Each function returns (seconds, engine, bound). The time of an operator is the maximum of its
compute, HBM, SRAM and NoC times (engines double-buffer, so transfers overlap compute) plus a
fixed dispatch cost; the bound is whichever term was largest.
"""
from __future__ import annotations

import math

from ador.hardware.devices import AdorChip
from ador.perf.constants import (ACCUMULATOR_BYTES, ADOR_HBM_EFFICIENCY, ADOR_LINK_EFFICIENCY,
                                 ADOR_OP_DISPATCH_CYCLES, MAC_RATE_VS_FP16, MACTREE_PIPELINE_CYCLES)
from ador.perf.collectives import LINK, collective_time
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision

SYSTOLIC = "systolic"
MACTREE = "mactree"
VECTOR_ENGINE = "vector"
DMA = "dma"

Result = tuple[float, str, str]


def systolic_cycles(chip: AdorChip, m: int, n: int, k: int, rate: float) -> float:
    """Cycles for an m x k by k x n matmul tiled over the arrays, with fill/drain per fold.

    Weight-stationary (SCALE-Sim, Samajdar et al. 2018): each fold pins an R x C weight tile and
    streams the m rows through, costing 2R + C - 2 cycles of fill and drain plus one per row. The
    fp32 partial sums of a chunk of rows live in the array's local SRAM, so a long m is cut into
    chunks that each pay fill and drain again. Output-stationary: each fold holds an R x C output
    tile and streams k, costing k + R + C - 2 cycles.
    """
    arr = chip.systolic
    R, C = arr.rows, arr.cols
    if arr.dataflow == "weight_stationary":
        folds = -(-k // R) * -(-n // C)
        rows_per_chunk = max(1, int(arr.local_sram_bytes // 2 // (C * ACCUMULATOR_BYTES)))
        chunks = -(-m // rows_per_chunk)
        per_fold = chunks * (2 * R + C - 2) + m
    else:
        folds = -(-m // R) * -(-n // C)
        per_fold = k + R + C - 2
    rounds = -(-folds // arr.count)
    return rounds * per_fold / rate


def _matmul_traffic(chip: AdorChip, m: int, n: int, k: int, w_bytes: float, a_bytes: float,
                    out_bytes: float, ab: float, wb: float) -> float:
    """HBM bytes of a blocked matmul. Activations stay on chip if input and output fit in half the
    global SRAM; otherwise the cheaper of re-reading weights per block of rows, or activations
    per block of columns, with blocks sized to half the SRAM (the other half double-buffers)."""
    half = chip.sram.capacity_bytes / 2
    if a_bytes + out_bytes <= half:
        return w_bytes
    if half < k * max(ab, wb):
        return w_bytes * m + a_bytes * n + out_bytes   # not even one row fits: no reuse
    rows = max(1, int(half // (k * ab)))
    cols = max(1, int(half // (k * wb)))
    return min(w_bytes * -(-m // rows) + a_bytes, w_bytes + a_bytes * -(-n // cols)) + out_bytes


def _bounded(terms: tuple[tuple[float, str], ...], dispatch_s: float, engine: str) -> Result:
    time, bound = max(terms)
    return time + dispatch_s, engine, bound


def gemm_on_systolic(chip: AdorChip, op: Op, p: Precision) -> Result:
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    f = chip.freq_hz
    compute = systolic_cycles(chip, op.m, op.n, op.k, rate) / f
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.act_bytes
    hbm = _matmul_traffic(chip, op.m, op.n, op.k, op.weight_bytes, a_in, out, p.act_bytes, p.weight_bytes)
    # Each array pass over an N-block re-reads the input rows from global SRAM; arrays working on
    # different column blocks of the same rows share one read through NoC multicast.
    passes = max(1, -(-op.n // (chip.systolic.cols * chip.systolic.count)))
    onchip = op.weight_bytes + a_in * passes + out
    return _bounded(((compute, "compute"),
                     (hbm / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY), "memory"),
                     (onchip / chip.sram.bw_bytes_per_s, "sram"),
                     (onchip / chip.noc.bw_bytes_per_s, "noc")),
                    ADOR_OP_DISPATCH_CYCLES / f, SYSTOLIC)


def gemm_on_mactree(chip: AdorChip, op: Op, p: Precision) -> Result:
    """GEMV-style: each tree reduces ``width`` products per cycle; weights stream from HBM once
    per group of rows whose activation vectors fit in the trees' local buffers."""
    trees = chip.mactree
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    outputs = op.m * op.n
    cycles = -(-outputs // trees.count) * -(-op.k // trees.width) / rate
    cycles += math.log2(trees.width) + MACTREE_PIPELINE_CYCLES
    # every tree needs all m activation vectors (length k) to reuse a streamed weight row
    rows_fit = max(1, int(trees.local_buffer_bytes // (op.k * p.act_bytes + ACCUMULATOR_BYTES)))
    weight_passes = -(-op.m // rows_fit)
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.act_bytes
    acts_on_chip = a_in + out <= chip.sram.capacity_bytes / 2
    hbm = op.weight_bytes * weight_passes + (0.0 if acts_on_chip else a_in + out)
    onchip = op.weight_bytes * weight_passes + a_in * weight_passes + out
    return _bounded(((cycles / f, "compute"),
                     (hbm / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY), "memory"),
                     (onchip / chip.noc.bw_bytes_per_s, "noc")),
                    ADOR_OP_DISPATCH_CYCLES / f, MACTREE)


def attention(chip: AdorChip, op: Op, p: Precision, engine: str) -> Result:
    """Fused attention: QK^T and PV on a matrix engine, online softmax on the vector unit
    (pipelined with the matmuls), the KV cache streamed from HBM once per KV head."""
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    # GQA: the query heads sharing a KV head form the rows of one matmul against that head's keys
    rows = op.m * op.kv_group
    macs = op.flops / 2.0
    if engine == SYSTOLIC:
        ideal = op.k * op.n * rows / (chip.systolic.macs * rate)   # cycles of one head group at 100%
        actual = systolic_cycles(chip, rows, op.n, op.k, rate) + systolic_cycles(chip, rows, op.k, op.n, rate)
        utilisation = min(1.0, 2.0 * ideal / actual) if actual else 1.0
        compute = macs / (chip.systolic.macs * rate * utilisation) / f
    else:
        compute = macs / (chip.mactree.macs * rate) / f
    vec = op.vector_ops / chip.vector.lanes / f
    sfu = op.sfu_ops / chip.vector.sfu_per_cycle / f
    hbm = (op.kv_bytes + op.act_bytes) / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY)
    return _bounded(((compute, "compute"), (vec, "vector"), (sfu, "vector"), (hbm, "memory")),
                    ADOR_OP_DISPATCH_CYCLES / f, engine)


def vector_op(chip: AdorChip, op: Op) -> Result:
    f = chip.freq_hz
    # activations that fit on chip are read from SRAM (or HBM, if a design makes that faster)
    bw = chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY
    if op.act_bytes <= chip.sram.capacity_bytes / 2:
        bw = max(bw, chip.sram.bw_bytes_per_s)
    return _bounded(((op.vector_ops / chip.vector.lanes / f, "vector"),
                     (op.sfu_ops / chip.vector.sfu_per_cycle / f, "vector"),
                     (op.act_bytes / bw, "memory")),
                    ADOR_OP_DISPATCH_CYCLES / f, VECTOR_ENGINE)


def collective(chip: AdorChip, op: Op, tp: int) -> Result:
    return collective_time(op, tp, chip.links.bw_bytes_per_s * ADOR_LINK_EFFICIENCY, chip.links.latency_s,
                           chip.links.topology, ADOR_OP_DISPATCH_CYCLES / chip.freq_hz)


def op_time(chip: AdorChip, op: Op, p: Precision, tp: int, engine: str | None = None) -> Result:
    """Latency of ``op``; matrix work goes to ``engine`` if given, else to the faster engine."""
    kind = op.kind
    if kind == GEMM or kind == ATTENTION:
        candidates = [e for e, present in ((SYSTOLIC, chip.systolic.count), (MACTREE, chip.mactree.count))
                      if present]
        if engine in candidates:
            candidates = [engine]
        best: Result | None = None
        for eng in candidates:
            if kind == GEMM:
                r = gemm_on_systolic(chip, op, p) if eng == SYSTOLIC else gemm_on_mactree(chip, op, p)
            else:
                r = attention(chip, op, p, eng)
            if best is None or r[0] < best[0]:
                best = r
        return best  # type: ignore[return-value]
    if kind == VECTOR:
        return vector_op(chip, op)
    if kind == MEMORY:
        t = op.act_bytes / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY)
        return t + ADOR_OP_DISPATCH_CYCLES / chip.freq_hz, DMA, "memory"
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective(chip, op, tp)
    raise ValueError(f"unknown operator kind {kind!r}")
