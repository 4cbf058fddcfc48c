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
from ador.perf.constants import (GPU_ATTN_BLOCK_M, GPU_DECODE_ATTN_ROWS, GPU_SPLIT_K_MIN, GPU_TILE_M_OPTIONS,
                                 GPU_TILE_N)
from ador.perf.rules import Rates, overlapped
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision

TENSOR = "tensor_core"
SIMT = "cuda_core"

Result = tuple[float, str, str]


def peak_for(gpu: GpuSpec, p: Precision) -> float:
    """Achievable dense tensor FLOP/s for the precision's MAC datatype."""
    peak = gpu.peak_flops(p.compute_dtype)
    if peak <= 0:
        raise ConfigError("precision", p.name, f"{gpu.name} has no {p.compute_dtype} tensor cores")
    eff = gpu.efficiency
    return peak * (eff.tensor_fp8 if p.compute_dtype == "fp8" else eff.tensor)


def tile_utilisation(gpu: GpuSpec, m: int, n: int, k: int) -> float:
    """Fraction of tensor-core work that is useful: padding of m and n to whole tiles, and the
    last partial wave of thread blocks over the SMs (split-K fills the SMs when tiles are few)."""
    tile_m = next((t for t in GPU_TILE_M_OPTIONS if t >= m), GPU_TILE_M_OPTIONS[-1])
    tiles = -(-m // tile_m) * -(-n // GPU_TILE_N)
    padding = (m * n) / (tiles * tile_m * GPU_TILE_N)
    split = max(1, min(gpu.sm_count // tiles, k // GPU_SPLIT_K_MIN)) if tiles < gpu.sm_count else 1
    blocks = tiles * split
    waves = -(-blocks // gpu.sm_count)
    return padding * blocks / (waves * gpu.sm_count)


def _kernel(compute: float, memory: float, fixed: float, r: Rates) -> Result:
    bound = "compute" if compute >= memory else "memory"
    return overlapped(compute, memory, r.overlap) + fixed + r.op_overhead_s, TENSOR, bound


def gemm(gpu: GpuSpec, op: Op, p: Precision, r: Rates) -> Result:
    compute = op.flops / (peak_for(gpu, p) * tile_utilisation(gpu, op.m, op.n, op.k))
    memory = (op.weight_bytes + op.act_bytes) / r.hbm_bw
    # weight-only formats convert every weight on the CUDA cores on its way to the MMA
    dequant = 0.0
    if p.weight_only and op.weight_bytes:
        dequant = op.k * op.n * p.dequant_ops_per_weight / (gpu.simt_flops_per_s * gpu.efficiency.dequant)
    return _kernel(compute, memory, dequant, r)


def attention(gpu: GpuSpec, op: Op, p: Precision, r: Rates) -> Result:
    """FlashAttention-style fused kernel; decode (one query per head) streams the KV cache."""
    memory = (op.kv_bytes + op.act_bytes) / r.hbm_bw
    if op.m == 1:
        # the query heads sharing a KV head are the rows of one MMA tile; KV splits fill the SMs
        rows = op.kv_group
        fill = rows / (-(-rows // GPU_DECODE_ATTN_ROWS) * GPU_DECODE_ATTN_ROWS)
    else:
        block_fill = op.m / (-(-op.m // GPU_ATTN_BLOCK_M) * GPU_ATTN_BLOCK_M)
        blocks = op.groups * -(-op.m // GPU_ATTN_BLOCK_M)
        fill = block_fill * blocks / (-(-blocks // gpu.sm_count) * gpu.sm_count)
    compute = op.flops / (peak_for(gpu, p) * fill)
    return _kernel(compute, memory, 0.0, r)


def op_time(gpu: GpuSpec, op: Op, p: Precision, tp: int, r: Rates, engine: str | None = None) -> Result:
    kind = op.kind
    if kind == GEMM:
        return gemm(gpu, op, p, r)
    if kind == ATTENTION:
        return attention(gpu, op, p, r)
    if kind == VECTOR or kind == MEMORY:
        # elementwise kernels stream their operands through HBM between kernels
        return op.act_bytes / r.hbm_bw + r.op_overhead_s, SIMT, "memory"
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_time(op, tp, bw=r.link_bw, step_latency_s=r.step_latency_s, topology=gpu.topology,
                               fixed_s=r.op_overhead_s)
    raise ValueError(f"unknown operator kind {kind!r}")
