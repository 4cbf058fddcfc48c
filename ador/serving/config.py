"""Scheduler settings, with the real serving systems' documented defaults as named constants.

Every constant below is a default (or a documented recommendation) of a real serving system, with
where it is set. ``SchedulerConfig()`` takes vLLM's defaults where a policy has a vLLM counterpart,
so a plain ``ador simulate`` behaves like an out-of-the-box vLLM server; ``ador.serving.stacks``
maps the software stack of a measured row to the settings that stack runs with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ador.errors import ConfigError

# --- vLLM 0.4-0.6 (vllm/config.py SchedulerConfig and CacheConfig, vllm/engine/arg_utils.py,
#     vllm/core/block_manager_v1.py) ------------------------------------------------------------
VLLM_MAX_NUM_SEQS = 256                 # --max-num-seqs: running sequences per replica
VLLM_BLOCK_SIZE = 16                    # --block-size: tokens per paged KV block
VLLM_WATERMARK = 0.01                   # BlockSpaceManager(watermark=0.01): blocks kept free when admitting
VLLM_GPU_MEMORY_UTILIZATION = 0.9       # --gpu-memory-utilization: share of device memory vLLM may use
VLLM_MIN_BATCHED_TOKENS = 2048          # max_num_batched_tokens = max(max_model_len, 2048) without chunking
VLLM_CHUNKED_BATCHED_TOKENS = 512       # max_num_batched_tokens with --enable-chunked-prefill (v0.4-0.6)
# --- Sarathi-Serve (Agrawal et al., OSDI 2024, sec. 5): token budget 512 under strict TBT SLOs
SARATHI_TOKEN_BUDGET = 512
# --- SGLang 0.3 (python/sglang/srt/server_args.py ServerArgs) --------------------------------------
SGLANG_CHUNKED_PREFILL_SIZE = 8192      # --chunked-prefill-size: a long prompt is cut into chunks of this
SGLANG_MAX_PREFILL_TOKENS = 16384       # --max-prefill-tokens: prompt tokens in one prefill batch
SGLANG_PAGE_SIZE = 1                    # token-granular KV pool (no paging waste)
# --mem-fraction-static default by TP degree (ServerArgs.__post_init__): share of device memory for
# weights plus KV pool
SGLANG_MEM_FRACTION_STATIC = ((16, 0.79), (8, 0.83), (4, 0.85), (2, 0.87), (1, 0.88))
# --- TensorRT-LLM (trtllm-build / BuildConfig, KvCacheConfig, executor defaults) ---------------------
TRTLLM_MAX_NUM_TOKENS = 8192            # --max_num_tokens: tokens (context + generation) per iteration
TRTLLM_MAX_BATCH_SIZE = 2048            # --max_batch_size of trtllm-build (0.11+; 0.10's benchmark states it)
TRTLLM_BENCH_MAX_BATCH_SIZE = 4096      # what trtllm-bench's heuristic printed in its documented example
TRTLLM_TOKENS_PER_BLOCK = 64            # paged KV block (PluginConfig / KvCacheConfig tokens_per_block)
TRTLLM_KV_FREE_FRACTION = 0.9           # kv_cache_free_gpu_mem_fraction: share of memory left after weights
TRTLLM_BENCH_KV_FREE_FRACTION = 0.95    # trtllm-bench, "in majority of cases" (perf-overview, 0.17+)
# --- ADOR's concurrent mode: prompt tokens per prefill batch on the systolic arrays (as SGLang's
#     chunk size; a design choice, not measured)
ADOR_PREFILL_TOKENS = 8192

POLICIES = ("continuous", "chunked", "concurrent", "disaggregated")
Reservation = Literal["prompt", "full"]
MemoryBasis = Literal["total", "free"]


@dataclass(frozen=True)
class SchedulerConfig:
    """How one replica schedules (every field has a real system's default; see the constants).

    - ``max_batch``: sequences in service at once (vLLM ``max_num_seqs``, TensorRT-LLM
      ``max_batch_size``);
    - ``max_batched_tokens``: prompt tokens one prefill iteration takes (prefill-first policies);
    - ``chunk_tokens``: tokens per mixed iteration, decodes included (chunked policy: Sarathi's
      token budget, TensorRT-LLM's ``max_num_tokens``);
    - ``concurrent_chunk_tokens``: prompt tokens per prefill batch on the arrays (concurrent);
    - ``block_tokens``: paged KV block size; ``kv_watermark``: share of blocks kept free when a
      new prompt is admitted;
    - ``memory_fraction`` and ``memory_basis``: the KV cache gets ``memory_fraction`` of the total
      device memory less the weights and activations (``total``: vLLM, SGLang) or of the memory
      left after them (``free``: TensorRT-LLM);
    - ``reservation``: ``prompt`` admits a request when its prompt fits and preempts (recomputes)
      the newest when decodes outgrow the cache (vLLM); ``full`` reserves prompt + output at
      admission and never preempts (TensorRT-LLM's GUARANTEED_NO_EVICT);
    - ``split_prompts``: chunked policy, cut prompts to fill the token budget (Sarathi, TensorRT-LLM
      ``enable_chunked_context``); False: whole prompts join the mixed batch while they fit;
    - ``scheduler_steps``: decode steps run per scheduling decision (vLLM multi-step; 1: every step);
    - ``admit_after_preemption``: chunked policy, whether an iteration that had to preempt a running
      request still admits waiting ones (vLLM V1 does not: ``if not preempted_reqs``);
    - ``prefill_share``: disaggregated, the share of replicas that prefill.
    """
    policy: str = "continuous"
    max_batch: int = VLLM_MAX_NUM_SEQS
    max_batched_tokens: int = 8192
    chunk_tokens: int = SARATHI_TOKEN_BUDGET
    concurrent_chunk_tokens: int = ADOR_PREFILL_TOKENS
    block_tokens: int = VLLM_BLOCK_SIZE
    kv_watermark: float = VLLM_WATERMARK
    memory_fraction: float = VLLM_GPU_MEMORY_UTILIZATION
    memory_basis: MemoryBasis = "total"
    reservation: Reservation = "prompt"
    split_prompts: bool = True
    scheduler_steps: int = 1
    admit_after_preemption: bool = True
    prefill_share: float = 0.5

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError("policy", self.policy, f"unknown policy (known: {', '.join(POLICIES)})")
        for name in ("max_batch", "max_batched_tokens", "chunk_tokens", "concurrent_chunk_tokens", "block_tokens",
                     "scheduler_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be a whole number >= 1")
        if not (isinstance(self.kv_watermark, (int, float)) and 0 <= self.kv_watermark < 1):
            raise ConfigError("kv_watermark", self.kv_watermark, "must be in [0, 1)")
        if not (isinstance(self.memory_fraction, (int, float)) and 0 < self.memory_fraction <= 1):
            raise ConfigError("memory_fraction", self.memory_fraction, "must be in (0, 1]")
        if self.memory_basis not in ("total", "free"):
            raise ConfigError("memory_basis", self.memory_basis, "must be total or free")
        for name in ("split_prompts", "admit_after_preemption"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be true or false")
        if self.reservation not in ("prompt", "full"):
            raise ConfigError("reservation", self.reservation, "must be prompt or full")
        if not (isinstance(self.prefill_share, (int, float)) and 0 < self.prefill_share < 1
                and math.isfinite(self.prefill_share)):
            raise ConfigError("prefill_share", self.prefill_share, "must be between 0 and 1")


def sglang_mem_fraction(tp: int) -> float:
    return next(f for at_least, f in SGLANG_MEM_FRACTION_STATIC if tp >= at_least)
