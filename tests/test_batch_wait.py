"""TensorRT-LLM's batch waiting (``SchedulerConfig.batch_wait_iters`` / ``batch_wait_tokens_ratio``):
while requests decode, new prompts wait until an iteration would carry the token threshold or the
waiting has lasted its iterations; nobody waits when nothing decodes; the stack's flags set it."""
import dataclasses

import pytest

from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.serving import Lengths, Request, SchedulerConfig, burst, simulate
from ador.serving.stacks import scheduler_for
from ador.workload import get_model, get_precision

FP16 = get_precision("fp16")
L8 = get_model("llama-3-8b")
A100 = System(device=PRESETS["a100-sxm-80gb"], tp=1)
BASE = SchedulerConfig(policy="chunked", chunk_tokens=8192, reservation="full")


def _second_request_ttft_ms(cfg: SchedulerConfig, arrival_s: float = 0.5) -> float:
    """A long request decodes alone; a short one arrives while it does: the short one's TTFT (the
    first one's, alone on the replica, is the same under any setting: two means are one TTFT's sum)."""
    first = simulate(A100, L8, FP16, [Request(0, 0.0, 128, 2000)], config=cfg).ttft_ms["mean"]
    both = simulate(A100, L8, FP16, [Request(0, 0.0, 128, 2000), Request(1, arrival_s, 128, 2)], config=cfg)
    return 2 * both.ttft_ms["mean"] - first


def _step_ms() -> float:
    return simulate(A100, L8, FP16, [Request(0, 0.0, 128, 2000)], config=BASE).tbt_ms["p50"]


def test_flags_set_it_and_it_is_off_by_default():
    sw = "tensorrt-llm 1.1.0rc2 (trtllm-serve --max_num_tokens 16384 --batch_wait_max_tokens_ratio 0.9 " \
         "--batch_wait_timeout_iters 20)"
    cfg = scheduler_for(sw, 1).config
    assert (cfg.batch_wait_iters, cfg.batch_wait_tokens_ratio, cfg.chunk_tokens) == (20, 0.9, 16384)
    assert "batch waiting 20 iterations" in scheduler_for(sw, 1).note
    off = scheduler_for("tensorrt-llm 1.1.0rc2 (trtllm-serve)", 1).config
    assert (off.batch_wait_iters, off.batch_wait_tokens_ratio) == (0, 0.0)
    assert (SchedulerConfig().batch_wait_iters, SchedulerConfig().batch_wait_tokens_ratio) == (0, 0.0)


@pytest.mark.parametrize("field, bad", [("batch_wait_iters", -1), ("batch_wait_iters", 1.5), ("batch_wait_iters", True),
                                        ("batch_wait_tokens_ratio", -0.1), ("batch_wait_tokens_ratio", 1.5),
                                        ("batch_wait_tokens_ratio", float("nan"))])
def test_bad_settings_are_refused_naming_the_field(field, bad):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(BASE, **{field: bad}).check()


@pytest.mark.parametrize("iters", [5, 20])
def test_a_prompt_that_arrives_while_others_decode_waits_its_iterations(iters):
    # a threshold no iteration reaches (all of the budget): only the iteration count ends the wait
    waiting = dataclasses.replace(BASE, batch_wait_iters=iters, batch_wait_tokens_ratio=1.0)
    extra_ms = _second_request_ttft_ms(waiting) - _second_request_ttft_ms(BASE)
    assert extra_ms == pytest.approx(iters * _step_ms(), rel=0.15)


def test_a_prompt_that_fills_the_threshold_does_not_wait():
    # 1 decode + 128 prompt tokens reach a threshold of 1% of 8,192 (82 tokens)
    waiting = dataclasses.replace(BASE, batch_wait_iters=20, batch_wait_tokens_ratio=0.01)
    assert _second_request_ttft_ms(waiting) == pytest.approx(_second_request_ttft_ms(BASE), rel=1e-9)


def test_nobody_waits_when_nothing_decodes():
    """TensorRT-LLM waits only while generation requests run ("to avoid dead waiting")."""
    waiting = dataclasses.replace(BASE, batch_wait_iters=20, batch_wait_tokens_ratio=1.0)
    reqs = burst(8, Lengths("fixed", 512), Lengths("fixed", 64))
    assert simulate(A100, L8, FP16, reqs, config=waiting).ttft_ms == simulate(A100, L8, FP16, reqs, config=BASE).ttft_ms


def test_a_closed_loop_counts_only_the_prompts_its_clients_have_sent():
    """The queue of a closed loop holds requests not sent yet; they do not count toward the threshold
    (else every wait would end at once)."""
    waiting = dataclasses.replace(BASE, batch_wait_iters=20, batch_wait_tokens_ratio=0.9)
    reqs = burst(160, Lengths("uniform", 460.5, maximum=512), Lengths("uniform", 460.5, maximum=512), seed=0)
    with_wait = simulate(A100, L8, FP16, reqs, config=waiting, clients=8)
    without = simulate(A100, L8, FP16, reqs, config=BASE, clients=8)
    assert with_wait.ttft_ms["p50"] > without.ttft_ms["p50"] + 10 * with_wait.tbt_ms["p50"]


@pytest.mark.parametrize("ahead", [False, True])      # InferenceX's TensorRT-LLM 1.1 runs both
@pytest.mark.parametrize("clients", [None, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_waiting_runs_in_closed_form_as_it_does_one_iteration_at_a_time(clients, seed, ahead):
    from ador.serving import poisson
    waiting = dataclasses.replace(BASE, batch_wait_iters=7, batch_wait_tokens_ratio=0.5, chunk_tokens=2048,
                                  schedule_ahead=ahead)
    prompt, output = Lengths("uniform", 460.5, maximum=512), Lengths("uniform", 230.5, maximum=256)
    reqs = burst(120, prompt, output, seed=seed) if clients else poisson(12.0, 120, prompt, output, seed=seed)
    fast = simulate(A100, L8, FP16, reqs, config=waiting, clients=clients)
    slow = simulate(A100, L8, FP16, reqs, config=waiting, clients=clients, step_by_step=True)
    assert fast.iterations == slow.iterations
    for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
        for stat, value in getattr(slow, name).items():
            assert getattr(fast, name)[stat] == pytest.approx(value, rel=1e-9), (name, stat)
    assert fast.ttft_ms["mean"] > simulate(A100, L8, FP16, reqs, config=BASE, clients=clients).ttft_ms["mean"]
