"""Host work per scheduled sequence (``SchedulerConfig.host_s_per_seq``): vLLM before 0.6 pays it,
every iteration pays it for each sequence it runs, multi-step decoding once per block of steps, and
the closed form of a decode run prices it as stepping does."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.serving import Lengths, SchedulerConfig, burst, poisson, simulate
from ador.serving.config import VLLM_V0_HOST_S_PER_SEQ
from ador.serving.stacks import scheduler_for
from ador.workload import get_model, get_precision

FP16 = get_precision("fp16")
L8 = get_model("llama-3-8b")
A100 = System(device=PRESETS["a100-sxm-80gb"], tp=1)
ADORx8 = System(device=PRESETS["ador-example"], tp=8)


@pytest.mark.parametrize("software, host_s", [
    ("vllm 0.5.4 (container vllm/vllm-openai:v0.5.4; api_server --max-model-len 2000)", VLLM_V0_HOST_S_PER_SEQ),
    ("vllm 0.4.2", VLLM_V0_HOST_S_PER_SEQ),
    ("vllm 0.6.0 (openai api_server --num-scheduler-steps 10)", 0.0),     # 0.6 overlapped it
    ("vllm 0.6.3.post2.dev308+gb489fc3c nightly", 0.0),
    ("vllm (nightly CI, version not stated)", 0.0),                       # no release: today's
    ("vllm v0.11.0 (vllm serve)", 0.0),
    ("sglang 0.3.0", 0.0),
    ("tensorrt-llm 0.14.0 (Triton tensorrtllm_backend)", 0.0),
])
def test_only_vllm_before_0_6_pays_host_work_per_sequence(software, host_s):
    assert scheduler_for(software, 1).config.host_s_per_seq == host_s
    assert VLLM_V0_HOST_S_PER_SEQ == pytest.approx(100e-6)      # 20 ms at batch 200 (vLLM issue 6801)


@pytest.mark.parametrize("bad", [-1e-6, math.nan, math.inf, True, "1e-4"])
def test_host_work_must_be_a_finite_non_negative_time(bad):
    with pytest.raises(ConfigError, match="host_s_per_seq"):
        SchedulerConfig(host_s_per_seq=bad).check()


@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("count", [8, 40])
def test_each_iteration_pays_host_work_for_every_sequence_it_runs(steps, count):
    """A burst of equal requests that all fit: one prefill iteration of ``count`` prompts, then decode
    steps of ``count`` sequences. Host work ``h`` adds h x count to the prefill (every request's first
    token) and h x count / steps to each decode step (every request's TPOT)."""
    h = 37e-6
    reqs = burst(count, Lengths("fixed", 200), Lengths("fixed", 65))
    base = SchedulerConfig(max_batched_tokens=200 * count, scheduler_steps=steps)
    without = simulate(A100, L8, FP16, reqs, config=base)
    with_host = simulate(A100, L8, FP16, reqs, config=SchedulerConfig(**{**base.__dict__, "host_s_per_seq": h}))
    assert with_host.iterations == without.iterations == 1 + 64
    ttft_ms = with_host.ttft_ms["mean"] - without.ttft_ms["mean"]
    tpot_ms = with_host.tpot_ms["mean"] - without.tpot_ms["mean"]
    assert ttft_ms == pytest.approx(h * count * 1e3, rel=1e-6)
    assert tpot_ms == pytest.approx(h * count / steps * 1e3, rel=1e-6)


@settings(max_examples=12, deadline=None)
@given(policy=st.sampled_from(["continuous", "chunked", "concurrent"]), steps=st.sampled_from([1, 3]),
       h=st.sampled_from([1e-6, 1e-4]), rate=st.sampled_from([None, 20.0]), seed=st.integers(0, 3))
def test_closed_form_decode_runs_price_host_work_as_stepping_does(policy, steps, h, rate, seed):
    system, model = (ADORx8, get_model("llama-3-70b")) if policy == "concurrent" else (A100, L8)
    cfg = SchedulerConfig(policy=policy, scheduler_steps=steps, host_s_per_seq=h, max_batch=64, memory_fraction=0.3)
    prompt, output = Lengths("lognormal", 600, 1.0), Lengths("lognormal", 250, 1.0)
    reqs = burst(100, prompt, output, seed=seed) if rate is None else poisson(rate, 100, prompt, output, seed=seed)
    fast = simulate(system, model, FP16, reqs, config=cfg)
    slow = simulate(system, model, FP16, reqs, config=cfg, step_by_step=True)
    assert (fast.iterations, fast.preemptions) == (slow.iterations, slow.preemptions)
    for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
        for stat, value in getattr(slow, name).items():
            assert getattr(fast, name)[stat] == pytest.approx(value, rel=1e-9, abs=1e-9), (name, stat)
    plain = simulate(system, model, FP16, reqs, config=SchedulerConfig(**{**cfg.__dict__, "host_s_per_seq": 0.0}))
    assert fast.makespan_s > plain.makespan_s


@pytest.mark.parametrize("slow", [1.0, 1.7])
def test_a_decode_step_slowed_by_memory_contention_stretches_the_device_work_not_the_host_work(slow):
    """The concurrent policy stretches a decode step's device time when prefill and decode share HBM;
    the host's per-step and per-sequence work is not memory traffic and stays as it is."""
    from ador.perf.iteration import IterationCost
    from ador.serving.live import Live
    from ador.serving.recorder import Recorder
    from ador.serving.replica import Replica
    h, n, steps = 2e-4, 6, 5
    cfg = SchedulerConfig(policy="concurrent", host_s_per_seq=h)
    replica = Replica(IterationCost(ADORx8, get_model("llama-3-70b"), FP16), cfg, 10 ** 6, Recorder())
    for rid in range(n):
        live = Live(rid, 0.0, 300, 100)
        assert replica.admit(live)
    replica.complete_prefills(list(replica.prefilling), 0.0)
    assert replica.decode_run(steps, slow=slow) == steps
    (price,) = replica.steps.values()             # one KV bucket (300-305 tokens): every step priced alike
    assert price.host_s == pytest.approx(replica.overhead_s + h * n, rel=1e-12)
    assert replica.t == pytest.approx(steps * (price.decode_s * slow + replica.overhead_s + h * n), rel=1e-12)
