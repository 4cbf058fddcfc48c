"""Latency of one operator on the engines of an ADOR chip.

An operator's compute time (matrix engine, vector unit) and data-movement time (HBM, global SRAM,
NoC: the largest of them) overlap by the runtime's rule, and it pays the runtime's fixed cost per
operator (``ador.perf.rules``, the same rules a GPU is priced by); the bound is whichever term was
largest.

Each formula is written once over a tiny ops namespace (``X``: maximum, minimum, where, floor):
Python's builtins for one design (the scalar hot path, ``op_time``), numpy for a population of
designs at once (``ador.perf.population``). Both paths therefore always agree.
"""
from __future__ import annotations

from ador.hardware.devices import AdorChip
from ador.perf.collectives import D2D, collective_op_seconds, collective_time, die_collective_seconds
from ador.perf.constants import ACCUMULATOR_BYTES, MAC_RATE_VS_FP16, MACTREE_PIPELINE_CYCLES
from ador.perf.rules import SCALAR, Rates, attention_kv_bytes, overlapped
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, DIE_COLLECTIVES, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision

SYSTOLIC = "systolic"
MACTREE = "mactree"
VECTOR_ENGINE = "vector"
DMA = "dma"

Result = tuple[float, str, str]


def systolic_cycles(chip, m: int, n: int, k: int, rate: float, X=SCALAR, problems: float = 1):
    """Cycles for ``problems`` independent m x k by k x n matmuls tiled over the arrays, with
    fill/drain per fold; the folds of all problems share the arrays.

    Weight-stationary (SCALE-Sim, Samajdar et al. 2018): each fold pins an R x C weight tile and
    streams the m rows through, costing 2R + C - 2 cycles of fill and drain plus one per row. The
    fp32 partial sums of a chunk of rows live in the array's local SRAM, so a long m is cut into
    chunks that each pay fill and drain again. Output-stationary: each fold holds an R x C output
    tile and streams k, costing k + R + C - 2 cycles.
    """
    arr = chip.systolic
    R, C = arr.rows, arr.cols
    rows_per_chunk = X.maximum(1, X.floor(arr.local_sram_bytes / 2 / (C * ACCUMULATOR_BYTES)))
    ws_folds = X.ceil_div(k, R) * X.ceil_div(n, C)
    ws_per_fold = X.ceil_div(m, rows_per_chunk) * (2 * R + C - 2) + m
    os_folds = X.ceil_div(m, R) * X.ceil_div(n, C)
    os_per_fold = k + R + C - 2
    ws = arr.dataflow == "weight_stationary"
    folds = X.where(ws, ws_folds, os_folds) * problems
    rounds = X.ceil_div(folds, X.maximum(arr.count, 1))
    return rounds * X.where(ws, ws_per_fold, os_per_fold) / rate


def _matmul_traffic(chip, m, n, k, w_bytes, a_bytes, out_bytes, ab, wb, X=SCALAR):
    """HBM bytes of a blocked matmul. Activations stay on chip if input and output fit in half the
    global SRAM; otherwise the cheaper of re-reading weights per block of rows, or activations
    per block of columns, with blocks sized to half the SRAM (the other half double-buffers)."""
    half = chip.sram.capacity_bytes / 2
    rows = X.maximum(1, X.floor(half / (k * ab)))
    cols = X.maximum(1, X.floor(half / (k * wb)))
    blocked = X.minimum(w_bytes * X.ceil_div(m, rows) + a_bytes, w_bytes + a_bytes * X.ceil_div(n, cols)) + out_bytes
    no_reuse = w_bytes * m + a_bytes * n + out_bytes          # not even one row fits on chip
    return X.where(a_bytes + out_bytes <= half, w_bytes,
                   X.where(half < k * max(ab, wb), no_reuse, blocked))


def systolic_gemm_terms(chip, op: Op, p: Precision, r: Rates, X=SCALAR):
    """(compute, memory, sram, noc) seconds of a GEMM on the systolic arrays."""
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    f = chip.freq_hz
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.hidden_bytes
    hbm = _matmul_traffic(chip, op.m, op.n, op.k, op.weight_bytes, a_in, out, p.act_bytes, p.weight_bytes, X)
    # Each array pass over an N-block re-reads the input rows from global SRAM; arrays working on
    # different column blocks of the same rows share one read through NoC multicast.
    passes = X.maximum(1, X.ceil_div(op.n, chip.systolic.cols * X.maximum(chip.systolic.count, 1)))
    onchip = op.weight_bytes + a_in * passes + out
    return (systolic_cycles(chip, op.m, op.n, op.k, rate, X) / (f * chip.matrix_efficiency),
            hbm / r.hbm_bw,
            onchip / chip.sram.bw_bytes_per_s,
            onchip / chip.noc.bw_bytes_per_s)


def mactree_dot_cycles(trees, outputs, length, X=SCALAR):
    """Cycles for ``outputs`` dot products of ``length`` products each over the MAC trees: each tree
    reduces one dot product at a time, ``width`` products a cycle (fill of the adder tree not included)."""
    return X.ceil_div(outputs, X.maximum(trees.count, 1)) * X.ceil_div(length, trees.width)


def mactree_gemm_terms(chip, op: Op, p: Precision, r: Rates, X=SCALAR):
    """GEMV-style: each tree reduces ``width`` products per cycle; weights stream from HBM once per
    group of rows whose activation vectors fit in the buffer the trees read them from (the shared
    operand buffer, or each tree's private buffer). Returns (compute, memory, noc) seconds."""
    trees = chip.mactree
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.compute_dtype]
    cycles = mactree_dot_cycles(trees, op.m * op.n, op.k, X) / rate
    cycles = cycles + trees.log2_width + MACTREE_PIPELINE_CYCLES
    # a streamed weight row is reused against every activation vector (length k) in the buffer
    rows_fit = X.maximum(1, X.floor(trees.activation_buffer_bytes / (op.k * p.act_bytes + ACCUMULATOR_BYTES)))
    weight_passes = X.ceil_div(op.m, rows_fit)
    a_in = op.m * op.k * p.act_bytes
    out = op.m * op.n * p.hidden_bytes
    acts_off_chip = X.where(a_in + out <= chip.sram.capacity_bytes / 2, 0.0, a_in + out)
    hbm = op.weight_bytes * weight_passes + acts_off_chip
    onchip = op.weight_bytes * weight_passes + a_in * weight_passes + out
    return (cycles / (f * chip.matrix_efficiency), hbm / r.hbm_bw, onchip / chip.noc.bw_bytes_per_s)


def attention_terms(chip, op: Op, p: Precision, engine: str, r: Rates, X=SCALAR):
    """Fused attention: QK^T and PV on a matrix engine, online softmax on the vector unit
    (pipelined with the matmuls), the KV cache streamed from HBM once per KV head.
    Returns (compute, vector, sfu, memory) seconds."""
    f = chip.freq_hz
    rate = MAC_RATE_VS_FP16[p.mac_dtype(attention=True)]
    # GQA: the query heads sharing a KV head form the rows of one matmul against that head's keys;
    # every (request, KV head) pair is an independent problem the arrays share
    rows = op.m * op.kv_group
    problems = op.groups / op.kv_group
    macs = op.flops / 2.0
    if engine == SYSTOLIC:
        peak = chip.systolic.macs * rate
        ideal = problems * op.k * op.n * rows / X.maximum(peak, 1)     # cycles at 100% of the arrays
        actual = (systolic_cycles(chip, rows, op.n, op.k, rate, X, problems)
                  + systolic_cycles(chip, rows, op.k, op.n, rate, X, problems))
        utilisation = X.minimum(1.0, 2.0 * ideal / actual)
        compute = macs / (X.maximum(peak, 1) * utilisation) / (f * chip.matrix_efficiency)
    else:
        # by the MAC trees' GEMM rule: each tree reduces one dot product at a time, ``width`` products a
        # cycle, so QK^T (dot products over the head dimension) uses only k/width of a wider tree
        trees = chip.mactree
        cycles = (mactree_dot_cycles(trees, problems * rows * op.n, op.k, X)      # QK^T
                  + mactree_dot_cycles(trees, problems * rows * op.k, op.n, X)) / rate    # PV
        compute = (cycles + trees.log2_width + MACTREE_PIPELINE_CYCLES) / (f * chip.matrix_efficiency)
    return (compute, op.vector_ops / chip.vector.lanes / f, op.sfu_ops / chip.vector.sfu_per_cycle / f,
            (attention_kv_bytes(op, r.kv_reads) + op.act_bytes) / r.hbm_bw)


def vector_terms(chip, op: Op, r: Rates, X=SCALAR):
    """(vector, sfu, memory) seconds; activations that fit on chip are read from SRAM (or HBM, if
    a design makes that faster)."""
    f = chip.freq_hz
    hbm_bw = r.hbm_bw
    bw = X.where(op.act_bytes <= chip.sram.capacity_bytes / 2, X.maximum(hbm_bw, chip.sram.bw_bytes_per_s), hbm_bw)
    return (op.vector_ops / chip.vector.lanes / f, op.sfu_ops / chip.vector.sfu_per_cycle / f, op.act_bytes / bw)


# How many leading terms of each formula are compute (matrix engine, vector unit, SFU: pipelined on
# chip); the rest are data movement (HBM, global SRAM, NoC).
_GEMM_SYSTOLIC = (("compute", "memory", "sram", "noc"), 1)
_GEMM_MACTREE = (("compute", "memory", "noc"), 1)
_ATTENTION = (("compute", "vector", "vector", "memory"), 3)
_VECTOR = (("vector", "vector", "memory"), 2)


def seconds(terms, n_compute: int, r: Rates, X=SCALAR):
    """An operator's time from its terms by the runtime's overlap rule, plus its fixed cost."""
    compute = terms[0]
    for t in terms[1:n_compute]:
        compute = X.maximum(compute, t)
    data = terms[n_compute]
    for t in terms[n_compute + 1:]:
        data = X.maximum(data, t)
    return overlapped(compute, data, r.overlap, X) + r.op_overhead_s


def _bounded(terms, shape, r: Rates, engine: str) -> Result:
    labels, n_compute = shape
    best = 0
    for i in range(1, len(terms)):
        if terms[i] > terms[best]:
            best = i
    return seconds(terms, n_compute, r), engine, labels[best]


def gemm_on_systolic(chip: AdorChip, op: Op, p: Precision, r: Rates) -> Result:
    return _bounded(systolic_gemm_terms(chip, op, p, r), _GEMM_SYSTOLIC, r, SYSTOLIC)


def gemm_on_mactree(chip: AdorChip, op: Op, p: Precision, r: Rates) -> Result:
    return _bounded(mactree_gemm_terms(chip, op, p, r), _GEMM_MACTREE, r, MACTREE)


def attention(chip: AdorChip, op: Op, p: Precision, engine: str, r: Rates) -> Result:
    return _bounded(attention_terms(chip, op, p, engine, r), _ATTENTION, r, engine)


def vector_op(chip: AdorChip, op: Op, r: Rates) -> Result:
    return _bounded(vector_terms(chip, op, r), _VECTOR, r, VECTOR_ENGINE)


def matrix_seconds(chip, op: Op, p: Precision, engine: str, r: Rates, X=SCALAR):
    """Time of one instance of a GEMM or an attention operator on ``engine``."""
    if op.kind == GEMM:
        terms = systolic_gemm_terms(chip, op, p, r, X) if engine == SYSTOLIC else mactree_gemm_terms(chip, op, p, r, X)
        return seconds(terms, 1, r, X)
    return seconds(attention_terms(chip, op, p, engine, r, X), 3, r, X)


def op_seconds(chip, op: Op, p: Precision, tp: int, r: Rates, X=SCALAR):
    """Time of one instance of ``op``, matrix work on the faster engine the chip has. The one
    definition of an operator's time: one design runs it on numbers (``SCALAR``), a population on
    arrays with one value per design (``NUMPY``); ``op_time`` adds the engine and the bound."""
    kind = op.kind
    if kind == GEMM or kind == ATTENTION:
        s = X.where(chip.systolic.count > 0, matrix_seconds(chip, op, p, SYSTOLIC, r, X), _ABSENT)
        m = X.where(chip.mactree.count > 0, matrix_seconds(chip, op, p, MACTREE, r, X), _ABSENT)
        return X.minimum(s, m)
    if kind == VECTOR:
        return seconds(vector_terms(chip, op, r, X), 2, r, X)
    if kind == MEMORY:
        return op.act_bytes / r.hbm_bw + r.op_overhead_s
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_op_seconds(op, tp, r, X)
    if kind in DIE_COLLECTIVES:
        return die_collective_seconds(op, chip.dies, tp, r, X)
    raise ValueError(f"unknown operator kind {kind!r}")


_ABSENT = float("inf")     # the time of an engine the chip does not have


def op_time(chip: AdorChip, op: Op, p: Precision, tp: int, r: Rates, engine: str | None = None) -> Result:
    """Latency of ``op`` with the engine that ran it and the bound it hit (the per-operator
    breakdown); matrix work goes to ``engine`` if given, else to the faster engine. The time is
    ``op_seconds``'s; only an engine forced by a serving policy changes it."""
    kind = op.kind
    if kind == GEMM or kind == ATTENTION:
        candidates = [e for e, present in ((SYSTOLIC, chip.systolic.count), (MACTREE, chip.mactree.count))
                      if present]
        if engine in candidates:
            candidates = [engine]
        best: Result | None = None
        for eng in candidates:
            if kind == GEMM:
                res = gemm_on_systolic(chip, op, p, r) if eng == SYSTOLIC else gemm_on_mactree(chip, op, p, r)
            else:
                res = attention(chip, op, p, eng, r)
            if best is None or res[0] < best[0]:
                best = res
        return best  # type: ignore[return-value]
    if kind == VECTOR:
        return vector_op(chip, op, r)
    if kind == MEMORY:
        return op_seconds(chip, op, p, tp, r), DMA, "memory"
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_time(op, tp, r)
    if kind in DIE_COLLECTIVES:
        return die_collective_seconds(op, chip.dies, tp, r), D2D, D2D
    raise ValueError(f"unknown operator kind {kind!r}")


__all__ = ["SYSTOLIC", "MACTREE", "op_seconds", "op_time", "systolic_cycles", "seconds"]
