"""The scheduler a real serving stack runs, from its name and the launch flags a source states.

A measured serving row names its software (``vllm 0.6.0 (... --num-scheduler-steps 10 ...)``);
``scheduler_for`` maps it to the policy that stack implements and the settings it runs with: its
documented defaults (``ador.serving.config``), overridden only by flags the source printed.

- vLLM 0.4-0.6: ``continuous`` (prefill-first); 256 sequences, max(max_model_len, 2048) prompt
  tokens per prefill, 16-token blocks, 1% watermark, 90% of memory; multi-step from
  ``--num-scheduler-steps``; recompute preemption; before 0.6, 100 us of host work per sequence
  each iteration runs (``VLLM_V0_HOST_S_PER_SEQ``). With ``--enable-chunked-prefill`` (or on CUDA
  with ``--max-model-len`` over 32k, where vLLM turns it on itself): ``chunked`` with a 512-token
  budget (the v0.4-0.6 default).
- vLLM 0.8 and later (the V1 engine, the default from 0.8.0; "V1 always uses chunked prefills"):
  ``chunked``: every running request's decode token first, then prompt chunks (any prompt cut) up
  to ``max_num_batched_tokens``; the API server's defaults depend on the GPU: 8,192 tokens and
  1,024 sequences with at least 70 GiB of memory and not an A100, else 2,048 and 256.
- SGLang: ``sglang`` (``ador.serving.sglang``: prefill-first, admission that reserves room for
  output tokens, retraction to the back of the queue); 8,192-token prefill chunks, a token-granular
  KV pool, running requests bounded by the pool; memory share by TP (0.3: 0.88 at TP1 ... 0.79 at
  TP16) or from the GPU's memory (0.5), or ``--mem-frac``.
- TensorRT-LLM (in-flight batching): ``chunked`` (decodes plus context in one pass);
  ``max_num_tokens`` 8,192, ``max_batch_size`` 2,048 (trtllm-bench: 4,096), 64-token blocks, 90%
  (trtllm-bench: 95%) of the memory left after weights, GUARANTEED_NO_EVICT (reserve prompt +
  output; ``max_utilization`` admits on the prompt and may pause); the Triton backend does not
  chunk context unless told; batch waiting from ``--batch_wait_timeout_iters`` and
  ``--batch_wait_max_tokens_ratio`` (PyTorch backend options, written as flags).
- anything else: ``continuous`` with vLLM's defaults (counted as a default mapping).

``benchmark_requests`` says how many requests a stack's published benchmark sends when a row does
not say: the count changes what an overloaded server run measures (its queue grows for as long as
requests keep coming), so it is part of the benchmark, like the scheduler's settings.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ador.errors import ConfigError
from ador.serving.config import (
    SGLANG_CHUNKED_PREFILL_SIZE, SGLANG_MIN_NEW_TOKEN_RATIO, SGLANG_PAGE_SIZE,
    SGLANG_RETRACT_DECODE_STEPS, TRTLLM_BENCH_KV_FREE_FRACTION, TRTLLM_BENCH_MAX_BATCH_SIZE, TRTLLM_KV_FREE_FRACTION,
    TRTLLM_MAX_BATCH_SIZE, TRTLLM_MAX_NUM_TOKENS, TRTLLM_TOKENS_PER_BLOCK, VLLM_CHUNKED_BATCHED_TOKENS,
    VLLM_MIN_BATCHED_TOKENS, VLLM_V0_HOST_S_PER_SEQ, SchedulerConfig, sglang_05_defaults, sglang_05_mem_fraction,
    sglang_mem_fraction,
)

if TYPE_CHECKING:
    from ador.hardware import Device

# vLLM's V1 engine: the default from release 0.8.0 (VLLM_USE_V1=1; its scheduler has no prefill-first
# mode). Its API-server defaults, from vllm/engine/arg_utils.py (vllm-project/vllm at 99d7eb5, a
# v0.11-series commit; the V1 releases in our data are 0.11 and 0.14), EngineArgs._set_default_args:
# "if device_memory >= 70 * GiB_bytes and "a100" not in device_name" (H100, H200, MI300X: "use larger
# default values") max_num_batched_tokens 8192 and max_num_seqs 1024 for UsageContext.OPENAI_API_SERVER,
# else 2048 and 256 ("Setting large max_num_batched_tokens for A100 reduces throughput, see PR #17885");
# max_num_seqs is capped at max_num_batched_tokens. A GPU it cannot query gets the small defaults.
VLLM_V1_SINCE = (0, 8)
VLLM_V1_LARGE_GPU_BYTES = 70 * 2 ** 30
VLLM_V1_BATCHED_TOKENS = {True: 8192, False: 2048}      # large GPU?
VLLM_V1_MAX_NUM_SEQS = {True: 1024, False: 256}

# SGLang 0.3 sizes its request pool from the KV pool (thousands of slots for these models); running
# requests are in practice bounded by KV memory, not by a count. A large bound stands for that.
SGLANG_MAX_RUNNING = 4096
# SGLang: the scheduler of 0.5 (admission latch, one-step retraction, memory fraction from the GPU's
# memory) from release 0.5.0 on; earlier or unstated releases run 0.3's (read from the 0.3.0 wheel; 0.4
# was not read). 0.5's chunk size and CUDA-graph batch come from the GPU's memory
# (``SGLANG_05_MEMORY_BANDS``).
SGLANG_05_SINCE = (0, 5)
# vLLM's default max_model_len is the model's context (128k for Llama 3.1): the prefill budget is then
# that large; sources that matter here state --max-model-len.
VLLM_DEFAULT_MAX_MODEL_LEN = 8192
# vLLM 0.6.0 overlapped output processing with the next pass and gave the HTTP server its own process;
# releases before it pay host work per scheduled sequence (``VLLM_V0_HOST_S_PER_SEQ``, with its sources).
VLLM_ASYNC_OUTPUT_SINCE = (0, 6)
# Schedule-ahead (``SchedulerConfig.schedule_ahead``): the engine forms iteration N+1 while N runs, so a
# request that arrives meanwhile joins N+2.
# - vLLM's V1 async scheduling ("making the scheduler operate one step ahead of the current
#   execution", vllm-project/vllm PR 19970, opt-in ``--async-scheduling`` from 0.10), on by default
#   from 0.14.0 (PR 27614, merged 2025-12-29, after 0.13.0; 0.14.0's notes: "Async scheduling is now
#   enabled by default ... disable with --no-async-scheduling"; vllm/config/vllm.py turns it on unless
#   pipeline parallelism, an unsupported speculative method or the Ray executor; DigitalOcean's 0.14.1
#   server log in our data: "Asynchronous scheduling is enabled"). The engine then keeps two batches in
#   flight (``max_concurrent_batches`` 2, ``EngineCore.step_with_batch_queue``).
# - SGLang's overlap scheduler (``event_loop_overlap``: receive requests, form and launch batch N+1,
#   then process batch N's result), on by default from 0.3.6 (PR 2067 "Enable overlap by default",
#   server_args.py ``disable_overlap_schedule: bool = False``; read from the 0.3.6 and 0.5.5 wheels),
#   off with ``--disable-overlap-schedule`` or pipeline parallelism.
# - TensorRT-LLM's PyTorch backend overlap scheduler (``_executor_loop_overlap``), on by default
#   (``disable_overlap_scheduler=False``, TorchLlmArgs in 1.0.0; "Enabled by default", 1.2.0 docs),
#   the backend trtllm-serve runs from 1.0 (PR 5717); read from 1.0 on (0.20's default was not
#   verified); off with ``disable_overlap_scheduler``.
VLLM_ASYNC_SCHEDULING_SINCE = (0, 14)
SGLANG_OVERLAP_SINCE = (0, 3, 6)
TRTLLM_OVERLAP_SINCE = (1, 0)
# told on (``--async-scheduling``, or InferenceX's configuration text ``async-scheduling``) or off
# (``--no-async-scheduling``, ``async_scheduling: false``)
_ASYNC_FLAG = re.compile(r"(?<![\w-])(?:--)?async[-_]scheduling\b(?!\s*[:=]\s*(?:false|0|no)\b)")
_NO_ASYNC_FLAG = re.compile(r"(?<![\w-])(?:--)?no[-_]async[-_]scheduling\b"
                            r"|(?<![\w-])async[-_]scheduling\s*[:=]\s*(?:false|0|no)\b")
# vLLM 0.5.5-0.6 (vllm/engine/arg_utils.py, EngineArgs.create_engine_config): "Chunked prefill is
# enabled by default for models with max_model_len > 32K" on CUDA (later releases name ROCm out).
VLLM_LONG_CONTEXT_TOKENS = 32768


# Requests a benchmark sends when a measured row does not state it.
# vLLM's benchmarks/benchmark_serving.py and SGLang's python/sglang/bench_serving.py both default
# --num-prompts to 1000.
CLIENT_DEFAULT_REQUESTS = 1000
# TensorRT-LLM's online figures are measured through Triton's tensorrtllm_backend "with 500 requests"
# (docs/source/performance/perf-overview.md, release 0.14.0, "Online Serving Measurements").
TRTLLM_TRITON_REQUESTS = 500
# trtllm-bench's offline figures: the $num_requests the performance overview prescribes for each
# input/output length pair (same document, "Preparing a Dataset"; more requests for short ones so
# the run reaches a steady state).
TRTLLM_BENCH_REQUESTS = {(128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500, (2048, 128): 3000,
                         (2048, 2048): 1500, (5000, 500): 1500, (1000, 1000): 3000, (500, 2000): 3000,
                         (20000, 2000): 1000}


def benchmark_requests(software: str, input_tokens: float, output_tokens: float) -> int:
    """Requests the stack's published benchmark sends for these lengths (rows that do not say)."""
    text = software.lower()
    if _family(text) == "tensorrt-llm":
        if "trtllm-bench" in text:
            return TRTLLM_BENCH_REQUESTS.get((round(input_tokens), round(output_tokens)), CLIENT_DEFAULT_REQUESTS)
        if "triton" in text:
            return TRTLLM_TRITON_REQUESTS
    return CLIENT_DEFAULT_REQUESTS


# vLLM's `vllm bench serve` paces Poisson arrivals so that the last request leaves at exactly
# n / rate (vllm/benchmarks/serve.py get_request, PR 21108, merged 2025-07: release 0.10 on);
# benchmark_serving.py before it and SGLang's bench_serving send the raw cumulative gaps.
VLLM_PACED_CLIENT_SINCE = (0, 10)


def paced_arrivals(software: str) -> bool:
    """Whether the row's benchmark client rescales its Poisson gaps to the nominal span."""
    text = software.lower()
    if "vllm bench serve" not in text:
        return False
    version = release(text)
    return _family(text) != "vllm" or version is None or version >= VLLM_PACED_CLIENT_SINCE


# Which requests a closed-loop benchmark client reports. GenAI-Perf drives Triton's perf_analyzer,
# which measures windows of a running load until they agree ("stability-percentage", perf_analyzer's
# docs) and discards the ramp-up; vLLM's benchmark_serving.py (and its forks, SGLang's bench_serving)
# computes its metrics over every request it sent (``calculate_metrics`` over all outputs), the first
# ``--max-concurrency`` of them sent at once into an empty server.
STABLE_WINDOW_CLIENTS = ("genai-perf", "perf_analyzer")


def measures_stable_window(software: str) -> bool:
    """Whether the row's benchmark client reports a steady window of its load (GenAI-Perf), not
    every request it sent from an empty server."""
    text = software.lower()
    return any(client in text for client in STABLE_WINDOW_CLIENTS)


def _family(text: str) -> str:
    word = text.split()[0] if text.split() else ""
    for family, prefixes in (("vllm", ("vllm",)), ("sglang", ("sglang",)),
                             ("tensorrt-llm", ("tensorrt-llm", "trt-llm", "trtllm"))):
        if word.startswith(prefixes):
            return family
    return "default"


@dataclass(frozen=True)
class StackScheduler:
    family: str              # vllm, sglang, tensorrt-llm, or default
    config: SchedulerConfig
    note: str                # how the settings were chosen


_VERSION = re.compile(r"\s*\S+\s+v?(\d+)\.(\d+)(?:\.(\d+))?(?:[.-]?(dev|alpha|a|beta|b|rc)(\d*))?",
                      re.IGNORECASE)
# PEP 440 order: dev < alpha < beta < rc < the final release (4)
_PRE_RELEASE = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "rc": 3}


def full_version(software: str) -> tuple[int, ...] | None:
    """The version that follows the software's name as (major, minor, patch, pre-release kind, its
    number): ``lmdeploy 0.1.0a1`` -> (0, 1, 0, 1, 1), ``0.1.0`` -> (0, 1, 0, 4, 0); None if it states
    none there (a number elsewhere in the string, such as a CUDA or ROCm version in parentheses, is
    not the stack's)."""
    m = _VERSION.match(software)
    if m is None:
        return None
    major, minor, patch, kind, number = m.groups()
    pre = (_PRE_RELEASE[kind.lower()], int(number or 0)) if kind else (4, 0)
    return int(major), int(minor), int(patch or 0), *pre


def release(software: str) -> tuple[int, int] | None:
    """(major, minor) of ``full_version`` (``tensorrt-llm 0.9.0 (...)``, ``tensorrt-llm v0.7a``), None
    if the software states no version after its name."""
    version = full_version(software)
    return (version[0], version[1]) if version else None


def _flag(text: str, *names: str) -> str | None:
    found = _found(text, names)
    return found[1] if found else None


# Every launch flag read here. vLLM, SGLang and trtllm-build parse their command lines with
# argparse, which takes any unambiguous prefix of a long option (``allow_abbrev``, on by default):
# dstack's MI300X runs pass ``--num-scheduler-step 15``. A prefix counts when it starts exactly one
# of these names.
READ_FLAGS = ("max-model-len", "max_model_len", "num-scheduler-steps", "num_scheduler_steps", "max-num-seqs",
              "max_num_seqs", "gpu-memory-utilization", "gpu_memory_utilization", "max-num-batched-tokens",
              "max_num_batched_tokens", "enable-chunked-prefill", "enable_chunked_prefill", "mem-fraction-static",
              "mem_fraction_static", "chunked-prefill-size", "max_num_tokens", "max-num-tokens", "max_batch_size",
              "max-batch-size", "kv_cache_free_gpu_mem_fraction", "scheduler_policy", "batch_wait_timeout_iters",
              "batch_wait_max_tokens_ratio", "distributed-executor-backend", "distributed_executor_backend")


# Flags a stack's text is searched for without a value ador reads (switches), and the valued ones
# read beyond READ_FLAGS; with READ_FLAGS, every flag a --stack on the command line may give.
SWITCH_FLAGS = ("enable-chunked-prefill", "enable_chunked_prefill", "enable_chunked_context",
                "disable-overlap-schedule", "disable_overlap_scheduler", "async-scheduling", "async_scheduling",
                "no-async-scheduling", "no_async_scheduling")
OTHER_FLAGS = ("cuda-graph-max-bs", "backend")
_NAMED = ("distributed-executor-backend", "distributed_executor_backend", "scheduler_policy", "backend")
_GIVEN = re.compile(r"--([\w-]+)(?:[ =](?!--)([^\s,;)]+))?")      # a value ends at a space, comma or ")"


def check_stack_text(text: str) -> None:
    """A ``--stack`` given on the command line (a measured row's software is read leniently): a
    stack ador knows, and only flags it reads, each with a value it can use. A flag ador does not
    read would otherwise be ignored in silence, and the run would not be the one the user asked for."""
    if _family(text.lower()) == "default":
        raise ConfigError("--stack", text, "unknown stack (known: vllm, sglang, tensorrt-llm, each optionally "
                                           "with a version and its launch flags)")
    known = tuple(dict.fromkeys(READ_FLAGS + SWITCH_FLAGS + OTHER_FLAGS))
    for flag, value in _GIVEN.findall(text):
        matches = _expand(flag, known)
        if len(matches) > 1:
            raise ConfigError("--stack", text, f"--{flag} is ambiguous (--{', --'.join(matches)})")
        if not matches:
            raise ConfigError("--stack", text, f"--{flag} is not a flag ador reads (it reads --"
                                               f"{', --'.join(sorted(known))})")
        name = matches[0]
        if name in SWITCH_FLAGS or name in _NAMED:
            continue
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--{flag}", value or None, "expected a number") from None
        least_ok = 0 <= number if name.startswith("batch_wait") else 0 < number     # waiting may be off
        if not (least_ok and number < math.inf):
            raise ConfigError(f"--{flag}", value, "must be a positive number (ador models no other setting)")


def _expand(flag: str, names: tuple[str, ...]) -> list[str]:
    """The names a flag as written stands for: itself, else every name it abbreviates (argparse
    takes an abbreviation that is the start of exactly one)."""
    return [n for n in names if n == flag] or [n for n in names if n.startswith(flag)]


def _found(text: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """(the flag as written, its value) for the first of ``names`` the text sets, spelled out or
    abbreviated as argparse allows."""
    given = re.findall(r"--([\w-]+)[ =]([\w.]+)", text)
    for name in names:
        for flag, value in given:
            if flag == name:
                return flag, value
    for name in names:
        for flag, value in given:
            if _expand(flag, READ_FLAGS) == [name]:
                return flag, value
    return None


def _number(text: str, names: tuple[str, ...], kind: type) -> float | None:
    """A launch flag's value as ``kind`` (int or float), None if not given; a value that is not one
    is refused naming the flag, as the stack itself would refuse it."""
    found = _found(text, names)
    if found is None:
        return None
    try:
        return kind(found[1])
    except ValueError:
        raise ConfigError(f"--{found[0]}", found[1],
                          "expected a whole number" if kind is int else "expected a number") from None


def _whole(text: str, *names: str, default: int) -> int:
    value = _number(text, names, int)
    return default if value is None else int(value)


def _real(text: str, *names: str, default: float) -> float:
    value = _number(text, names, float)
    return default if value is None else value


def _has(text: str, name: str) -> bool:
    return re.search(rf"--{name}\b", text) is not None


def scheduler_for(software: str, tp: int, device: Device | None = None, pp: int = 1) -> StackScheduler:
    """``device``: the GPU it runs on, where a stack's defaults depend on it (vLLM's V1 engine);
    ``pp``: pipeline stages (every stack that schedules ahead turns it off under pipeline parallelism)."""
    stack = _scheduler_for(software.lower(), tp, device)
    if pp > 1 and stack.config.schedule_ahead:
        return StackScheduler(stack.family, replace(stack.config, schedule_ahead=False),
                              stack.note + "; not ahead under pipeline parallelism")
    return stack


def _scheduler_for(text: str, tp: int, device: Device | None) -> StackScheduler:
    family = _family(text)
    if family == "vllm":
        version = release(text)
        return _vllm_v1(text, device, version) if version is not None and version >= VLLM_V1_SINCE \
            else _vllm(text, version)
    if family == "sglang":
        return _sglang(text, tp, device)
    if family == "tensorrt-llm":
        return _trtllm(text)
    return StackScheduler("default", SchedulerConfig(), "unknown stack: vLLM's defaults")


def _vllm(text: str, version: tuple[int, int] | None) -> StackScheduler:
    max_len = _whole(text, "max-model-len", "max_model_len", default=VLLM_DEFAULT_MAX_MODEL_LEN)
    steps = _whole(text, "num-scheduler-steps", "num_scheduler_steps", default=1)
    host = VLLM_V0_HOST_S_PER_SEQ if version is not None and version < VLLM_ASYNC_OUTPUT_SINCE else 0.0
    cfg = SchedulerConfig(policy="continuous", max_batched_tokens=max(max_len, VLLM_MIN_BATCHED_TOKENS),
                          scheduler_steps=steps, host_s_per_seq=host)
    cfg = replace(cfg, max_batch=_whole(text, "max-num-seqs", "max_num_seqs", default=cfg.max_batch),
                  memory_fraction=_real(text, "gpu-memory-utilization", "gpu_memory_utilization",
                                        default=cfg.memory_fraction))
    if _chunked_prefill(text, max_len):
        cfg = replace(cfg, policy="chunked", chunk_tokens=_whole(text, "max-num-batched-tokens",
                                                                   default=VLLM_CHUNKED_BATCHED_TOKENS))
    return StackScheduler("vllm", cfg, f"vLLM defaults; max_model_len {max_len}, {steps} scheduler step(s)"
                                       + (f"; {host * 1e6:.0f} us of host work per sequence a step" if host else ""))


def _vllm_async(text: str, version: tuple[int, int]) -> bool:
    """Whether a V1 engine schedules ahead (``VLLM_ASYNC_SCHEDULING_SINCE``, or told)."""
    if _NO_ASYNC_FLAG.search(text) or _flag(text, "distributed-executor-backend",
                                             "distributed_executor_backend") == "ray":
        return False
    return version >= VLLM_ASYNC_SCHEDULING_SINCE or _ASYNC_FLAG.search(text) is not None


def _vllm_v1(text: str, device: Device | None, version: tuple[int, int]) -> StackScheduler:
    large = device is not None and device.hbm_capacity_bytes >= VLLM_V1_LARGE_GPU_BYTES \
        and "a100" not in device.name.lower()
    tokens = _whole(text, "max-num-batched-tokens", "max_num_batched_tokens", default=VLLM_V1_BATCHED_TOKENS[large])
    seqs = _whole(text, "max-num-seqs", "max_num_seqs", default=min(VLLM_V1_MAX_NUM_SEQS[large], tokens))
    # V1's KV manager admits while the blocks are free (no watermark: vllm/v1/core/kv_cache_manager.py
    # allocate_slots, 0.11.0) and its scheduler admits no waiting request in a step that preempted
    # (vllm/v1/core/sched/scheduler.py, ``if not preempted_reqs``)
    ahead = _vllm_async(text, version)
    cfg = SchedulerConfig(policy="chunked", chunk_tokens=tokens, max_batch=seqs, split_prompts=True,
                          kv_watermark=0.0, admit_after_preemption=False, schedule_ahead=ahead)
    cfg = replace(cfg, memory_fraction=_real(text, "gpu-memory-utilization", "gpu_memory_utilization",
                                             default=cfg.memory_fraction))
    return StackScheduler("vllm", cfg, f"vLLM V1 defaults ({'large' if large else 'other'} GPU): "
                                       f"{tokens} batched tokens, {seqs} sequences"
                                       + ("; async scheduling" if ahead else ""))


def _chunked_prefill(text: str, max_len: int) -> bool:
    """vLLM chunks prompts when told (``--enable-chunked-prefill``, not ``=False``), and by default on
    CUDA when the context is long (``max_model_len`` over ``VLLM_LONG_CONTEXT_TOKENS``)."""
    if not _has(text, "enable-chunked-prefill") and not _has(text, "enable_chunked_prefill"):
        return max_len > VLLM_LONG_CONTEXT_TOKENS and "rocm" not in text
    value = _flag(text, "enable-chunked-prefill", "enable_chunked_prefill")
    return value is None or value.lower() not in ("false", "0", "no")


def _sglang(text: str, tp: int, device: Device | None) -> StackScheduler:
    version = release(text)
    modern = version is not None and version >= SGLANG_05_SINCE
    memory = device.hbm_capacity_bytes if device is not None else None
    if modern and memory is not None:
        default_chunk, default_graphs = sglang_05_defaults(tp, memory)
        chunk = _whole(text, "chunked-prefill-size", default=default_chunk)
        graphs = _whole(text, "cuda-graph-max-bs", default=default_graphs)
        default_frac = sglang_05_mem_fraction(tp, memory, chunk, graphs)
    else:
        chunk = _whole(text, "chunked-prefill-size", default=SGLANG_CHUNKED_PREFILL_SIZE)
        default_frac = sglang_mem_fraction(tp)
    frac = _real(text, "mem-fraction-static", "mem_fraction_static", default=default_frac)
    full = full_version(text)
    overlap = full is not None and full[:3] >= SGLANG_OVERLAP_SINCE and not _has(text, "disable-overlap-schedule")
    cfg = SchedulerConfig(policy="sglang", max_batch=SGLANG_MAX_RUNNING, max_batched_tokens=chunk,
                          block_tokens=SGLANG_PAGE_SIZE, kv_watermark=0.0, memory_fraction=frac,
                          memory_basis="reserve",
                          min_new_token_ratio=SGLANG_MIN_NEW_TOKEN_RATIO[(0, 5) if modern else (0, 3)],
                          retract_room_steps=1 if modern else SGLANG_RETRACT_DECODE_STEPS,
                          admission_latch=modern, schedule_ahead=overlap)
    return StackScheduler("sglang", cfg, f"SGLang {'0.5' if modern else '0.3'} scheduler; mem_fraction_static "
                                         f"{frac}, prefill chunk {chunk}" + ("; overlap scheduler" if overlap else ""))


def _trtllm(text: str) -> StackScheduler:
    bench = "trtllm-bench" in text
    tokens = _whole(text, "max_num_tokens", "max-num-tokens", default=TRTLLM_MAX_NUM_TOKENS)
    batch = _whole(text, "max_batch_size", "max-batch-size",
                   default=TRTLLM_BENCH_MAX_BATCH_SIZE if bench else TRTLLM_MAX_BATCH_SIZE)
    frac = _real(text, "kv_cache_free_gpu_mem_fraction",
                 default=TRTLLM_BENCH_KV_FREE_FRACTION if bench else TRTLLM_KV_FREE_FRACTION)
    evict = (_flag(text, "scheduler_policy") or "guaranteed_no_evict") == "max_utilization"
    # the TensorRT engine's flag, and the PyTorch backend's (trtllm-serve, 1.0 on)
    chunking = _has(text, "enable_chunked_context") or _has(text, "enable_chunked_prefill") or bench
    version = release(text)
    # trtllm-serve's own --backend (a benchmark client's --backend names its API, not the engine)
    named = re.search(r"--backend[ =](pytorch|trt|tensorrt)\b", text)
    backend = named.group(1) if named else None
    pytorch = backend == "pytorch" or "pytorch backend" in text or (
        backend is None and "trtllm-serve" in text and version is not None and version >= (1, 0))
    overlap = pytorch and version is not None and version >= TRTLLM_OVERLAP_SINCE \
        and re.search(r"disable_overlap_scheduler\b(?!\s*[:=]?\s*(?:false|0|no)\b)", text) is None
    cfg = SchedulerConfig(policy="chunked", max_batch=batch, chunk_tokens=tokens, block_tokens=TRTLLM_TOKENS_PER_BLOCK,
                          kv_watermark=0.0, memory_fraction=frac, memory_basis="free",
                          reservation="prompt" if evict else "full", split_prompts=chunking,
                          batch_wait_iters=_whole(text, "batch_wait_timeout_iters", default=0),
                          batch_wait_tokens_ratio=_real(text, "batch_wait_max_tokens_ratio", default=0.0),
                          schedule_ahead=overlap)
    return StackScheduler("tensorrt-llm", cfg, f"TensorRT-LLM in-flight batching; max_num_tokens {tokens}, "
                                               f"max_batch_size {batch}, KV {frac:.0%} of free memory, "
                                               f"{'max_utilization' if evict else 'guaranteed_no_evict'}, "
                                               f"context chunking {'on' if chunking else 'off'}"
                                               + (", overlap scheduler" if overlap else "")
                                               + (f", batch waiting {cfg.batch_wait_iters} iterations or "
                                                  f"{cfg.batch_wait_tokens_ratio:.0%} of the tokens"
                                                  if cfg.batch_wait_iters or cfg.batch_wait_tokens_ratio else ""))
