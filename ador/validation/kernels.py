"""What each serving stack's decode-attention kernels do: documented facts of the software (by
release where it matters), not fitted constants. Every measured row is priced with its own
software's facts, whether its stack has a fitted profile or takes the default one.

- ``grouped_kv_decode``: the (query heads per KV head x head dim) shapes whose KV head is read once
  for its whole query group. TensorRT-LLM 0.7-0.9: XQA kernels are built only for 8 query heads per
  KV head of dim 128 (cpp/tensorrt_llm/kernels/decoderMaskedMultiheadAttention/cubin/xqa_kernel_cubin.h);
  other GQA shapes (Mistral's 4, Falcon-180B's 29 of dim 64) run the masked multi-head kernel, one
  thread block and one KV read per query head. Those reads of one KV head come together, so DRAM
  serves it once and the L2 every read (``kv_rereads_from_l2``): a cost that binds on Hopper, less on
  the A100, not on the L40S, whose GDDR6 is slow beside its L2 -- as the rows show. TensorRT-LLM
  0.5-0.6 group no shape, so their masked kernel reads every GQA shape that way: XQA came after them
  ("MMHA optimization for MQA and GQA" first in the "Update TensorRT-LLM" push of 2023-12-01, PR #524,
  released as 0.7; the release notes' first section, 0.7.1, lists it beside "FP8 KV cache support for
  XQA kernel"; the XQA blog, docs/source/blogs/XQA-kernel.md, measures Llama-70B on one H200 at 1,227
  tok/s/GPU without it and 2,941 with it, the second being the v0.7a preliminary row m428), and a
  maintainer answered (2023-11-23) issue #407 (opened 2023-11-16: "the custom attention kernel will
  load kv-cache num_heads / num_heads_kv times from the global memory") that those loads "may actually
  come from the L2 cache". Releases are told apart by major and minor number only, so every 0.7 build
  counts as carrying XQA.
  Priced (``PRICE_XQA_COVERAGE``). It was first left off: its refit raised Hopper's HBM efficiencies
  and took our own held-out H100/H200 rows from 9.4% to 12.6%. Once LMDeploy 0.1's first tokens were
  priced as TurboMind computes them (``first_token_from_decode``, below), the refit with it is better
  in-sample, in both cross-validations and on our own rows (``benchmarks/xqa_fit.py`` fits both ways;
  docs/validation.md quotes the figures). Later releases are taken to group every shape (XQA grew;
  not checked release by release). gpt-fast and torchao expand the KV heads to every query head
  (repeat_interleave) before scaled_dot_product_attention, so each read is of a copy in DRAM (the
  default). LMDeploy 0.1-0.2 (TurboMind 2, "TurboMind 2 (#590)", first in v0.1.0a0; replaced by
  "Refactor turbomind attention (#1116)", first in v0.3.0) runs its decoder attention with one
  thread block per 4, 2 or 1 query heads, the largest that divides the group (``decode_heads_per_block``):
  ``DispatchDecoderMultiheadAttention`` in
  src/turbomind/kernels/decoder_multihead_attention/decoder_multihead_attention.cu at v0.1.0a1 has the
  8-head case commented out (``// else if (group_size % 8 == 0)``), so each block loads its KV head
  (``kv_head_idx_ = head_idx_ / gqa_group_size``) and Llama-2-70B's groups of 8 read each KV head
  twice; the bf16 path (0.1.0-0.2.6) dispatches 4, 2 or 1 too, its int8 KV cache one head a block (no
  int8-KV precision here to price). Both reads from DRAM (the default) is inferred from the public rows:
  the two blocks are neighbours in the grid, but priced as an L2 re-read the second costs nothing on an
  A100 and the Llama-2-70B rows stay 7-18% short; as two DRAM reads they are within 3.4%. Other stacks:
  shared for every shape.
- ``decode_kv_split``: whether the kernel splits each sequence's KV over thread blocks until the
  SMs are busy. TensorRT-LLM's "multi-block mode" does, and is on by default from release 0.13
  ("[BREAKING CHANGE] Enabled multi_block_mode by default", release notes 0.13.0); before, it was a
  build flag defaulting to off (tensorrt_llm/plugin/plugin.py ``multi_block_mode: bool = False`` in
  0.9.0; ``--multi_block_mode`` store_true in 0.7's examples/llama/build.py). vLLM 0.4-0.6 runs its
  paged attention v2 (512-token partitions) whenever v1 would leave the SMs short
  (vllm/attention/ops/paged_attn.py, ``use_v1``); FlashDecoding, FlashInfer and TurboMind split.
  PyTorch's ``scaled_dot_product_attention`` depends on the call: with the query heads of a KV head
  folded into the query length, as ``benchmarks/gpu_measure.py`` (our own rows) calls it, PyTorch
  2.11 picks cuDNN's kernel, which runs one block per (sequence, KV head): a 128k-token batch-1 cache
  at 360 GB/s on an H200; called with ``enable_gqa=True`` the same SDPA reads it at 4.3 TB/s, and the
  flash kernel splits either way (own measurement, ador/data/own/sdpa-backends-h200.log). So the
  fact belongs to that software, named by its script, not to PyTorch at large. gpt-fast and torchao
  call SDPA with an attention mask (gpt-fast model.py: ``scaled_dot_product_attention(q, k, v,
  attn_mask=mask)``), which rules out the flash kernel; the memory-efficient kernel left does not
  split (16 GB/s per (sequence, head) in the same log, though the rule prices every unsplit kernel at
  the 45 GB/s measured for cuDNN's: their rows are short contexts, where it barely matters).
- ``dequant_per_row``: weight-only precisions whose GEMM kernel dequantises the whole weight matrix
  once per activation row. PyTorch's tinygemm int4 kernel (``torch.ops.aten._weight_int4pack_mm``)
  does: on an H100 and an H200 a llama-3-70b layer shard (TP 1) took 0.30 ms at batch 1 and then
  0.051-0.058 ms more per row up to 2,048 rows, which is 4 conversion ops a weight per row at the CUDA
  cores' peak (own measurement, ador/data/own/int4-h100.json, int4-h200.json; docs/validation.md).
  gpt-fast's int4 path (quantize.py ``WeightOnlyInt4Linear``) and torchao's ``int4_weight_only``
  call that kernel. Their int8 paths are torch.compile-generated and are not known to; other stacks'
  weight-only kernels (Marlin, TensorRT-LLM's) reuse a dequantised tile across rows.
- ``first_token_from_decode``: whether the prefill pass stops one token short and a decode step over
  the last prompt token emits the first token. TurboMind (lmdeploy) up to 0.1.0a1 does:
  ``LlamaBatch<T>::ContextDecode`` sets each prompt's input length to ``missing - 1`` and runs the
  context decoder only where more than one token is missing ("subtract input/context len by 1 to
  skip last input token (will process with decoder later)", src/turbomind/models/llama/LlamaBatch.cc
  at v0.1.0a1; the 0.0.x releases' ``invokePlusScalar(input_length_buf_ + base, -1, ...)`` does the
  same), so a batch-1 first token costs a prefill of all but one prompt token and one decode step:
  the 128-token first tokens of the public rows (Llama-2 7B and 13B, 22 and 40 ms on an A100) are
  about a prefill and a weight-streaming decode step. "Unify prefill & decode passes" (#775,
  2023-12-04, first in 0.1.0a2) ended it. Other stacks: the prefill pass emits the first token.
- ``fp8_cast_kernel``: whether each FP8 linear layer's 16-bit input is cast to FP8 by an elementwise
  kernel of its own before the scaled GEMM. vLLM's V0 engine does (``apply_fp8_linear`` in
  vllm/model_executor/layers/quantization/utils/w8a8_utils.py: ``ops.scaled_fp8_quant(input,
  input_scale, ...)``, a CUDA op of its own, then ``cutlass_scaled_mm`` or ``torch._scaled_mm``; its
  ROCm build calls the same), up to 0.7; the V1 engine, the default from 0.8, compiles the model with
  torch.compile, which can fuse the cast into the RMSNorm before it (not checked release by
  release: those releases are taken to fuse, as a release not stated is taken to be current).
  SGLang quantises the input with ``static_quant_fp8``, ``sglang_per_token_quant_fp8`` or vLLM's
  ``scaled_fp8_quant`` before its scaled GEMM (python/sglang/srt/layers/quantization/fp8_utils.py).
  Our GPU measurement script casts each GEMM input with one elementwise kernel, not fused into the norm
  or activation before it (ador/data/own/README.md, "FP8 linear layers"). TensorRT-LLM fuses the
  quantisation into the kernel that produces the input (TensorRT fuses a Q/DQ pair into the layer
  before; its plugins' fused RMSNorm-quantise). Other stacks: fused. A dynamic scale's reduction over
  the input (a second small kernel) is not priced. Two limits, no row in the data meets them: a
  mixture-of-experts layer is charged a cast per expert operator (vLLM's fused MoE casts once per
  layer for each of its two GEMMs) and a cast for the router (which the graph quantises, vLLM does
  not); and the cast's traffic is priced in time, not added to the operator's DRAM bytes, so energy
  from activity counts its seconds but not its bytes.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from typing import Any, Iterator, Mapping

from ador.errors import ConfigError
from ador.hardware.runtime import RuntimeProfile
from ador.serving.stacks import full_version, release
from ador.validation.data import stack_of

DEFAULT_PROFILE = "default"   # fitted for rows whose stack has no profile of its own

STACK_GROUPED_KV: dict[str, tuple[str, ...]] = {"gpt-fast": (), "torchao": ()}
# stack -> ranges of releases (first, last, the numbers) whose decode kernels serve these numbers of
# query heads a thread block and share a KV head no further (above)
HEADS_PER_BLOCK_ONLY: dict[str, tuple[tuple[tuple[int, int], tuple[int, int], tuple[int, ...]], ...]] = {
    "lmdeploy": (((0, 1), (0, 2), (4, 2)),)}
# stack -> ranges of releases (first, last, the shapes) whose decode kernels group only these shapes
# (none: every GQA head is read once per query head); other releases: every shape
GROUPED_KV_ONLY: dict[str, tuple[tuple[tuple[int, int], tuple[int, int], tuple[str, ...]], ...]] = {
    "tensorrt-llm": (((0, 0), (0, 6), ()), ((0, 7), (0, 9), ("8x128",)))}
# whether GROUPED_KV_ONLY prices rows (see above; benchmarks/xqa_fit.py measures both ways)
PRICE_XQA_COVERAGE = True
# stacks whose per-query-head decode kernel reads one KV head for the group at once (L2 re-reads)
STACK_KV_REREADS_FROM_L2 = frozenset({"tensorrt-llm"})
STACK_UNSPLIT_KV_DECODE = frozenset({"gpt-fast", "torchao"})
# software strings naming code whose decode attention is known not to split (see above)
UNSPLIT_KV_DECODE_CODE = ("benchmarks/gpu_measure.py",)
# stacks, and software strings naming a kernel, whose int4 GEMMs dequantise once per row (above)
STACK_DEQUANT_PER_ROW: dict[str, tuple[str, ...]] = {"gpt-fast": ("int4-wo",), "torchao": ("int4-wo",)}
DEQUANT_PER_ROW_CODE = {"_weight_int4pack_mm": ("int4-wo",)}
# (stack, first release whose decode kernels split the KV sequence by default)
SPLIT_KV_SINCE: dict[str, tuple[int, int]] = {"tensorrt-llm": (0, 13)}
# (stack, last release whose first token comes from a decode step, as ``full_version`` orders it; above)
FIRST_TOKEN_FROM_DECODE_UNTIL: dict[str, tuple[int, ...]] = {"lmdeploy": (0, 1, 0, 1, 1)}    # 0.1.0a1
# (stack, first release that fuses the FP8 input cast; None: every release casts in a kernel of its own)
FP8_CAST_FUSED_SINCE: dict[str, tuple[int, int] | None] = {"vllm": (0, 8), "vllm-rocm": (0, 8), "sglang": None,
                                                           "sglang-rocm": None}
FP8_CAST_KERNEL_CODE = ("benchmarks/gpu_measure.py",)


def _in_releases(table: Mapping[str, tuple[tuple[tuple[int, int], tuple[int, int], Any], ...]], stack: str,
                 version: tuple[int, int] | None) -> Any:
    """The value a table of (first, last, value) release ranges gives ``stack`` at ``version``; None
    outside every range, for another stack or an unknown release."""
    if stack not in table or version is None:
        return None
    for first, last, value in table[stack]:
        if first <= version <= last:
            return value
    return None


@lru_cache(maxsize=1024)
def kernel_facts(software: str) -> tuple[tuple[str, Any], ...]:
    """The RuntimeProfile fields that describe the decode-attention and weight-only GEMM kernels of
    ``software`` (a stack name alone stands for its current release)."""
    stack = stack_of(software)
    version = release(software)
    split = stack not in STACK_UNSPLIT_KV_DECODE and not any(code in software for code in UNSPLIT_KV_DECODE_CODE)
    if stack in SPLIT_KV_SINCE:
        split = version is None or version >= SPLIT_KV_SINCE[stack]
    per_row = STACK_DEQUANT_PER_ROW.get(stack, ())
    per_row += tuple(p for code, names in DEQUANT_PER_ROW_CODE.items() if code in software for p in names
                     if p not in per_row)
    grouped = STACK_GROUPED_KV.get(stack, ("any",))
    shapes = _in_releases(GROUPED_KV_ONLY, stack, version) if PRICE_XQA_COVERAGE else None
    if shapes is not None:
        grouped = shapes
    heads_per_block: tuple[int, ...] = _in_releases(HEADS_PER_BLOCK_ONLY, stack, version) or ()
    if heads_per_block:
        grouped = ()
    from_decode = False
    if stack in FIRST_TOKEN_FROM_DECODE_UNTIL:
        full = full_version(software)
        from_decode = full is not None and full <= FIRST_TOKEN_FROM_DECODE_UNTIL[stack]
    cast = any(code in software for code in FP8_CAST_KERNEL_CODE)
    if stack in FP8_CAST_FUSED_SINCE:
        fused_since = FP8_CAST_FUSED_SINCE[stack]
        cast = fused_since is None or (version is not None and version < fused_since)
    return (("grouped_kv_decode", grouped), ("decode_heads_per_block", heads_per_block),
            ("kv_rereads_from_l2", stack in STACK_KV_REREADS_FROM_L2),
            ("decode_kv_split", split), ("dequant_per_row", per_row), ("first_token_from_decode", from_decode),
            ("fp8_cast_kernel", cast))


@contextmanager
def xqa_coverage(priced: bool) -> Iterator[None]:
    """Price TensorRT-LLM 0.5-0.9's grouped-query coverage (``GROUPED_KV_ONLY``) or not, for the
    block (benchmarks/xqa_fit.py measures both; ador ships ``PRICE_XQA_COVERAGE``)."""
    global PRICE_XQA_COVERAGE
    saved = PRICE_XQA_COVERAGE
    PRICE_XQA_COVERAGE = priced
    kernel_facts.cache_clear()
    _with_facts.cache_clear()
    try:
        yield
    finally:
        PRICE_XQA_COVERAGE = saved
        kernel_facts.cache_clear()
        _with_facts.cache_clear()


@lru_cache(maxsize=1024)
def _with_facts(profile: RuntimeProfile, software: str) -> RuntimeProfile:
    facts = kernel_facts(software)
    if all(getattr(profile, name) == value for name, value in facts):
        return profile
    return replace(profile, **dict(facts))


def runtime_for(software: str, runtimes: Mapping[str, RuntimeProfile]) -> tuple[RuntimeProfile, bool]:
    """The profile that prices a row of ``software`` -- its stack's fitted one if the fit saw its
    release, else the default one (an extrapolation, the second value) -- with that software's own
    kernel facts."""
    stack = stack_of(software)
    if stack in runtimes and runtimes[stack].covers(release(software)):
        return _with_facts(runtimes[stack], software), False
    if DEFAULT_PROFILE in runtimes:
        return _with_facts(runtimes[DEFAULT_PROFILE], software), True
    why = ("its stack's profile was fitted on other releases" if stack in runtimes
           else "no runtime profile for this stack")
    raise ConfigError("software", software, f"{why} and no default profile")
