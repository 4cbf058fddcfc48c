"""Latency of one operator on the engines of an ADOR chip.

The time of an operator is the maximum of its compute, HBM, SRAM and NoC times (engines
double-buffer, so transfers overlap compute) plus a fixed dispatch cost; the bound is whichever
term was largest.

Each formula is written once over a tiny ops namespace (``X``: maximum, minimum, where, floor):
Python's builtins for one design (the scalar hot path, ``op_time``), numpy for a population of
designs at once (``ador.perf.population``). Both paths therefore always agree.
"""
from __future__ import annotations

import math

from ador.hardware.devices import AdorChip
from ador.perf.collectives import collective_time
from ador.perf.constants import (ACCUMULATOR_BYTES, ADOR_HBM_EFFICIENCY, ADOR_LINK_EFFICIENCY,
                                 ADOR_OP_DISPATCH_CYCLES, MAC_RATE_VS_FP16, MACTREE_PIPELINE_CYCLES)
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision

SYSTOLIC = "systolic"
MACTREE = "mactree"
VECTOR_ENGINE = "vector"
DMA = "dma"

Result = tuple[float, str, str]


class _ScalarOps:
    """The ops namespace for one design: plain Python, no numpy overhead."""
    @staticmethod
    def maximum(a, b):
        return a if a > b else b

    @staticmethod
    def minimum(a, b):
        return a if a < b else b

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    floor = staticmethod(math.floor)


SCALAR = _ScalarOps()


def systolic_cycles(chip, m: int, n: int, k: int, rate: float, X=SCALAR):
    """Cycles for an m x k by k x n matmul tiled over the arrays, with fill/drain per fold.

    Weight-stationary (SCALE-Sim, Samajdar et al. 2018): each fold pins an R x C weight tile and
    streams the m rows through, costing 2R + C - 2 cycles of fill and drain plus one per row. The
    fp32 partial sums of a chunk of rows live in the array's local SRAM, so a long m is cut into
    chunks that each pay fill and drain again. Output-stationary: each fold holds an R x C output
    tile and streams k, costing k + R + C - 2 cycles.
    """
    arr = chip.systolic
    R, C = arr.rows, arr.cols
    rows_per_chunk = X.maximum(1, X.floor(arr.local_sram_bytes / 2 / (C * ACCUMULATOR_BYTES)))
    ws_folds = -(-k // R) * -(-n // C)
    ws_per_fold = -(-m // rows_per_chunk) * (2 * R + C - 2) + m
    os_folds = -(-m // R) * -(-n // C)
    os_per_fold = k + R + C - 2
    ws = arr.dataflow == "weight_stationary"
    folds = X.where(ws, ws_folds, os_folds)
    rounds = -(-folds // X.maximum(arr.count, 1))
    return rounds * X.where(ws, ws_per_fold, os_per_fold) / rate


def _matmul_traffic(chip, m, n, k, w_bytes, a_bytes, out_bytes, ab, wb, X=SCALAR):
    """HBM bytes of a blocked matmul. Activations stay on chip if input and output fit in half the
    global SRAM; otherwise the cheaper of re-reading weights per block of rows, or activations
    per block of columns, with blocks sized to half the SRAM (the other half double-buffers)."""
    half = chip.sram.capacity_bytes / 2
    rows = X.maximum(1, X.floor(half / (k * ab)))
    cols = X.maximum(1, X.floor(half / (k * wb)))
    blocked = X.minimum(w_bytes * -(-m // rows) + a_bytes, w_bytes + a_bytes * -(-n // cols)) + out_bytes
    no_reuse = w_bytes * m + a_bytes * n + out_bytes          # not even one row fits on chip
    return X.where(a_bytes + out_bytes <= half, w_bytes,
                   X.where(half < k * max(ab, wb), no_reuse, blocked))


def systolic_gemm_terms(chip, op: Op, p: Precision, X=SCALAR):
    """(compute, memory, sram, noc) seconds of a GEMM on the systolic arrays."""
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    f = chip.freq_hz
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.hidden_bytes
    hbm = _matmul_traffic(chip, op.m, op.n, op.k, op.weight_bytes, a_in, out, p.act_bytes, p.weight_bytes, X)
    # Each array pass over an N-block re-reads the input rows from global SRAM; arrays working on
    # different column blocks of the same rows share one read through NoC multicast.
    passes = X.maximum(1, -(-op.n // (chip.systolic.cols * X.maximum(chip.systolic.count, 1))))
    onchip = op.weight_bytes + a_in * passes + out
    return (systolic_cycles(chip, op.m, op.n, op.k, rate, X) / f,
            hbm / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY),
            onchip / chip.sram.bw_bytes_per_s,
            onchip / chip.noc.bw_bytes_per_s)


def mactree_gemm_terms(chip, op: Op, p: Precision, X=SCALAR):
    """GEMV-style: each tree reduces ``width`` products per cycle; weights stream from HBM once
    per group of rows whose activation vectors fit in the trees' local buffers.
    Returns (compute, memory, noc) seconds."""
    trees = chip.mactree
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    cycles = -(-(op.m * op.n) // X.maximum(trees.count, 1)) * -(-op.k // trees.width) / rate
    cycles = cycles + trees.log2_width + MACTREE_PIPELINE_CYCLES
    # every tree needs all m activation vectors (length k) to reuse a streamed weight row
    rows_fit = X.maximum(1, X.floor(trees.local_buffer_bytes / (op.k * p.act_bytes + ACCUMULATOR_BYTES)))
    weight_passes = -(-op.m // rows_fit)
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.hidden_bytes
    acts_off_chip = X.where(a_in + out <= chip.sram.capacity_bytes / 2, 0.0, a_in + out)
    hbm = op.weight_bytes * weight_passes + acts_off_chip
    onchip = op.weight_bytes * weight_passes + a_in * weight_passes + out
    return (cycles / f, hbm / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY), onchip / chip.noc.bw_bytes_per_s)


def attention_terms(chip, op: Op, p: Precision, engine: str, X=SCALAR):
    """Fused attention: QK^T and PV on a matrix engine, online softmax on the vector unit
    (pipelined with the matmuls), the KV cache streamed from HBM once per KV head.
    Returns (compute, vector, sfu, memory) seconds."""
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    # GQA: the query heads sharing a KV head form the rows of one matmul against that head's keys
    rows = op.m * op.kv_group
    macs = op.flops / 2.0
    if engine == SYSTOLIC:
        peak = chip.systolic.macs * rate
        ideal = op.k * op.n * rows / X.maximum(peak, 1)     # cycles of one head group at 100%
        actual = systolic_cycles(chip, rows, op.n, op.k, rate, X) + systolic_cycles(chip, rows, op.k, op.n, rate, X)
        utilisation = X.minimum(1.0, 2.0 * ideal / actual)
        compute = macs / (X.maximum(peak, 1) * utilisation) / f
    else:
        compute = macs / (X.maximum(chip.mactree.macs, 1) * rate) / f
    return (compute, op.vector_ops / chip.vector.lanes / f, op.sfu_ops / chip.vector.sfu_per_cycle / f,
            (op.kv_bytes + op.act_bytes) / (chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY))


def vector_terms(chip, op: Op, X=SCALAR):
    """(vector, sfu, memory) seconds; activations that fit on chip are read from SRAM (or HBM, if
    a design makes that faster)."""
    f = chip.freq_hz
    hbm_bw = chip.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY
    bw = X.where(op.act_bytes <= chip.sram.capacity_bytes / 2, X.maximum(hbm_bw, chip.sram.bw_bytes_per_s), hbm_bw)
    return (op.vector_ops / chip.vector.lanes / f, op.sfu_ops / chip.vector.sfu_per_cycle / f, op.act_bytes / bw)


def dispatch_s(chip):
    return ADOR_OP_DISPATCH_CYCLES / chip.freq_hz


def _bounded(terms, labels, chip, engine: str) -> Result:
    best = 0
    for i in range(1, len(terms)):
        if terms[i] > terms[best]:
            best = i
    return terms[best] + dispatch_s(chip), engine, labels[best]


_GEMM_SYSTOLIC = ("compute", "memory", "sram", "noc")
_GEMM_MACTREE = ("compute", "memory", "noc")
_ATTENTION = ("compute", "vector", "vector", "memory")
_VECTOR = ("vector", "vector", "memory")


def gemm_on_systolic(chip: AdorChip, op: Op, p: Precision) -> Result:
    return _bounded(systolic_gemm_terms(chip, op, p), _GEMM_SYSTOLIC, chip, SYSTOLIC)


def gemm_on_mactree(chip: AdorChip, op: Op, p: Precision) -> Result:
    return _bounded(mactree_gemm_terms(chip, op, p), _GEMM_MACTREE, chip, MACTREE)


def attention(chip: AdorChip, op: Op, p: Precision, engine: str) -> Result:
    return _bounded(attention_terms(chip, op, p, engine), _ATTENTION, chip, engine)


def vector_op(chip: AdorChip, op: Op) -> Result:
    return _bounded(vector_terms(chip, op), _VECTOR, chip, VECTOR_ENGINE)


def collective(chip: AdorChip, op: Op, tp: int) -> Result:
    return collective_time(op, tp, chip.links.bw_bytes_per_s * ADOR_LINK_EFFICIENCY, chip.links.latency_s,
                           chip.links.topology, dispatch_s(chip))


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
        return t + dispatch_s(chip), DMA, "memory"
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective(chip, op, tp)
    raise ValueError(f"unknown operator kind {kind!r}")


__all__ = ["SYSTOLIC", "MACTREE", "op_time", "systolic_cycles", "SCALAR"]
