"""Named constants of the performance model, each with its source or stated assumption."""

# Matrix-engine throughput relative to fp16 by MAC datatype. Multi-precision MAC units run fp8 and
# int8 at twice the fp16 rate (NVIDIA H100 datasheet: 1979 dense FP8 vs 989 dense FP16 TFLOP/s;
# Google TPUv5e: int8 at 2x bf16).
MAC_RATE_VS_FP16 = {"fp16": 1.0, "fp8": 2.0, "int8": 2.0}

# Partial sums are accumulated in fp32 in the arrays' local SRAM (standard for fp16/bf16/fp8 MACs).
ACCUMULATOR_BYTES = 4.0

# MAC-tree pipeline depth beyond the log2(width) adder levels: operand read, multiplier, accumulator,
# writeback, a cycle each. An assumption of the template (no published depth); it is paid once per
# operator, so it matters only for tiny decode GEMVs.
MACTREE_PIPELINE_CYCLES = 4.0

# GPU GEMM tiling: CUTLASS/cuBLAS tensor-core kernels use 128x128 output tiles per thread block on
# Ampere/Hopper for large problems, and split the K dimension (split-K) when there are too few
# output tiles to fill the SMs, down to chunks of at least 256 along K.
# For small M the libraries pick shorter tiles, down to the 16 rows of one tensor-core MMA
# (mma.m16n8k16 on Ampere; Hopper's wgmma issues 64-row tiles per warpgroup).
GPU_TILE_M_OPTIONS = (16, 32, 64, 128)
GPU_TILE_N = 128
GPU_SPLIT_K_MIN = 256
# A weight-only GEMM kernel converts the weight tile it loads for one block of activation rows, so
# each weight is converted once per block: Marlin (IST-DASLab/marlin, marlin_cuda_kernel.cu,
# marlin_cuda(): at most thread_m_blocks = 4 blocks of 16 rows, larger batches run as parallel
# 64-row problems that each load and dequantise the weights) and vLLM's GPTQ/FP8 Marlin built on it.
GPU_WEIGHT_ONLY_ROWS = 64
# FlashAttention-2 processes queries in blocks of 128 rows (Dao 2023, Sec. 3.3 tuning on A100/H100).
GPU_ATTN_BLOCK_M = 128
# Decode attention (FlashDecoding, Dao et al. 2023; TensorRT-LLM's multi-block mode) splits the KV
# sequence over thread blocks so all SMs stream the cache; its MMA tile holds 16 query rows.
GPU_DECODE_ATTN_ROWS = 16
# One thread block of a decode-attention kernel streaming a KV cache alone on an SM reaches about
# 45 GB/s (its bytes in flight over the DRAM latency; Little's law), so a kernel that does not split
# the KV sequence over blocks reads it at (sequences x KV heads) x 45 GB/s until that exceeds the
# HBM's bandwidth. Own measurement, NVIDIA H100 SXM and H200, 2026-11-26: PyTorch 2.11's SDPA (which
# picked cuDNN's kernel for this call, ador/data/own/sdpa-backends-h200.log) on one layer of llama-3-8b
# at batch 1-8 and 16k-128k tokens reached 44-47 GB/s per (sequence, KV head) on both
# (ador/data/own/long-context-h100.json, -h200.json, "attention_only").
# Assumed for other NVIDIA GPUs; binds only under runtimes whose kernels do not split (``decode_kv_split``).
GPU_DECODE_ATTN_BLOCK_BYTES_PER_S = 45e9
