"""Scheduler settings, with the real serving systems' documented defaults as named constants.

Every constant below is a default (or a documented recommendation) of a real serving system, with
where it is set. ``SchedulerConfig()`` takes vLLM's defaults where a policy has a vLLM counterpart,
so a plain ``ador simulate`` behaves like an out-of-the-box vLLM server; ``ador.serving.stacks``
maps the software stack of a measured row to the settings that stack runs with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from ador.errors import ConfigError

# --- vLLM 0.4-0.6 (vllm/config.py SchedulerConfig and CacheConfig, vllm/engine/arg_utils.py,
#     vllm/core/block_manager_v1.py) ------------------------------------------------------------
VLLM_MAX_NUM_SEQS = 256                 # --max-num-seqs: running sequences per replica
VLLM_BLOCK_SIZE = 16                    # --block-size: tokens per paged KV block
VLLM_WATERMARK = 0.01                   # BlockSpaceManager(watermark=0.01): blocks kept free when admitting
VLLM_GPU_MEMORY_UTILIZATION = 0.9       # --gpu-memory-utilization: share of device memory vLLM may use
VLLM_MIN_BATCHED_TOKENS = 2048          # max_num_batched_tokens = max(max_model_len, 2048) without chunking
VLLM_CHUNKED_BATCHED_TOKENS = 512       # max_num_batched_tokens with --enable-chunked-prefill (v0.4-0.6)
# Host time per sequence an iteration schedules in vLLM before 0.6, whose engine loop prepared the
# inputs, sampled, processed the outputs and scheduled in Python between GPU passes: "When BS is
# 200, all this together can be 20ms" (vllm-project/vllm issue 6801, "Performance Roadmap",
# comment of 2024-08-08, the 0.5.4 era): 20 ms / 200 sequences. vLLM's own profile of 0.5.3 agrees
# in size (Llama 3 8B on one H100: GPU execution 38% of the time, scheduling 29%, the HTTP server 33%;
# blog.vllm.ai 2024-09-05, "vLLM v0.6.0: 2.7x Throughput Improvement"), and so does WukLab's profile of
# 0.5.4 (37% of an iteration on the host, about 85 us a request at 256 running; these figures and how
# they were read: ador/data/candidates/host-overhead-NOTES.md, items 2 and 4). 0.6.0 overlapped the output
# processing with the next pass and moved the HTTP server to its own process (same post); later
# releases are priced without it.
VLLM_V0_HOST_S_PER_SEQ = 20e-3 / 200
# --- Sarathi-Serve (Agrawal et al., OSDI 2024, sec. 5): token budget 512 under strict TBT SLOs
SARATHI_TOKEN_BUDGET = 512
# --- SGLang 0.3 (python/sglang/srt/server_args.py ServerArgs) --------------------------------------
SGLANG_CHUNKED_PREFILL_SIZE = 8192      # --chunked-prefill-size: a long prompt is cut into chunks of this
SGLANG_MAX_PREFILL_TOKENS = 16384       # --max-prefill-tokens: prompt tokens in one prefill batch
SGLANG_PAGE_SIZE = 1                    # token-granular KV pool (no paging waste)
# --mem-fraction-static default by TP degree (ServerArgs.__post_init__): share of device memory for
# weights plus KV pool
SGLANG_MEM_FRACTION_STATIC = ((16, 0.79), (8, 0.83), (4, 0.85), (2, 0.87), (1, 0.88))
# SGLang's admission reserves KV room for output tokens (python/sglang/srt/managers/schedule_policy.py,
# PrefillAdder; 0.3.0: policy_scheduler.py): a new request its prompt plus min(max_new_tokens,
# CLIP_MAX_NEW_TOKENS), each running request new_token_ratio times its clipped remaining output. The
# ratio starts at 0.7, falls linearly per decode step to its minimum and starts again at 0.7 when the
# server idles; after a retraction it becomes (generated + RETRACT_DECODE_STEPS x n) / max_new_tokens
# over the requests left, at most 1 (schedule_batch.py retract_decode).
SGLANG_CLIP_MAX_NEW_TOKENS = 4096       # SGLANG_CLIP_MAX_NEW_TOKENS(_ESTIMATION), both releases
SGLANG_INIT_NEW_TOKEN_RATIO = 0.7       # global_config.init_new_token_ratio (0.3); SGLANG_INIT_NEW_TOKEN_RATIO (0.5)
SGLANG_RETRACT_DECODE_STEPS = 20        # global_config.retract_decode_steps; SGLANG_RETRACT_DECODE_STEPS
# 0.5: min = 0.7 x SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR 0.14, reached in SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS 600;
# 0.3: base_min_new_token_ratio 0.1, new_token_ratio_decay 0.001 a step (600 steps from 0.7)
SGLANG_MIN_NEW_TOKEN_RATIO = {(0, 3): 0.1, (0, 5): 0.098}
SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS = 600
# 0.5's defaults from the GPU's memory (server_args.py, ServerArgs._handle_gpu_memory_settings, 0.5.5.post1
# lines 692-812): each band (MiB below which it applies) sets chunked_prefill_size and cuda_graph_max_bs
# (at TP < 4, at TP >= 4); the NPU-only bands are left out. Then reserved MiB = 512 + 1.5 x
# max(chunked_prefill_size, 2048) + 2 x cuda_graph_max_bs + 1024 x tp x pp / 8, at least 10,240 on GPUs
# over 60 GiB, and mem_fraction_static = (memory - reserved) / memory, 3 decimals.
SGLANG_05_MEMORY_BANDS: tuple[tuple[float, int, int, int], ...] = (
    (20 * 1024, 2048, 8, 8),            # T4, RTX 4080
    (35 * 1024, 2048, 24, 80),          # A10, RTX 4090 / 5090
    (60 * 1024, 4096, 32, 160),         # A100 40 GB, L40
    (160 * 1024, 8192, 256, 512),       # A100 / H100 80 GB, H20, H200 (two bands with the same values)
    (math.inf, 16384, 512, 512),        # B200, MI300X
)
SGLANG_RESERVED_BASE_MIB = 512
SGLANG_RESERVED_FLOOR_MIB = 10 * 1024
SGLANG_RESERVED_FLOOR_ABOVE_MIB = 60 * 1024
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

POLICIES = ("continuous", "chunked", "concurrent", "disaggregated", "sglang")
AHEAD_POLICIES = ("continuous", "chunked", "sglang")    # one engine per replica, one timeline
Reservation = Literal["prompt", "full"]
MemoryBasis = Literal["total", "free", "reserve"]


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
      device memory less the weights and activations (``total``: vLLM, which profiles its largest
      iteration), of the memory left after them (``free``: TensorRT-LLM), or ``memory_fraction`` of
      the total less the weights, the rest being the activations' reserve (``reserve``: SGLang's
      ``mem_fraction_static``);
    - ``reservation``: ``prompt`` admits a request when its prompt fits and preempts (recomputes)
      the newest when decodes outgrow the cache (vLLM); ``full`` reserves prompt + output at
      admission and never preempts (TensorRT-LLM's GUARANTEED_NO_EVICT);
    - ``split_prompts``: chunked policy, cut prompts to fill the token budget (Sarathi, TensorRT-LLM
      ``enable_chunked_context``); False: whole prompts join the mixed batch while they fit;
    - ``scheduler_steps``: decode steps run per scheduling decision (vLLM multi-step; 1: every step);
    - ``host_s_per_seq``: host time per sequence an iteration runs (input preparation, sampling,
      output processing, scheduling: work that grows with the batch), on top of the runtime
      profile's per-step overhead; multi-step decoding pays it once per ``scheduler_steps`` steps
      ("amortize all these overheads over n-steps", vLLM RFC 6854). 0 for every stack but vLLM
      before 0.6 (``VLLM_V0_HOST_S_PER_SEQ``);
    - ``admit_after_preemption``: chunked policy, whether an iteration that had to preempt a running
      request still admits waiting ones (vLLM V1 does not: ``if not preempted_reqs``);
    - ``prefill_share``: disaggregated, the share of replicas that prefill;
    - ``min_new_token_ratio``, ``retract_room_steps``, ``admission_latch``: SGLang's admission and
      retraction (policy ``sglang``): the floor of the output reservation ratio; the decode steps of
      room a retraction frees for each request left (0.3: 20; 0.5: 1, one step); whether a failed
      admission stops admitting until a request leaves (0.5's ``batch_is_full``);
    - ``batch_wait_iters``, ``batch_wait_tokens_ratio``: chunked policy, TensorRT-LLM's batch waiting
      (PyTorch backend ``batch_wait_timeout_iters``, ``batch_wait_max_tokens_ratio``; both 0, off, by
      default): while requests decode, new prompts wait until the iteration would carry
      ``batch_wait_tokens_ratio`` x ``chunk_tokens`` tokens or ``batch_wait_iters`` iterations have
      waited (``PyExecutor._waiting_requests``);
    - ``schedule_ahead``: the scheduler forms each iteration while the one before it runs (vLLM's
      async scheduling, SGLang's overlap scheduler): a decision sees the requests that had arrived
      when the previous iteration started, so one arriving while the replica is busy waits one more
      iteration; an idle replica takes a request at once. Policies ``continuous``, ``chunked`` and
      ``sglang`` (the colocated engines of the stacks that do it).
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
    host_s_per_seq: float = 0.0
    admit_after_preemption: bool = True
    prefill_share: float = 0.5
    min_new_token_ratio: float = SGLANG_MIN_NEW_TOKEN_RATIO[(0, 5)]
    retract_room_steps: int = 1
    admission_latch: bool = True
    batch_wait_iters: int = 0
    batch_wait_tokens_ratio: float = 0.0
    schedule_ahead: bool = False

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError("policy", self.policy, f"unknown policy (known: {', '.join(POLICIES)})")
        for name in ("max_batch", "max_batched_tokens", "chunk_tokens", "concurrent_chunk_tokens", "block_tokens",
                     "scheduler_steps", "retract_room_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be a whole number >= 1")
        if not (isinstance(self.kv_watermark, (int, float)) and 0 <= self.kv_watermark < 1):
            raise ConfigError("kv_watermark", self.kv_watermark, "must be in [0, 1)")
        if isinstance(self.host_s_per_seq, bool) or not isinstance(self.host_s_per_seq, (int, float)) \
                or not 0 <= self.host_s_per_seq < math.inf:
            raise ConfigError("host_s_per_seq", self.host_s_per_seq, "must be a finite number of seconds >= 0")
        if not (isinstance(self.memory_fraction, (int, float)) and 0 < self.memory_fraction <= 1):
            raise ConfigError("memory_fraction", self.memory_fraction, "must be in (0, 1]")
        if self.memory_basis not in get_args(MemoryBasis):
            raise ConfigError("memory_basis", self.memory_basis, f"must be one of {', '.join(get_args(MemoryBasis))}")
        if not (isinstance(self.min_new_token_ratio, (int, float))
                and 0 <= self.min_new_token_ratio <= SGLANG_INIT_NEW_TOKEN_RATIO):
            # the ratio falls from its initial value to this floor (a floor above it would rise)
            raise ConfigError("min_new_token_ratio", self.min_new_token_ratio,
                              f"must be in [0, {SGLANG_INIT_NEW_TOKEN_RATIO}], SGLang's initial ratio")
        if isinstance(self.batch_wait_iters, bool) or not isinstance(self.batch_wait_iters, int) \
                or self.batch_wait_iters < 0:
            raise ConfigError("batch_wait_iters", self.batch_wait_iters, "must be a whole number >= 0")
        ratio = self.batch_wait_tokens_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ConfigError("batch_wait_tokens_ratio", self.batch_wait_tokens_ratio, "must be in [0, 1]")
        for name in ("split_prompts", "admit_after_preemption", "admission_latch", "schedule_ahead"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be true or false")
        if self.schedule_ahead and self.policy not in AHEAD_POLICIES:
            raise ConfigError("schedule_ahead", True, f"is modelled for the {', '.join(AHEAD_POLICIES)} policies, "
                                                      f"not {self.policy}")
        if self.reservation not in ("prompt", "full"):
            raise ConfigError("reservation", self.reservation, "must be prompt or full")
        if not (isinstance(self.prefill_share, (int, float)) and 0 < self.prefill_share < 1
                and math.isfinite(self.prefill_share)):
            raise ConfigError("prefill_share", self.prefill_share, "must be between 0 and 1")


def sglang_mem_fraction(tp: int) -> float:
    return next(f for at_least, f in SGLANG_MEM_FRACTION_STATIC if tp >= at_least)


def sglang_05_defaults(tp: int, memory_bytes: float) -> tuple[int, int]:
    """SGLang 0.5's default ``(chunked_prefill_size, cuda_graph_max_bs)`` on a GPU of ``memory_bytes``."""
    mib = memory_bytes / 2 ** 20
    _, chunk, graphs_small_tp, graphs_large_tp = next(band for band in SGLANG_05_MEMORY_BANDS if mib < band[0])
    return chunk, graphs_small_tp if tp < 4 else graphs_large_tp


def sglang_05_mem_fraction(tp: int, memory_bytes: float, chunk_tokens: int, cuda_graph_max_bs: int) -> float:
    """SGLang 0.5's default ``mem_fraction_static`` on a GPU of ``memory_bytes`` (see the constants)."""
    mib = memory_bytes / 2 ** 20
    reserved = SGLANG_RESERVED_BASE_MIB + 1.5 * max(chunk_tokens, 2048) + 2 * cuda_graph_max_bs + 1024 * tp / 8
    if mib > SGLANG_RESERVED_FLOOR_ABOVE_MIB:
        reserved = max(reserved, SGLANG_RESERVED_FLOOR_MIB)
    return round((mib - reserved) / mib, 3)
