"""Latency of one operator on a GPU: roofline with tile/wave quantisation and calibrated efficiencies.

Each function returns (seconds, engine, bound). Matrix work runs on the tensor cores at the die's
fitted fraction of the dense peak, further reduced by the fraction of the SMs the kernel's
thread-block tiles keep busy; memory work streams at the runtime's achieved HBM bandwidth; compute
and memory overlap and each kernel pays a fixed cost by the runtime's rules (``ador.perf.rules``),
the same rules an ADOR design is priced by.
"""
from __future__ import annotations

from ador.errors import ConfigError
from ador.hardware.devices import GpuSpec
from ador.perf.collectives import collective_time
from ador.perf.constants import (GPU_ATTN_BLOCK_M, GPU_DECODE_ATTN_BLOCK_BYTES_PER_S, GPU_DECODE_ATTN_ROWS,
                                 GPU_SPLIT_K_MIN, GPU_TILE_M_OPTIONS, GPU_TILE_N, GPU_WEIGHT_ONLY_ROWS)
from ador.perf.rules import SCALAR, Rates, attention_kv_bytes, overlapped
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision

TENSOR = "tensor_core"
SIMT = "cuda_core"

Result = tuple[float, str, str]


def tensor_efficiency(gpu: GpuSpec, p: Precision, *, attention: bool = False) -> float:
    """The die's fitted fraction of the dense tensor peak for the MAC datatype of the precision's
    linear layers, or of its attention (``Precision.mac_dtype``)."""
    eff = gpu.efficiency
    return eff.tensor_fp8 if p.mac_dtype(attention=attention) == "fp8" else eff.tensor


def single_tensor_efficiency(gpu: GpuSpec, p: Precision) -> float:
    """The die's one fitted fraction of peak for a precision whose MACs all share one datatype: what
    an ADOR design's single ``matrix_efficiency`` can be set equal to (``iso.matrix_efficiency``)."""
    if p.mac_dtype(attention=True) != p.mac_dtype(attention=False):
        raise ConfigError("precision", p.name, "its attention and its linear layers multiply in different "
                                               "datatypes, so no one matrix efficiency of a design equals the "
                                               "GPU's (iso.matrix_efficiency: equal, the fairness ladder's "
                                               "matrix step): use a precision whose MACs share one datatype")
    return tensor_efficiency(gpu, p)


def dense_peak(gpu: GpuSpec, p: Precision, *, attention: bool = False) -> float:
    """Dense tensor FLOP/s for the MAC datatype of the precision's linear layers or attention (datasheet)."""
    dtype = p.mac_dtype(attention=attention)
    peak = gpu.peak_flops(dtype)
    if peak <= 0:
        raise ConfigError("precision", p.name, f"{gpu.name} has no {dtype} tensor cores")
    return peak


def output_tiles(m: int, n: int, tile_m: int = GPU_TILE_M_OPTIONS[-1], tile_n: int = GPU_TILE_N
                 ) -> tuple[int, float]:
    """The thread-block tiles of an m x n output in tiles of ``tile_m`` x ``tile_n`` (a shorter tile
    height, the libraries' pick, when m is shorter) and the fraction of their MACs that is useful
    (padding of m and n to whole tiles)."""
    if m < tile_m:
        tile_m = next((t for t in GPU_TILE_M_OPTIONS if t >= m), tile_m)
    tiles = -(-m // tile_m) * -(-n // tile_n)
    return tiles, (m * n) / (tiles * tile_m * tile_n)


def whole_waves(blocks: int, sm_count: int, useful: float = 1.0) -> float:
    """Fraction of the SMs' work that is useful while ``blocks`` equal thread blocks, ``useful`` of
    each block's work useful, run in whole waves (the last partial wave idles the rest)."""
    return useful * blocks / (-(-blocks // sm_count) * sm_count)


def split_within_wave(tiles: int, chunks: int, sm_count: int) -> int:
    """Thread blocks of ``tiles`` output tiles when split-K fills the SMs within one wave, each tile
    split at most ``chunks`` ways (no split once the tiles fill a wave)."""
    return tiles * (max(1, min(sm_count // tiles, chunks)) if tiles < sm_count else 1)


def tile_utilisation(gpu: GpuSpec, m: int, n: int, k: int) -> float:
    """Fraction of tensor-core work that is useful: padding of m and n to whole tiles, and the SMs
    left idle. On a GPU whose GEMMs run in whole waves (``gemm_schedule: waves``) the last partial
    wave of thread blocks idles the rest (split-K fills the SMs when tiles are few, within one wave);
    stream-K kernels share all tiles' K iterations evenly over the SMs, split no finer than
    ``GPU_SPLIT_K_MIN`` along K, so only a GEMM with fewer such chunks than SMs leaves some idle."""
    tiles, padding = output_tiles(m, n)
    chunks = max(1, k // GPU_SPLIT_K_MIN)
    if gpu.gemm_schedule == "stream-k":
        return padding * min(1.0, tiles * chunks / gpu.sm_count)
    return whole_waves(split_within_wave(tiles, chunks, gpu.sm_count), gpu.sm_count, padding)


def attention_blocks(op: Op) -> tuple[float, int]:
    """A prefill attention's thread blocks, one per ``GPU_ATTN_BLOCK_M`` query rows of a head, and
    the fraction of their rows that is real (the last block of each head padded)."""
    per_head = -(-op.m // GPU_ATTN_BLOCK_M)
    return op.m / (per_head * GPU_ATTN_BLOCK_M), op.groups * per_head


def prefill_attention_fill(gpu: GpuSpec, op: Op) -> float:
    """Fraction of the tensor peak a prefill attention's blocks keep busy (``attention_blocks``) in
    whole waves over the SMs. Causal blocks differ in work; a sweep on Hopper
    (``ador.validation.attention``) found a rule that says so closer to FlashAttention-2 and cuDNN,
    but the public rows fit no better with it (docs/validation.md)."""
    block_fill, blocks = attention_blocks(op)
    return whole_waves(blocks, gpu.sm_count, block_fill)


def l2_floor(gpu: GpuSpec, op: Op, kv_reads, kv_l2: bool) -> float:
    """The least time a decode attention's reads of its KV heads, once per query head, take through
    the L2 (``RuntimeProfile.kv_rereads_from_l2``, on a GPU with an L2 bandwidth figure); 0 where
    they come from DRAM or the kernel shares each head across its query group."""
    if not (kv_l2 and gpu.l2_bw_bytes_per_s and op.m == 1 and kv_reads is not None
            and kv_reads(op.kv_group, op.k) > 1):
        return 0.0
    return attention_kv_bytes(op, kv_reads) / gpu.l2_bw_bytes_per_s


def op_terms(gpu: GpuSpec, op: Op, p: Precision, kv_reads=None, kv_split: bool = True,
             dequant_per_row: tuple[str, ...] = (), kv_l2: bool = False,
             fp8_cast: bool = False) -> tuple[float, float, float, float, float]:
    """Seconds of a non-collective operator at full efficiency: (tensor-core compute at the dense
    peak after tile and wave quantisation, HBM traffic at peak bandwidth, weight dequantisation at
    the SIMT peak, and the least time its data takes at the parallelism the kernel has or through
    the last-level cache: nonzero only for decode attention under a runtime whose kernel does not
    split the KV sequence, or reads a KV head once per query head through the L2, ``l2_floor``).
    A weight-only GEMM converts each weight once per block of ``GPU_WEIGHT_ONLY_ROWS`` activation
    rows, or once per row under a kernel that re-dequantises for every row (``dequant_per_row``, a
    fact of the runtime's kernels). The fifth term is the HBM traffic at peak bandwidth of a kernel of
    its own that casts an FP8 GEMM's 16-bit input to FP8 under a runtime that does not fuse the cast
    into the kernel before (``fp8_cast``); 0 where there is none.
    Physics only; ``combine`` applies the fitted efficiencies and the runtime."""
    kind = op.kind
    if kind == GEMM:
        compute = op.flops / (dense_peak(gpu, p) * tile_utilisation(gpu, op.m, op.n, op.k))
        memory = (op.weight_bytes + op.act_bytes) / gpu.hbm_bw_bytes_per_s
        # weight-only formats convert every weight on the CUDA cores on its way to the MMA
        # (only weights stored narrower than the 16-bit MAC operands: an LM head the precision keeps
        # in 16-bit, or a tied one, the embedding table, streams as it is)
        passes = op.m if p.name in dequant_per_row else -(-op.m // GPU_WEIGHT_ONLY_ROWS)
        quantised = 0 < op.weight_bytes < op.k * op.n * 2.0
        converted = p.weight_only and quantised
        dequant = op.k * op.n * passes * p.dequant_ops_per_weight / gpu.simt_flops_per_s if converted else 0.0
        # an unfused cast reads the input as the kernel before wrote it (16-bit) and writes it in FP8; the
        # quantised linear layers only (an LM head kept in 16-bit multiplies its input as it is)
        cast = 0.0
        if fp8_cast and quantised and p.mac_dtype(attention=False) == "fp8":
            cast = op.m * op.k * (p.hidden_bytes + p.act_bytes) / gpu.hbm_bw_bytes_per_s
        return compute, memory, dequant, 0.0, cast
    if kind == ATTENTION:
        # FlashAttention-style fused kernel; decode (one query per head) streams the KV cache
        kv_bytes = attention_kv_bytes(op, kv_reads)      # every read, re-reads of a KV head included
        dram_kv_bytes = kv_bytes
        floor = 0.0
        if op.m == 1:
            # the query heads sharing a KV head are the rows of one MMA tile; KV splits fill the SMs
            rows = op.kv_group
            fill = rows / (-(-rows // GPU_DECODE_ATTN_ROWS) * GPU_DECODE_ATTN_ROWS)
            reads = kv_reads(op.kv_group, op.k) if kv_reads is not None else 1
            if not kv_split:
                # one thread block per (sequence, KV head) and per read of that head (a kernel that
                # does not share it reads it once per query head), each streaming at what one block
                # on one SM reaches
                blocks = op.groups // op.kv_group * reads
                floor = kv_bytes / (min(blocks, gpu.sm_count) * GPU_DECODE_ATTN_BLOCK_BYTES_PER_S)
            l2 = l2_floor(gpu, op, kv_reads, kv_l2)
            if l2:
                # a query group's thread blocks read one KV head together: DRAM serves it once, the
                # last-level cache every read (without a cache figure, all of them come from DRAM)
                dram_kv_bytes = op.kv_bytes
                floor = max(floor, l2)
        else:
            fill = prefill_attention_fill(gpu, op)
        memory = (dram_kv_bytes + op.act_bytes) / gpu.hbm_bw_bytes_per_s
        return op.flops / (dense_peak(gpu, p, attention=True) * fill), memory, 0.0, floor, 0.0
    if kind == VECTOR or kind == MEMORY:
        # elementwise kernels stream their operands through HBM between kernels
        return 0.0, op.act_bytes / gpu.hbm_bw_bytes_per_s, 0.0, 0.0, 0.0
    raise ValueError(f"operator kind {kind!r} has no compute/memory terms")


def combine(compute, memory, dequant, tensor_eff, hbm_eff, dequant_eff, overlap, overhead_s, X=SCALAR, *,
            memory_floor=0.0, cast=0.0):
    """A kernel's time from its full-efficiency terms: compute and memory overlap by the runtime's
    rule (``ador.perf.rules.overlapped``, the rule designs follow too), dequantisation and the fixed
    cost per kernel add on; the data takes at least ``memory_floor`` (the kernel's parallelism, or the
    L2's bandwidth for a kernel that re-reads KV heads). An unfused input cast (``cast``: its traffic at
    peak bandwidth) is a kernel of its own before: its traffic at the achieved bandwidth and one more
    fixed cost.
    Works on numbers or on arrays (calibration prices every row at once)."""
    data = X.maximum(memory / hbm_eff, memory_floor)
    return (overlapped(compute / tensor_eff, data, overlap, X) + dequant / dequant_eff + overhead_s
            + cast / hbm_eff + (cast > 0) * overhead_s)


def op_time(gpu: GpuSpec, op: Op, p: Precision, tp: int, r: Rates, engine: str | None = None) -> Result:
    kind = op.kind
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_time(op, tp, r)
    compute, memory, dequant, floor, cast = op_terms(gpu, op, p, r.kv_reads, r.kv_split, r.dequant_per_row, r.kv_l2,
                                                     r.fp8_cast)
    eff = tensor_efficiency(gpu, p, attention=kind == ATTENTION) if compute else 1.0
    t = combine(compute, memory, dequant, eff, r.hbm_efficiency, gpu.efficiency.dequant, r.overlap, r.op_overhead_s,
                memory_floor=floor, cast=cast)
    if kind == VECTOR or kind == MEMORY:
        return t, SIMT, "memory"
    streamed = memory / r.hbm_efficiency
    if compute / eff >= max(streamed, floor):
        return t, TENSOR, "compute"
    if floor <= streamed:
        return t, TENSOR, "memory"
    # decode attention whose kernel re-reads KV heads through the L2, or has too few thread blocks to
    # stream the KV cache at HBM bandwidth: whichever floor is the larger
    return t, TENSOR, "l2" if floor == l2_floor(gpu, op, r.kv_reads, r.kv_l2) else "parallelism"
