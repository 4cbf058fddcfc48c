"""SGLang's scheduler as its released code runs it (ador.serving.sglang): admission that reserves
room for output tokens at a falling ratio, the 0.5 admission latch, retraction of the request with
the fewest output tokens to the back of the queue, and closed-form decode runs equal to stepping."""
from dataclasses import replace

import pytest

from ador.hardware import PRESETS, System
from ador.perf.iteration import IterationCost
from ador.serving import Lengths, SchedulerConfig, burst, simulate
from ador.serving.config import SGLANG_INIT_NEW_TOKEN_RATIO
from ador.serving.recorder import Recorder
from ador.serving.live import Live
from ador.serving.replica import Replica
from ador.serving.sglang import CLIP, SGLangScheduler
from ador.workload import get_model, get_precision

FP16 = get_precision("fp16")
L8 = get_model("llama-3-8b")
A100 = System(device=PRESETS["a100-sxm-80gb"], tp=1)
V05 = SchedulerConfig(policy="sglang", block_tokens=1, kv_watermark=0.0, max_batch=4096, memory_fraction=0.3)
V03 = replace(V05, admission_latch=False, retract_room_steps=20, min_new_token_ratio=0.1)


def _scheduler(cfg: SchedulerConfig, capacity_tokens: int) -> SGLangScheduler:
    replica = Replica(IterationCost(A100, L8, FP16), cfg, capacity_tokens, Recorder())
    return SGLangScheduler(replica)


def _queue(s: SGLangScheduler, n: int, prompt: int, output: int) -> list[Live]:
    lives = [Live(i, 0.0, prompt, output) for i in range(n)]
    s.replica.waiting.extend(lives)
    return lives


def test_admission_reserves_each_new_requests_clipped_output():
    """Empty server, 10,000 KV tokens, prompts of 500 with 1,500 output tokens: a request is taken
    while its prompt and output fit beside those already taken (prompt + output each), so 4 of 2,000
    fit (the fifth would need exactly the 2,000 left: SGLang wants strictly less), where admission by
    prompt alone takes 16 (the chunk budget of 8,192 prompt tokens)."""
    s = _scheduler(V05, 10_000)
    _queue(s, 30, 500, 1500)
    batch = s.next_batch(float("inf"))
    assert batch is not None and len(batch.completing) == 4
    assert s.latched                                           # 0.5: refused once, admits no more
    plain = _scheduler(replace(V05, policy="continuous"), 10_000)
    # the vLLM-style rule admits on the prompt alone (up to the 8,192-token budget)
    plain.replica.waiting.extend(Live(i, 0.0, 500, 1500) for i in range(30))
    from ador.serving.schedulers import ContinuousScheduler
    assert len(ContinuousScheduler(plain.replica).next_batch(float("inf")).completing) == 16


def test_output_beyond_the_clip_is_reserved_only_up_to_it():
    s = _scheduler(V05, 3 * (100 + CLIP) + 1)
    _queue(s, 5, 100, 3 * CLIP)
    assert len(s.next_batch(float("inf")).completing) == 3


def test_running_requests_are_reserved_at_the_ratio_which_falls_per_decode_step_and_resets_when_idle():
    s = _scheduler(V03, 100_000)
    r = s.replica
    _queue(s, 2, 1000, 3000)
    batch = s.next_batch(float("inf"))
    r.mixed_iteration(batch.chunks, batch.completing, batch.decodes, batch.tokens)
    assert len(r.running) == 2 and s.ratio == SGLANG_INIT_NEW_TOKEN_RATIO
    remaining = sum(live.output - live.generated for live in r.running.values())
    assert s._reservation() == pytest.approx(0.7 * remaining)
    decode = s.next_batch(float("inf"))
    decode.steps = r.decode_run(100)
    s.on_batch_end(decode, 0.0)
    assert s.ratio == pytest.approx(0.7 - 100 * (0.7 - 0.1) / 600)
    assert s._reservation() == pytest.approx(s.ratio * (remaining - 2 * 100))
    decode = s.next_batch(float("inf"))
    decode.steps = r.decode_run(10_000, through_finishes=True)
    s.on_batch_end(decode, 0.0)
    assert s.ratio == pytest.approx(0.1)                       # the floor
    assert not r.running and s.next_batch(float("inf")) is None
    assert s.ratio == SGLANG_INIT_NEW_TOKEN_RATIO              # idle: starts over


def test_the_05_latch_holds_until_a_request_leaves_and_03_has_none():
    for cfg, latched in ((V05, True), (V03, False)):
        s = _scheduler(cfg, 10_000)
        r = s.replica
        _queue(s, 30, 500, 1500)
        batch = s.next_batch(float("inf"))
        r.mixed_iteration(batch.chunks, batch.completing, batch.decodes, batch.tokens)
        assert s.latched is latched
        # room appears without anyone leaving (a bigger cache stands for the ratio falling)
        r.cap_blocks *= 4
        nxt = s.next_batch(float("inf"))
        assert (nxt.kind == "decode") is latched, cfg
        if latched:
            assert nxt.max_steps == float("inf")             # nothing changes until a departure


def test_retraction_takes_the_fewest_output_tokens_first_to_the_back_of_the_queue():
    """The newest request has more output (30 tokens, from before an earlier retraction) than the
    oldest (11): SGLang retracts the oldest, where vLLM's rule takes the newest."""
    s = _scheduler(V05, 10_000)
    r = s.replica
    old, new = Live(0, 0.0, 100, 50), Live(1, 0.0, 100, 50)
    waiting = Live(2, 0.0, 100, 50)
    for live in (old, new):
        r.waiting.append(live)
        assert r.admit(live)
        r.waiting.remove(live)
    r.complete_prefills([old], 0.0)
    r.step += 10                                          # old has decoded 10 steps: 11 tokens out
    new.first_s, new.generated = 0.0, 30                  # 30 tokens out before it was retracted once
    r.complete_prefills([new], 0.0)
    r.waiting.append(waiting)
    assert r.preemption.victim(r) is old
    r.cap_blocks = r.used + 1                             # room for one more token only (page size 1)
    r.preempt_for(2)
    assert list(r.waiting) == [waiting, old]              # vLLM would put it at the head
    assert list(r.running.values()) == [new]
    # the ratio after a retraction: (tokens generated + 20 x requests left) / their max_new_tokens
    assert s.ratio == pytest.approx((30 + 20) / (50 + 1))
    assert s.departed


@pytest.mark.parametrize("cfg", [V05, V03], ids=["0.5", "0.3"])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_runs_equal_stepping_while_the_falling_ratio_may_admit(cfg, seed):
    """Long outputs make the falling ratio free reservation faster than decodes take room: under 0.3
    (no latch) the head of the queue can fit after a step with nobody leaving, so decode runs must
    stop at every step while the ratio falls (a run to the next departure admits later)."""
    reqs = burst(200, Lengths("lognormal", 100, 0.5), Lengths("lognormal", 2000, 0.3), seed=seed)
    fast = simulate(A100, L8, FP16, reqs, config=cfg)
    slow = simulate(A100, L8, FP16, reqs, config=cfg, step_by_step=True)
    assert fast.preemptions > 0
    assert (fast.iterations, fast.preemptions) == (slow.iterations, slow.preemptions)
    for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
        for stat, value in getattr(slow, name).items():
            assert getattr(fast, name)[stat] == pytest.approx(value, rel=1e-9), (name, stat)


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_runs_equal_stepping_when_a_retraction_lowers_the_ratio(seed):
    """A retraction resets the ratio low, which can let a waiting request in with nobody else
    leaving: the decode run must hand back to the scheduler one step after it (a review's case:
    8 sequence slots, a tight cache)."""
    reqs = burst(120, Lengths("lognormal", 400, 0.8), Lengths("lognormal", 300, 0.6), seed=seed)
    cfg = replace(V05, max_batch=8, memory_fraction=0.2, memory_basis="reserve")
    fast = simulate(A100, L8, FP16, reqs, config=cfg)
    slow = simulate(A100, L8, FP16, reqs, config=cfg, step_by_step=True)
    assert (fast.iterations, fast.preemptions) == (slow.iterations, slow.preemptions)
    assert fast.e2e_ms["mean"] == pytest.approx(slow.e2e_ms["mean"], rel=1e-9)


@pytest.mark.parametrize("cfg", [V05, V03], ids=["0.5", "0.3"])
def test_a_closed_loop_retracts_behind_sent_requests_not_ahead_of_unsent_ones(cfg):
    """16 clients, 8 slots, a tight cache: a retracted request goes behind the requests already sent,
    not behind the clients' future requests (which admitted a request nobody had sent: IndexError)."""
    reqs = burst(120, Lengths("lognormal", 400, 0.8), Lengths("lognormal", 300, 0.6), seed=0)
    run = simulate(A100, L8, FP16, reqs, config=replace(cfg, max_batch=8, memory_fraction=0.2), clients=16)
    assert run.n_finished == 120 and run.preemptions > 0


def test_a_retraction_tie_takes_the_newest_as_sglangs_stable_sort_and_pop_do():
    s = _scheduler(V05, 10_000)
    r = s.replica
    a, b = Live(0, 0.0, 100, 50), Live(1, 0.0, 100, 50)
    for live in (a, b):
        r.waiting.append(live)
        assert r.admit(live)
        r.waiting.remove(live)
    r.complete_prefills([a, b], 0.0)                     # same output, same prompt: a tie
    assert r.preemption.victim(r) is b


def _running(s: SGLangScheduler, lives: list[Live]) -> None:
    """Admit and prefill ``lives`` at once: they decode from step 0, one output token each."""
    r = s.replica
    for live in lives:
        r.waiting.append(live)
        assert r.admit(live)
        r.waiting.remove(live)
    r.complete_prefills(lives, 0.0)


@pytest.mark.parametrize("cfg, left", [(V05, 5), (V03, 2)], ids=["0.5", "0.3"])
def test_a_retraction_frees_one_step_of_room_in_05_and_20_steps_per_request_left_in_03(cfg, left):
    """Six requests of 10 prompt tokens, a cache of 62 tokens (SGLang's pool is token-granular: no
    partly filled blocks) and the next step needing 6: tokens held = 10 x n + steps of room x n. 0.5
    stops when one step fits: 50 + 5 = 55 <= 62 after one retraction. 0.3 stops when every request
    left has 20 steps: n = 3 needs 30 + 60 = 90 > 62, n = 2 needs 20 + 40 = 60 <= 62."""
    s = _scheduler(cfg, 10_000)
    r = s.replica
    _running(s, [Live(i, 0.0, 10, 1000) for i in range(6)])
    r.cap_blocks = 62
    assert r.block == 1 and r.slack_blocks(6) == 0
    assert r.blocks(6) > r.cap_blocks                   # 60 + 6: the next step does not fit
    r.preempt_for(6)
    assert len(r.running) == left and r.rec.preemptions == 6 - left


def test_a_retraction_tie_in_output_takes_the_longest_prompt_before_the_newest():
    """Equal output tokens: SGLang's key (output tokens, -prompt) sorted descending and popped
    retracts the longest prompt, here the oldest request, not the newest."""
    s = _scheduler(V05, 10_000)
    r = s.replica
    longest, short, newest = Live(0, 0.0, 200, 50), Live(1, 0.0, 100, 50), Live(2, 0.0, 100, 50)
    _running(s, [longest, short, newest])
    assert r.preemption.victim(r) is longest


def test_a_prompt_still_prefilling_keeps_its_output_reserved_against_new_admissions():
    """A 1,500-token prompt with 2,000 output tokens is cut by a 1,000-token chunk budget. In the
    next round its last 500 tokens leave budget for B (100 + 1,500 output), which would fit beside A's
    prompt (1,600 < 5,000 - 1,500) but not beside A's reserved output as well (1,600 >= 1,500)."""
    s = _scheduler(replace(V03, max_batched_tokens=1000), 5000)
    r = s.replica
    a, b = Live(0, 0.0, 1500, 2000), Live(1, 0.0, 100, 1500)
    r.waiting.extend([a, b])
    first = s.next_batch(float("inf"))
    assert first.chunks == [(1000, 0)] and not first.completing and r.prefilling == [a]
    r.mixed_iteration(first.chunks, first.completing, first.decodes, first.tokens)
    second = s.next_batch(float("inf"))
    assert second.chunks == [(500, 1000)] and second.completing == [a]
    assert list(r.waiting) == [b]


def test_a_running_requests_reservation_is_clipped_at_sglang_clip_max_new_tokens():
    """A running request with 3 x CLIP - 1 output tokens left reserves 0.7 x CLIP (its remaining output
    clipped, at the initial ratio), so a request of 100 + 100 fits in a cache of 5,000 tokens beside its
    100-token prompt (5,000 - 100 - 0.7 x 4,096 = 2,032.8 free); unclipped (8,600.2) nothing would."""
    s = _scheduler(V03, 5000)
    r = s.replica
    _queue(s, 1, 100, 3 * CLIP)
    first = s.next_batch(float("inf"))
    r.mixed_iteration(first.chunks, first.completing, first.decodes, first.tokens)
    assert s._reservation() == pytest.approx(SGLANG_INIT_NEW_TOKEN_RATIO * CLIP)
    r.waiting.append(Live(1, 0.0, 100, 100))
    second = s.next_batch(float("inf"))
    assert second.kind == "mixed" and [live.id for live in second.completing] == [1]


def test_a_retracted_request_checks_in_with_its_remaining_output_but_reserves_all_of_it():
    """SGLang 0.5.5's add_one_req admits on prompt + min(max_new_tokens - generated, CLIP) but takes
    min(max_new_tokens, CLIP) off the round's budget (_update_prefill_budget)."""
    s = _scheduler(V05, 10_000)
    live = Live(0, 0.0, 100, 300)
    live.generated, live.todo = 120, 220          # retracted after 120 tokens: prompt and output re-prefilled
    s.replica.waiting.append(live)
    assert s.admissible(live)
    before = s.reserved
    assert s.admit(live)
    assert s.reserved - before == 300
