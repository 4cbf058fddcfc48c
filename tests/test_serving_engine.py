"""The serving engine's guarantees: closed-form decode runs equal stepping, schedulers as registered
classes with documented defaults, streaming statistics within their stated resolution, memory that
does not grow with the requests, and intervals that hold when a load is judged again."""
import dataclasses
import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.serving import SCHEDULERS, STEADY, Lengths, Request, SchedulerConfig, Scheduler, burst, poisson, simulate
from ador.serving import config as defaults
from ador.serving.driver import cached_prefix_tokens
from ador.serving.precision import judge, parse_ci
from ador.serving.stacks import scheduler_for
from ador.serving.stats import RELATIVE_RESOLUTION, LogHistogram, repeat_half_width
from ador.workload import get_model, get_precision

FP16 = get_precision("fp16")
L8, L70 = get_model("llama-3-8b"), get_model("llama-3-70b")
A100 = System(device=PRESETS["a100-sxm-80gb"], tp=1)
ADORx8 = System(device=PRESETS["ador-example"], tp=8)
A100x8_2 = System.of(PRESETS["a100-sxm-80gb"], tp=4, devices=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(policy="continuous", block=1, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=0, v1=False,
         from_decode=False, ahead=False)
# a runtime whose first token comes from a decode step, with preemptions (tight memory)
@example(policy="continuous", block=16, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=0, v1=False,
         from_decode=True, ahead=False)
@example(policy="sglang", block=1, memory="tight", full=False, steps=1, split=True, rate=None, seed=0, v1=True,
         from_decode=True, ahead=False)
@example(policy="concurrent", block=16, memory="tight", full=False, steps=3, split=True, rate=6.0, seed=1, v1=False,
         from_decode=True, ahead=False)
@example(policy="chunked", block=16, memory="tight", full=False, steps=1, split=True, rate=None, seed=1, v1=False,
         from_decode=False, ahead=False)
@example(policy="chunked", block=16, memory="tight", full=False, steps=1, split=True, rate=None, seed=1, v1=True,
         from_decode=False, ahead=False)
@example(policy="sglang", block=1, memory="tight", full=False, steps=1, split=True, rate=None, seed=0, v1=False,
         from_decode=False, ahead=False)
@example(policy="sglang", block=1, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=2, v1=True,
         from_decode=False, ahead=False)
# a pool without partly filled blocks (page size 1): the request a preemption took out can come back
# one step later (it overshot by one token), so the closed form must decide again after that step
@example(policy="continuous", block=1, memory="tight", full=False, steps=1, split=False, rate=30.0, seed=0, v1=True,
         from_decode=False, ahead=False)
@example(policy="chunked", block=1, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=0, v1=True,
         from_decode=False, ahead=False)
# SGLang with each request's whole output held from admission: its reservation falls while the pool does
# not fill, so the head of the queue can get in mid-run even at the ratio's floor
@example(policy="sglang", block=1, memory="tight", full=True, steps=3, split=False, rate=30.0, seed=3, v1=False,
         from_decode=False, ahead=False)
# schedule-ahead (vLLM's async scheduling): arrivals seen one iteration late, under preemption and in a
# Poisson stream whose arrivals fall inside closed-form runs
@example(policy="chunked", block=16, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=0, v1=True,
         from_decode=False, ahead=True)
@example(policy="continuous", block=16, memory="default", full=False, steps=3, split=True, rate=6.0, seed=1, v1=False,
         from_decode=False, ahead=True)
@example(policy="sglang", block=1, memory="tight", full=False, steps=1, split=True, rate=30.0, seed=2, v1=True,
         from_decode=False, ahead=True)
@given(policy=st.sampled_from(["continuous", "chunked", "concurrent", "disaggregated", "sglang"]),
       block=st.sampled_from([1, 16, 64]), memory=st.sampled_from(["tight", "default"]), full=st.booleans(),
       steps=st.sampled_from([1, 3]), split=st.booleans(), rate=st.sampled_from([None, 6.0, 30.0]),
       seed=st.integers(0, 3), v1=st.booleans(), from_decode=st.booleans(),
       ahead=st.booleans())
def test_closed_form_decode_runs_equal_stepping_one_iteration_at_a_time(policy, block, memory, full, steps, split,
                                                                          rate, seed, v1, from_decode, ahead):
    assume(not ahead or policy in defaults.AHEAD_POLICIES)     # (refused by name elsewhere: no duplicate draws)
    system, model, tight = {"concurrent": (ADORx8, L70, 0.55), "disaggregated": (A100x8_2, L70, 0.55)}.get(
        policy, (A100, L8, 0.3))          # tight: a KV cache for a few dozen requests, so preemption happens
    if from_decode and policy != "disaggregated":    # (refused there) first tokens from a decode step
        system = dataclasses.replace(system, runtime=dataclasses.replace(system.runtime, first_token_from_decode=True))
    cfg = SchedulerConfig(policy=policy, block_tokens=block, memory_fraction=tight if memory == "tight" else 0.9,
                          scheduler_steps=steps,
                          reservation="full" if full else "prompt", split_prompts=split, max_batch=96,
                          kv_watermark=0.0 if v1 else 0.01, admit_after_preemption=not v1,  # v1: vLLM V1's rules
                          # sglang: v1 picks 0.5's admission latch and one-step retraction, else 0.3's
                          admission_latch=v1, retract_room_steps=1 if v1 else 20,
                          min_new_token_ratio=0.098 if v1 else 0.1,
                          schedule_ahead=ahead)
    prompt, output = Lengths("lognormal", 700, 1.0), Lengths("lognormal", 300, 1.0)
    reqs = burst(150, prompt, output, seed=seed) if rate is None else poisson(rate, 150, prompt, output, seed=seed)
    fast = simulate(system, model, FP16, reqs, config=cfg)
    slow = simulate(system, model, FP16, reqs, config=cfg, step_by_step=True)
    assert (fast.iterations, fast.preemptions, fast.n_finished) == (slow.iterations, slow.preemptions, slow.n_finished)
    for name in ("ttft_ms", "tbt_ms", "tpot_ms", "e2e_ms"):
        for stat, value in getattr(slow, name).items():
            assert getattr(fast, name)[stat] == pytest.approx(value, rel=1e-9, abs=1e-9), (name, stat)
    assert fast.makespan_s == pytest.approx(slow.makespan_s, rel=1e-12)


def test_policies_are_classes_in_a_registry_with_the_three_hooks():
    assert set(SCHEDULERS) == {"continuous", "chunked", "concurrent", "disaggregated", "sglang"}
    for cls in SCHEDULERS.values():
        assert issubclass(cls, Scheduler) and cls.name in SCHEDULERS
        for hook in ("admit", "next_batch", "on_batch_end"):
            assert callable(getattr(cls, hook))
    with pytest.raises(ConfigError, match="policy='fifo'"):
        simulate(A100, L8, FP16, burst(2, Lengths(), Lengths()), config=SchedulerConfig(policy="fifo"))
    # SGLang's ratio falls from 0.7 to its floor: a floor above 0.7 is refused, not clamped
    SchedulerConfig(policy="sglang", min_new_token_ratio=0.7).check()
    with pytest.raises(ConfigError, match="min_new_token_ratio=0.8"):
        SchedulerConfig(policy="sglang", min_new_token_ratio=0.8).check()


def test_scheduler_defaults_are_the_real_systems_documented_ones():
    cfg = SchedulerConfig()
    assert (cfg.max_batch, cfg.block_tokens, cfg.kv_watermark, cfg.memory_fraction) == (256, 16, 0.01, 0.9)  # vLLM
    assert cfg.chunk_tokens == 512                                                              # Sarathi-Serve
    assert (defaults.SGLANG_CHUNKED_PREFILL_SIZE, defaults.TRTLLM_MAX_NUM_TOKENS) == (8192, 8192)
    vllm = scheduler_for("vllm 0.6.0 (openai api_server --num-scheduler-steps 10 --max_model_len 4096)", 1).config
    assert (vllm.policy, vllm.scheduler_steps, vllm.max_batched_tokens) == ("continuous", 10, 4096)
    sglang = scheduler_for("sglang 0.3.0 (launch_server --disable-radix-cache)", 4).config
    assert (sglang.policy, sglang.memory_fraction, sglang.block_tokens) == ("sglang", 0.85, 1)
    assert (sglang.min_new_token_ratio, sglang.retract_room_steps, sglang.admission_latch) == (0.1, 20, False)
    # 0.5.5: mem_fraction_static from the GPU's memory (13,440 MiB reserved on an 80 GiB GPU at TP1, 14,848
    # at TP8; 141 GiB: 0.907), 0.098 floor, one-step retraction, the batch_is_full latch
    h100 = scheduler_for("sglang v0.5.5.post1 (server: launch_server)", 1, PRESETS["h100-sxm-80gb"]).config
    assert (h100.memory_fraction, h100.max_batched_tokens, h100.memory_basis) == (0.836, 8192, "reserve")
    assert (h100.min_new_token_ratio, h100.retract_room_steps, h100.admission_latch) == (0.098, 1, True)
    assert scheduler_for("sglang v0.5.5", 8, PRESETS["h100-sxm-80gb"]).config.memory_fraction == 0.819
    assert scheduler_for("sglang v0.5.5", 1, PRESETS["h200-sxm-141gb"]).config.memory_fraction == 0.907
    assert scheduler_for("sglang v0.5.5", 8, PRESETS["mi300x-192gb"]).config.max_batched_tokens == 16384
    # under 60 GiB 0.5 takes 4,096-token chunks and 32 (TP < 4) or 160 CUDA graphs, and no 10 GiB floor:
    # 512 + 1.5 x 4,096 + 2 x 32 + 128 = 6,848 MiB of a 40,960 MiB A100, 7,488 of a 46,068 MiB L40S at TP4
    a100_40 = scheduler_for("sglang v0.5.5", 1, PRESETS["a100-sxm-40gb"]).config
    assert (a100_40.max_batched_tokens, a100_40.memory_fraction) == (4096, 0.833)
    assert scheduler_for("sglang v0.5.5", 4, PRESETS["l40s-48gb"]).config.memory_fraction == 0.837
    assert scheduler_for("sglang v0.5.5 (--cuda-graph-max-bs 512)", 1, PRESETS["a100-sxm-40gb"]).config \
        .memory_fraction == round((40960 - 512 - 1.5 * 4096 - 2 * 512 - 128) / 40960, 3)
    assert [defaults.sglang_05_defaults(tp, gib * 2 ** 30) for gib, tp in ((16, 1), (24, 1), (24, 4), (141, 1))] \
        == [(2048, 8), (2048, 24), (2048, 80), (8192, 256)]
    assert scheduler_for("sglang 0.3.0 (--mem-frac 0.88)", 4).config.memory_fraction == 0.88
    trt = scheduler_for("tensorrt-llm 0.14.0 (trtllm-bench; TRT engine)", 1).config
    assert (trt.policy, trt.chunk_tokens, trt.reservation, trt.memory_basis, trt.block_tokens) == \
        ("chunked", 8192, "full", "free", 64)
    trt10 = scheduler_for("tensorrt-llm 0.10.0 (--scheduler_policy max_utilization --max_num_tokens 2048)", 1).config
    assert (trt10.reservation, trt10.chunk_tokens) == ("prompt", 2048)
    assert scheduler_for("tensorrt-llm 0.14.0 (Triton tensorrtllm_backend)", 4).config.split_prompts is False
    assert scheduler_for("tensorrt-llm v1.2.0rc1 (trtllm-serve M --enable_chunked_prefill)", 1).config.split_prompts
    assert scheduler_for("mystery-server 1.0", 1).family == "default"


def test_launch_flags_may_be_abbreviated_as_argparse_allows():
    """vLLM, SGLang and trtllm-build take any unambiguous prefix of a long option (dstack's MI300X
    runs pass --num-scheduler-step 15); a prefix of two flags is nobody's."""
    cfg = scheduler_for("vllm 0.6.3 (vllm serve M --num-scheduler-step 15 --max-num-seq 1024)", 8).config
    assert (cfg.scheduler_steps, cfg.max_batch) == (15, 1024)
    assert scheduler_for("sglang 0.3.0 (--mem-frac 0.88)", 4).config.memory_fraction == 0.88
    ambiguous = scheduler_for("vllm 0.6.3 (vllm serve M --max-num 64)", 8).config     # -seqs or -batched-tokens
    assert ambiguous == scheduler_for("vllm 0.6.3 (vllm serve M)", 8).config
    exact = scheduler_for("vllm 0.6.3 (vllm serve M --max-num-seqs 8 --max-num-seq 9)", 8).config
    assert exact.max_batch == 8                                         # the spelled-out flag wins


@pytest.mark.parametrize("software, flag, value", [
    ("vllm 0.6.0 (api_server --max-num-seqs abc)", "--max-num-seqs", "abc"),
    ("vllm 0.6.0 (api_server --max_model_len 4k)", "--max_model_len", "4k"),
    ("vllm 0.11.0 (vllm serve M --max-num-batched-tokens 8192.5)", "--max-num-batched-tokens", "8192.5"),
    ("vllm 0.11.0 (vllm serve M --gpu-memory-utilization high)", "--gpu-memory-utilization", "high"),
    ("sglang 0.3.0 (--mem-frac x)", "--mem-frac", "x"),
    ("sglang 0.3.0 (--chunked-prefill-size 1.5)", "--chunked-prefill-size", "1.5"),
    ("tensorrt-llm 0.14.0 (trtllm-bench --max_batch_size lots)", "--max_batch_size", "lots"),
    ("tensorrt-llm 0.14.0 (--kv_cache_free_gpu_mem_fraction most)", "--kv_cache_free_gpu_mem_fraction", "most"),
])
def test_a_launch_flag_that_is_not_a_number_is_refused_naming_it(software, flag, value):
    with pytest.raises(ConfigError) as err:
        scheduler_for(software, 1)
    assert (err.value.field, err.value.value) == (flag, value)


def test_a_zero_launch_flag_is_not_taken_for_a_missing_one():
    """A flag given as 0 is the stack's value (refused when the simulation checks its settings),
    never replaced by the default as a flag left out is."""
    for software, name in (("tensorrt-llm 0.14.0 (trtllm-bench --max_batch_size 0)", "max_batch"),
                           ("vllm 0.11.0 (vllm serve M --max-num-batched-tokens 0)", "chunk_tokens"),
                           ("sglang 0.3.0 (--mem-frac 0)", "memory_fraction")):
        cfg = scheduler_for(software, 1).config
        assert getattr(cfg, name) == 0
        with pytest.raises(ConfigError, match=r"=0(\.0)?: must be"):
            cfg.check()


@pytest.mark.parametrize("software, policy", [
    ("vllm 0.6.3 (vllm serve --max-model-len 4096)", "continuous"),
    ("vllm 0.6.3 (vllm serve --max-model-len 4096 --enable-chunked-prefill)", "chunked"),
    ("vllm 0.6.3 (vllm serve --max-model-len 91680)", "chunked"),          # vLLM turns chunking on itself
    ("vllm 0.6.3 (vllm serve --max-model-len 91680 --enable-chunked-prefill=False)", "continuous"),
    ("vllm 0.6.3 ROCm (vllm serve --max-model-len 91680)", "continuous"),   # on CUDA only
])
def test_vllm_chunks_prompts_when_told_or_when_the_context_is_long(software, policy):
    cfg = scheduler_for(software, 8).config
    assert cfg.policy == policy
    if policy == "chunked":
        assert cfg.chunk_tokens == 512


@pytest.mark.parametrize("software, gpu, expected", [
    ("vllm 0.11.0 (server: vllm serve Qwen/Qwen3-14B)", "h100-sxm-80gb", (8192, 1024)),
    ("vllm v0.11.0 (server: vllm serve Qwen/Qwen3-14B)", "h200-sxm-141gb", (8192, 1024)),
    ("vllm 0.14.1 V1 engine", "mi300x-192gb", (8192, 1024)),
    ("vllm 0.11.0 (server: vllm serve Qwen/Qwen3-14B)", "a100-sxm-80gb", (2048, 256)),    # A100 named out
    ("vllm 0.11.0", "l40s-48gb", (2048, 256)),                                              # under 70 GiB
    ("vllm 0.11.0", None, (2048, 256)),                                                     # GPU not known
    ("vllm 0.11.0 (vllm serve --max-num-batched-tokens 4096 --max-num-seqs 64)", "h100-sxm-80gb", (4096, 64)),
    ("vllm 0.8.0", "h100-sxm-80gb", (8192, 1024)),
])
def test_vllm_v1_chunks_every_iteration_with_its_gpus_defaults(software, gpu, expected):
    """From 0.8 vLLM runs its V1 engine: decodes first, prompt chunks fill a token budget whose
    default (and the sequence cap's) depends on the GPU's memory and name."""
    from ador.hardware import PRESETS
    cfg = scheduler_for(software, 1, PRESETS[gpu] if gpu else None).config
    assert (cfg.policy, cfg.split_prompts) == ("chunked", True)
    assert (cfg.chunk_tokens, cfg.max_batch) == expected
    v0 = scheduler_for("vllm 0.7.3 (vllm serve --max-model-len 4096)", 1, PRESETS["h100-sxm-80gb"]).config
    assert v0.policy == "continuous"                 # the V0 engine before 0.8: prefill-first


def test_multi_step_scheduling_delays_new_prompts_but_not_throughput():
    reqs = poisson(6.0, 400, Lengths("fixed", 300), Lengths("fixed", 200), seed=2)
    one = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(scheduler_steps=1))
    ten = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(scheduler_steps=10))
    assert ten.ttft_ms["p50"] > one.ttft_ms["p50"]          # prompts wait for the block of steps to end
    assert ten.output_tok_s == pytest.approx(one.output_tok_s, rel=0.03)


def test_full_reservation_never_preempts_and_prompt_reservation_does_under_pressure():
    reqs = burst(300, Lengths("fixed", 1500), Lengths("fixed", 1500))
    tight = dict(memory_fraction=0.3, max_batch=256)
    assert simulate(A100, L8, FP16, reqs, config=SchedulerConfig(reservation="full", **tight)).preemptions == 0
    assert simulate(A100, L8, FP16, reqs, config=SchedulerConfig(reservation="prompt", **tight)).preemptions > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-6, 1e4), min_size=1, max_size=400), st.sampled_from([0.5, 0.9, 0.99]))
def test_histogram_quantiles_are_within_the_bucket_resolution(values, q):
    """Percentiles as benchmark clients compute them (numpy's linear interpolation between ranks),
    within half a bucket."""
    h = LogHistogram()
    for v in values:
        h.add(v)
    exact = float(np.percentile(values, 100 * q))
    assert h.quantile(q) == pytest.approx(exact, rel=RELATIVE_RESOLUTION / 2)
    assert h.mean == pytest.approx(sum(values) / len(values), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-3, 1e3), st.integers(1, 50)), min_size=1, max_size=30),
       st.floats(0.0, 1.0))
def test_a_weighted_sample_counts_as_that_many_samples(pairs, q):
    h = LogHistogram()
    for v, w in pairs:
        h.add(v, w)
    expanded = np.repeat([v for v, _ in pairs], [w for _, w in pairs])
    assert h.quantile(q) == pytest.approx(float(np.percentile(expanded, 100 * q)), rel=RELATIVE_RESOLUTION / 2)


def test_histogram_weights_merges_and_bounded_size():
    h = LogHistogram()
    for _ in range(3):
        h.add(2.0, 98)
    h.add(10.0, 6)
    assert h.quantile(0.5) == pytest.approx(2.0, rel=1e-3) and h.quantile(0.99) == pytest.approx(10.0, rel=1e-3)
    other = LogHistogram()
    other.add(0.0)
    merged = h.merge(other)
    assert merged.weight == 301 and merged.quantile(0.0) == 0.0
    rng = np.random.default_rng(1)
    big = LogHistogram()
    for v in rng.lognormal(-3, 1, 200_000):
        big.add(float(v))
    assert len(big) < 20_000          # buckets, not samples: 0.1% wide over ~8 decades at most


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_requests():
    """Peak Python memory of a 40,000-request run is within a few MB of a 4,000-request run: the
    simulator keeps only the requests in the system."""
    def peak(n: int) -> int:
        reqs = poisson(20.0, n, Lengths("lognormal", 400, 1.0), Lengths("lognormal", 100, 1.0), seed=1)
        tracemalloc.start()
        simulate(A100, L8, FP16, reqs)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top
    simulate(A100, L8, FP16, poisson(20.0, 500, Lengths("lognormal", 400, 1.0), Lengths("lognormal", 100, 1.0)))
    small, large = peak(4_000), peak(40_000)
    assert large - small < 4 * 2 ** 20, (small, large)


def test_steady_window_counts_only_the_middle_of_the_run():
    reqs = poisson(8.0, 1000, Lengths("lognormal", 400, 1.0), Lengths("lognormal", 100, 1.0), seed=3)
    every = simulate(A100, L8, FP16, reqs)
    steady = simulate(A100, L8, FP16, reqs, window=STEADY)
    assert every.measured_requests == 1000 and steady.measured_requests == 800
    assert every.n_finished == steady.n_finished == 1000      # all are served; 800 are counted
    with pytest.raises(ConfigError, match="window"):
        simulate(A100, L8, FP16, reqs, window=(0.5, 0.2))


def test_repeat_interval_formula():
    xs = [10.0, 12.0, 11.0, 13.0]
    s = np.std(xs, ddof=1)
    assert repeat_half_width(xs) == pytest.approx(3.182 * s * math.sqrt(2 / 4), rel=1e-3)
    assert repeat_half_width([1.0]) == math.inf
    assert parse_ci("5%") == 0.05 and parse_ci(0.1) == 0.1
    with pytest.raises(ConfigError, match="ci"):
        parse_ci("150%")


def _judged_p99_tbt(first_seed: int):
    def run(seed: int, n: int):
        reqs = poisson(12.0, n, Lengths("lognormal", 400, 1.0), Lengths("lognormal", 120, 1.0), seed=seed)
        return simulate(A100, L8, FP16, reqs, window=STEADY)
    return judge(run, ("tbt_p99_ms", "ttft_p99_ms"), ci=None, requests=300, min_reps=4,
                 first_seed=first_seed).intervals


@pytest.mark.slow
def test_a_load_judged_again_with_other_seeds_lands_within_the_reported_interval():
    """The same design and load judged twice with disjoint seeds: the second p99 TBT (and p99 TTFT)
    falls within the first judgement's 95% repeat interval. Over 40 pairs of judgements at least 35
    must (a 95% interval misses 2 in 40 on average; 5 misses would happen 5% of the time)."""
    hits = {"tbt_p99_ms": 0, "ttft_p99_ms": 0}
    for trial in range(40):
        first, second = _judged_p99_tbt(1000 * trial), _judged_p99_tbt(1000 * trial + 500)
        for name in hits:
            hits[name] += abs(second[name].value - first[name].value) <= first[name].half_width
    assert all(h >= 35 for h in hits.values()), hits


def test_judge_sizes_the_run_until_the_interval_is_within_the_target():
    def run(seed: int, n: int):
        reqs = poisson(8.0, n, Lengths("lognormal", 400, 1.0), Lengths("lognormal", 100, 1.0), seed=seed)
        return simulate(A100, L8, FP16, reqs, window=STEADY)
    j = judge(run, ("tbt_p50_ms", "ttft_p99_ms"), ci=0.05, requests=200, max_requests=200_000)
    assert j.met and j.replications >= 3
    for iv in j.intervals.values():
        assert iv.half_width <= 0.05 * iv.value
    assert j.requests_per_replication >= 200


def test_one_client_in_a_closed_loop_sends_one_request_at_a_time():
    """Concurrency 1: each request is sent when the previous one ends, so every request sees an idle
    replica: its TTFT and end-to-end latency are those of a lone request, however many follow."""
    lone = simulate(A100, L8, FP16, burst(1, Lengths("fixed", 500), Lengths("fixed", 64)))
    loop = simulate(A100, L8, FP16, burst(30, Lengths("fixed", 500), Lengths("fixed", 64)), clients=1)
    assert loop.peak_in_service == 1 and loop.n_finished == 30
    assert loop.ttft_ms["mean"] == pytest.approx(lone.ttft_ms["mean"], rel=1e-9)
    assert loop.e2e_ms["mean"] == pytest.approx(lone.e2e_ms["mean"], rel=1e-9)
    # the runtime's front-end cost adds to each request's latency but does not hold the replica in a
    # closed loop (ador/serving/replica.py), so it is in the makespan once
    overhead = A100.runtime.request_overhead_s
    assert overhead > 0
    assert loop.makespan_s == pytest.approx(30 * (lone.makespan_s - overhead) + overhead, rel=1e-9)


@pytest.mark.parametrize("clients", [2, 7, 32])
def test_closed_loop_latency_counts_from_sending_not_from_the_burst(clients):
    """The same schedule as a burst served at most ``clients`` at a time (same throughput), but a
    request's latency starts when its client sends it, not at time zero."""
    reqs = burst(200, Lengths("fixed", 300), Lengths("fixed", 100))
    capped = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(max_batch=clients))
    loop = simulate(A100, L8, FP16, reqs, clients=clients)
    assert loop.output_tok_s == pytest.approx(capped.output_tok_s, rel=1e-9)
    assert loop.peak_in_service <= clients
    assert loop.ttft_ms["mean"] < capped.ttft_ms["mean"] / 5          # no queue from t = 0
    assert loop.e2e_ms["mean"] <= loop.makespan_s * 1e3 * clients / 200 * 1.5   # Little's law, ramp included


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_closed_loop_needs_a_whole_positive_number_of_clients(bad):
    with pytest.raises(ConfigError, match="concurrency"):
        simulate(A100, L8, FP16, burst(4, Lengths(), Lengths()), clients=bad)


def test_a_closed_loop_is_refused_where_prefill_and_decode_run_apart():
    with pytest.raises(ConfigError, match="policy='disaggregated'"):
        simulate(A100x8_2, L70, FP16, burst(8, Lengths(), Lengths()),
                 config=SchedulerConfig(policy="disaggregated"), clients=4)


def test_closed_loop_clients_are_shared_equally_by_the_replicas():
    two = System.of(PRESETS["a100-sxm-80gb"], tp=1, devices=2)
    reqs = burst(40, Lengths("fixed", 200), Lengths("fixed", 50))
    assert simulate(two, L8, FP16, reqs, clients=4).mean_in_system == pytest.approx(4, rel=0.05)
    with pytest.raises(ConfigError, match="concurrency=3"):
        simulate(two, L8, FP16, reqs, clients=3)



def test_tpot_leaves_one_token_answers_out_as_benchmark_clients_do():
    """TPOT is a request's mean gap after its first token; vLLM's and SGLang's clients count only
    requests with more than one output token. A one-token answer has no gap, so it meets the TBT SLO."""
    from ador.serving.requests import RequestArrays
    n = 20
    arrivals = np.arange(n) * 5.0                                     # spaced out: each runs alone
    mixed = simulate(A100, L8, FP16, RequestArrays(arrivals, np.full(n, 256), np.array([1, 101] * (n // 2))),
                     ttft_slo_ms=1e4, tbt_slo_ms=1e-3)
    longer = simulate(A100, L8, FP16, RequestArrays(arrivals[1::2], np.full(n // 2, 256), np.full(n // 2, 101)))
    assert mixed.tpot_ms == pytest.approx(longer.tpot_ms, rel=1e-9)
    assert mixed.tpot_ms["p50"] > 1.0
    assert mixed.slo_attainment == pytest.approx(0.5)        # the one-token half; the others miss a 1 us TBT


def test_paced_poisson_arrivals_end_at_the_nominal_span_as_vllm_bench_serve_sends_them():
    from ador.serving.stacks import paced_arrivals
    for seed in range(5):
        raw = poisson(0.5, 300, Lengths(), Lengths(), seed=seed).arrival_s
        paced = poisson(0.5, 300, Lengths(), Lengths(), seed=seed, paced=True).arrival_s
        assert raw[0] == 0.0 and paced[-1] == pytest.approx(600.0, rel=1e-12)
        assert np.all(np.diff(paced) > 0)
        scale = np.diff(paced) / np.diff(raw)               # the same gaps, one factor for all
        assert scale == pytest.approx(np.full(299, scale[0]), rel=1e-9)
    assert paced_arrivals("vllm 0.14.1 V1 engine (...; client: vllm bench serve --request-rate R)")
    assert not paced_arrivals("vllm 0.9.2 (...; client: vllm bench serve --request-rate R)")
    assert not paced_arrivals("vllm 0.6.3 (client benchmark_serving.py --request-rate QPS)")
    assert not paced_arrivals("sglang 0.3.0 (client python -m sglang.bench_serving)")


def test_vllm_v1_admits_without_a_watermark_and_not_in_an_iteration_that_preempted():
    """vLLM V1 (0.8 on): no KV watermark, and no waiting request admitted in a step that preempted.
    Under memory pressure the gate changes the run; with room to spare it changes nothing."""
    v1 = scheduler_for("vllm 0.11.0 (vllm serve M)", 1, PRESETS["h100-sxm-80gb"]).config
    assert (v1.kv_watermark, v1.admit_after_preemption) == (0.0, False)
    assert scheduler_for("vllm 0.6.3 (vllm serve M)", 1).config.admit_after_preemption
    reqs = burst(150, Lengths("lognormal", 700, 1.0), Lengths("lognormal", 300, 1.0), seed=1)
    for fraction, pressure in ((0.25, True), (0.9, False)):
        runs = [simulate(A100, L8, FP16, reqs, config=SchedulerConfig(
            policy="chunked", memory_fraction=fraction, chunk_tokens=2048, kv_watermark=0.0,
            admit_after_preemption=gate)) for gate in (True, False)]
        assert (runs[0].preemptions > 0) == pressure
        if pressure:       # a preempted request is not taken back in the step that preempted it
            assert runs[1].preemptions < runs[0].preemptions and runs[0].ttft_ms != runs[1].ttft_ms
        else:
            assert runs[0].ttft_ms == runs[1].ttft_ms and runs[0].tpot_ms == runs[1].tpot_ms


@pytest.mark.parametrize("policy", defaults.AHEAD_POLICIES)
@pytest.mark.parametrize("arrives", [0.9, 1.0, 1.37])
def test_schedule_ahead_delays_a_request_that_arrives_while_the_replica_is_busy_by_one_iteration(policy, arrives):
    """vLLM's async scheduling: the iteration after the current one was formed when the current one
    started, so a prompt arriving during a decode run is taken one decode step later than by the
    synchronous scheduler; everything else is the same."""
    reqs = [Request(0, 0.0, 200, 400), Request(1, arrives, 100, 2)]

    def run(ahead: bool):
        cfg = SchedulerConfig(policy=policy, schedule_ahead=ahead)
        return simulate(A100, L8, FP16, reqs, config=cfg), simulate(A100, L8, FP16, reqs, config=cfg,
                                                                   step_by_step=True)
    (sync, sync_steps), (ahead, ahead_steps) = run(False), run(True)
    for fast, slow in ((sync, sync_steps), (ahead, ahead_steps)):
        assert fast.ttft_ms["mean"] == pytest.approx(slow.ttft_ms["mean"], rel=1e-12)
    # the lone first request is taken at once either way (an idle replica decides when it arrives)
    first = simulate(A100, L8, FP16, reqs[:1], config=SchedulerConfig(policy=policy, schedule_ahead=True))
    assert first.ttft_ms["mean"] == pytest.approx(simulate(A100, L8, FP16, reqs[:1]).ttft_ms["mean"], rel=1e-12)
    # the second request's TTFT is one batch-of-one decode step longer (the mean of two: twice the shift)
    step_ms = sync.tbt_ms["p50"]
    delay_ms = 2 * (ahead.ttft_ms["mean"] - sync.ttft_ms["mean"])
    assert delay_ms == pytest.approx(step_ms, rel=0.02)


@pytest.mark.parametrize("policy, steps", [("chunked", 1), ("sglang", 1), ("continuous", 3)])
@pytest.mark.parametrize("clients", [3, 16])
def test_a_closed_loop_under_schedule_ahead_sends_the_next_request_one_iteration_later(clients, policy, steps):
    """A client's next request, sent when its previous one ends, is seen by the decision formed when
    the iteration that ended it started: the run equals stepping, and is slower than synchronous."""
    reqs = burst(120, Lengths("lognormal", 300, 1.0), Lengths("lognormal", 60, 1.0), seed=2)
    cfg = SchedulerConfig(policy=policy, schedule_ahead=True, scheduler_steps=steps,
                          memory_fraction=0.3 if policy == "sglang" else 0.9)
    fast = simulate(A100, L8, FP16, reqs, config=cfg, clients=clients)
    slow = simulate(A100, L8, FP16, reqs, config=cfg, clients=clients, step_by_step=True)
    sync = simulate(A100, L8, FP16, reqs, config=dataclasses.replace(cfg, schedule_ahead=False), clients=clients)
    assert fast.n_finished == slow.n_finished == 120
    assert fast.makespan_s == pytest.approx(slow.makespan_s, rel=1e-12)
    assert fast.ttft_ms["mean"] == pytest.approx(slow.ttft_ms["mean"], rel=1e-12)
    assert fast.makespan_s > sync.makespan_s


@pytest.mark.parametrize("policy", ["concurrent", "disaggregated"])
def test_schedule_ahead_is_refused_by_name_where_it_is_not_modelled(policy):
    with pytest.raises(ConfigError, match="schedule_ahead"):
        SchedulerConfig(policy=policy, schedule_ahead=True).check()


@pytest.mark.parametrize("policy", defaults.AHEAD_POLICIES)
def test_schedule_ahead_takes_a_request_that_arrives_during_the_last_iteration_at_once(policy):
    """Nothing was formed ahead while the replica ran its last request's last step: a prompt that
    arrived during it is taken when the step ends, as the synchronous scheduler takes it."""
    alone = simulate(A100, L8, FP16, [Request(0, 0.0, 200, 3)], config=SchedulerConfig(policy=policy))
    step_s = alone.tbt_ms["p50"] / 1e3
    reqs = [Request(0, 0.0, 200, 3), Request(1, alone.makespan_s - step_s / 2, 100, 5)]
    sync = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(policy=policy))
    for step_by_step in (False, True):
        ahead = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(policy=policy, schedule_ahead=True),
                         step_by_step=step_by_step)
        assert ahead.ttft_ms["mean"] == pytest.approx(sync.ttft_ms["mean"], rel=1e-12)
        assert ahead.makespan_s == pytest.approx(sync.makespan_s, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(prompt=st.integers(1, 5000), share=st.floats(0, 1), block=st.sampled_from([1, 16, 64]))
def test_a_prefix_cache_serves_whole_blocks_and_never_the_last_prompt_token(prompt, share, block):
    cached = cached_prefix_tokens(prompt, share, block)
    assert cached % block == 0 and 0 <= cached <= prompt - 1 and cached <= share * prompt
    # what is left uncached is less than a block beyond the share (or the last token's block)
    assert cached >= min(share * prompt, prompt - 1) - block


@pytest.mark.parametrize("policy", ["continuous", "chunked", "sglang", "concurrent", "disaggregated"])
@pytest.mark.parametrize("share", [0.5, 1.0])
def test_cached_prompts_prefill_only_their_uncached_part_and_closed_form_runs_still_equal_stepping(policy, share):
    system, model = {"concurrent": (ADORx8, L70), "disaggregated": (A100x8_2, L70)}.get(policy, (A100, L8))
    reqs = poisson(6.0, 120, Lengths("lognormal", 1500, 1.0), Lengths("lognormal", 200, 1.0), seed=3)
    cfg = SchedulerConfig(policy=policy)
    cold = simulate(system, model, FP16, reqs, config=cfg)
    fast = simulate(system, model, FP16, reqs, config=cfg, prefix_cached=share)
    slow = simulate(system, model, FP16, reqs, config=cfg, prefix_cached=share, step_by_step=True)
    assert fast.iterations == slow.iterations and fast.n_finished == slow.n_finished == 120
    for stat, value in slow.ttft_ms.items():
        assert fast.ttft_ms[stat] == pytest.approx(value, rel=1e-9)
    assert fast.ttft_ms["mean"] < cold.ttft_ms["mean"]


def test_a_lone_request_waits_less_the_more_of_its_prompt_is_cached():
    reqs = [Request(0, 0.0, 3000, 4)]
    ttft = [simulate(A100, L8, FP16, reqs, prefix_cached=s).ttft_ms["mean"] for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(ttft, ttft[1:]))
    # a fully cached prompt computes its last partly filled block (3000 = 187 x 16 + 8 tokens) attending
    # to the 2,992 cached ones: more than those 8 tokens alone, less than the next block's worth cold
    last_block = [simulate(A100, L8, FP16, [Request(0, 0.0, n, 4)]).ttft_ms["mean"] for n in (8, 24)]
    assert last_block[0] < ttft[-1] < ttft[-2]


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, True, "1"])
def test_a_prefix_cache_share_outside_0_1_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="prefix_cached"):
        simulate(A100, L8, FP16, [Request(0, 0.0, 100, 4)], prefix_cached=bad)


def test_a_cached_prompt_still_holds_its_whole_kv_cache():
    """The cached blocks are the request's own KV cache while it runs (referenced, not evictable): a
    KV-bound replica never holds more requests than their whole prompts' caches fit."""
    reqs = burst(150, Lengths("fixed", 1500), Lengths("fixed", 100))
    cfg = SchedulerConfig(policy="chunked", memory_fraction=0.3)
    warm = simulate(A100, L8, FP16, reqs, config=cfg, prefix_cached=1.0)
    assert warm.n_finished == 150
    assert 1 < warm.peak_in_service <= warm.kv_capacity_tokens // 1500


@pytest.mark.parametrize("software, ahead", [
    ("vllm 0.14.1 V1 engine (server: python3 -m vllm.entrypoints.openai.api_server --model m)", True),
    ("vllm 0.14.1 (vllm serve m --no-async-scheduling)", False),
    ("vllm 0.14.1 (vllm serve m kv-cache-dtype fp8 no-async-scheduling)", False),   # configuration text
    ("vllm 0.11.0 (async_scheduling: false)", False),
    ("vllm 0.11.0 (engine args async_scheduling=true)", True),
    ("vllm 0.14.0 (vllm serve m --distributed-executor-backend ray)", False),   # not with Ray's executor
    ("vllm 0.13.0 (vllm serve m)", False),                                    # the default came with 0.14.0
    ("vllm v0.11.0 (server: vllm serve Qwen/Qwen3-14B)", False),               # opt-in before the default
    ("vLLM 0.10.2 (vllm serve m --max-num-seqs 512 kv-cache-dtype fp8 async-scheduling no-enable-prefix-caching)",
     True),                                                                   # InferenceX's config, as written
    ("vLLM 0.10.1 ROCm (vllm serve m --no-enable-prefix-caching --async-scheduling)", True),
    ("vllm 0.6.3 (vllm serve m)", False),                                     # the V0 engine
    ("sglang v0.5.5.post1 (server: python3 -m sglang.launch_server --model-path m)", True),
    ("sglang 0.3.6", True),
    ("sglang 0.3.0 (launch_server --disable-radix-cache)", False),             # before the overlap default
    ("sglang v0.5.5 (launch_server --disable-overlap-schedule)", False),
    ("tensorrt-llm v1.2.0rc1 (trtllm-serve) (server: trtllm-serve Qwen/Qwen3-14B)", True),   # PyTorch backend
    ("TensorRT-LLM 1.1.0rc2.post2 (trtllm-serve m; disable_overlap_scheduler true)", False),
    ("TensorRT-LLM 1.1.0 (trtllm-serve m; disable_overlap_scheduler: false)", True),
    ("tensorrt-llm 1.2.0 (trtllm-serve m --backend trt)", False),              # the TensorRT engine's path
    ("tensorrt-llm 1.2.0 (trtllm-serve m; client: vllm bench serve --backend openai-chat)", True),
    ("tensorrt-llm 0.14.0 (Triton tensorrtllm_backend)", False),             # the TensorRT engine's executor
    ("tensorrt-llm 0.20 (trtllm-bench throughput; PyTorch backend)", False),  # its default not read
])
def test_stacks_that_form_the_next_iteration_while_one_runs_schedule_ahead(software, ahead):
    from ador.hardware import PRESETS
    assert scheduler_for(software, 1, PRESETS["h100-sxm-80gb"]).config.schedule_ahead is ahead


def test_a_serving_row_says_how_much_of_each_prompt_the_prefix_cache_holds(tmp_path):
    from ador.validation.serving import load_serving
    head = ("id,source,software,hardware,devices,model,precision,tp,policy,rate_rps,input_mean,output_mean,"
            "input_max,output_max,metric,value,unit,prefix_cached\n")
    row = "s1,src,vllm 0.14.1,h200-sxm-141gb,1,llama-3.1-70b,fp8,1,server,1,200,200,,,ttft_mean_ms,50,ms,{}\n"
    for text, share in (("1", 1.0), ("", 0.0), ("0.25", 0.25)):
        (tmp_path / "ok.csv").write_text(head + row.format(text))
        assert load_serving(tmp_path / "ok.csv")[0].prefix_cached == share
    for bad in ("1.5", "-0.5", "nan", "all"):
        (tmp_path / "bad.csv").write_text(head + row.format(bad))
        with pytest.raises(ConfigError, match="prefix_cached"):
            load_serving(tmp_path / "bad.csv")


def test_simulate_takes_schedule_ahead_and_a_prefix_cache_share_from_the_command_line(capsys):
    from ador.cli import main
    base = ["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--rate", "20", "--requests", "150",
            "--input-len", "1500", "--output-len", "100", "--lengths", "long-tailed", "--json"]

    def ttft(*extra: str) -> float:
        assert main(base + list(extra)) == 0
        return json.loads(capsys.readouterr().out)["ttft_ms"]["mean"]
    plain = ttft()
    assert ttft("--schedule-ahead") > plain > ttft("--prefix-cached", "1")
    assert ttft("--stack", "vllm 0.14.0") > ttft("--stack", "vllm 0.14.0", "--no-schedule-ahead")


def test_pipeline_parallelism_turns_schedule_ahead_off_and_a_policy_override_drops_it():
    from argparse import Namespace

    from ador.hardware import PRESETS
    from ador.serving.command import scheduler_config
    h100 = PRESETS["h100-sxm-80gb"]
    assert scheduler_for("vllm 0.14.1", 1, h100).config.schedule_ahead
    assert not scheduler_for("vllm 0.14.1", 1, h100, pp=2).config.schedule_ahead
    args = dict(stack="vllm 0.14.1", max_batch=None, chunk_tokens=None, max_batched_tokens=None,
                scheduler_steps=None, pp=1)
    for policy in ("disaggregated", "concurrent"):      # refused with schedule-ahead: the stack's loop stays behind
        cfg = scheduler_config(Namespace(**args, policy=policy, schedule_ahead=None), 8, h100)
        assert cfg.policy == policy and not cfg.schedule_ahead
    with pytest.raises(ConfigError, match="schedule_ahead"):
        scheduler_config(Namespace(**args, policy="concurrent", schedule_ahead=True), 8, h100)


def test_a_from_decode_prefill_covers_at_least_one_token_of_its_own_with_the_prompt_cached():
    """Prompt 33 under a runtime that prefills 32 tokens: whole 16-token blocks cached, but at most 16 of
    them, so the pass computes the runtime's 32nd token and the KV cache is the runtime's."""
    from ador.serving.driver import Setting
    from ador.serving.live import Live
    runtime = dataclasses.replace(A100.runtime, first_token_from_decode=True)
    setting = Setting(SchedulerConfig(), None, 0, None, 0.0, 1, runtime=runtime, prefix_cached=1.0)  # type: ignore
    live = Live(0, 0.0, 33, 4)
    setting.prefill_prompt()(live)
    assert (live.context, live.todo) == (16, 16)
    live = Live(1, 0.0, 40, 4)                  # 39 prefilled: 32 cached, 7 computed
    setting.prefill_prompt()(live)
    assert (live.context, live.todo) == (32, 7)
