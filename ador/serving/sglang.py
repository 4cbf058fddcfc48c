"""SGLang's scheduler: prefill-first, admission that reserves room for output tokens, retraction.

Read from the released wheels (sglang 0.3.0: managers/tp_worker.py, policy_scheduler.py; 0.5.5.post1:
managers/scheduler.py, schedule_policy.py, schedule_batch.py):

- **Prefill first.** Whenever waiting requests can be admitted, a prefill batch runs and the running
  requests do not decode; prompts fill a ``chunked_prefill_size`` budget (8,192), the last one cut
  to fit (a cut prompt continues first in the next prefill).
- **Admission reserves output room.** A waiting request is admitted while its prompt plus its
  clipped output (min(max_new_tokens, 4,096)) is less than the free KV tokens less the reservation
  for the requests in service: each running request's clipped remaining output times
  ``new_token_ratio``, each request admitted in this round or still prefilling its whole clipped
  output. The ratio starts at 0.7, falls by (0.7 - min) / 600 per decode step to its minimum (0.1 in
  0.3, 0.098 in 0.5) and starts again at 0.7 when the server idles.
- **0.5 stops admitting after a refusal** (``batch_is_full``): once a request does not fit, none is
  tried until a running request leaves (finished or retracted).
- **Retraction.** When the next decode step does not fit, the running request with the fewest output
  tokens (ties: the longest prompt) leaves, frees its cache and waits at the *back* of the queue to
  prefill prompt and output again; until one step fits (0.5) or every request left has 20 steps of
  room (0.3). The ratio then becomes (tokens generated + 20 x requests) / their max_new_tokens, at
  most 1.

The radix cache's prefix reuse is priced where a load says how much of each prompt is cached
(``simulate(prefix_cached=...)``); the overlap scheduler (0.3.6 on) as ``schedule_ahead`` (a request
arriving mid-step is formed into the batch after next). Not modelled: under the overlap scheduler a
finished request is noticed one step late; 0.3's decode bursts of up to 10 steps (they end after one
step when requests stream, as the benchmark clients' do).
"""
from __future__ import annotations

from ador.serving.config import SGLANG_CLIP_MAX_NEW_TOKENS, SGLANG_INIT_NEW_TOKEN_RATIO, \
    SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS, SGLANG_RETRACT_DECODE_STEPS
from ador.serving.live import Live, Preemption
from ador.serving.replica import Replica
from ador.serving.schedulers import Batch, Scheduler, register

CLIP = SGLANG_CLIP_MAX_NEW_TOKENS


def _clipped_output(live: Live) -> int:
    """The output tokens admission reserves for a request not yet decoding: its whole remaining
    output, clipped."""
    return min(live.output - live.generated, CLIP)


class Retraction(Preemption):
    """SGLang's retract_decode: fewest output tokens first, to the back of the queue."""

    def __init__(self, scheduler: SGLangScheduler) -> None:
        self.scheduler = scheduler

    def enough(self, r: Replica, tokens: int) -> bool:
        n = len(r.running)
        # 0.3 frees room for several steps of each request left, but keeps the last one running
        room = r.cfg.retract_room_steps * n if n > 1 else tokens
        return r.blocks(max(tokens, room)) <= r.cap_blocks

    def victim(self, r: Replica) -> Live:
        # SGLang sorts (output tokens, -prompt) descending, stably, and pops the last: the fewest output
        # tokens, then the longest prompt, then the newest in batch order
        return min(reversed(r.running.values()), key=lambda live: (r.tokens_out(live), -live.prompt))

    def requeue(self, r: Replica, live: Live) -> None:
        if not r.clients:
            r.waiting.append(live)
            return
        # a closed loop: behind every request already sent (and seen: under schedule-ahead a send
        # the scheduler has not received is not in its queue), ahead of those no client has sent yet
        # (the waiting queue holds a closed loop's future requests in sending order)
        sent = r.sends_left()
        pos = 0
        for i, w in enumerate(r.waiting):
            if w.admitted_s != w.admitted_s:              # never admitted
                if sent == 0:
                    break
                sent -= 1
            pos = i + 1
        r.waiting.insert(pos, live)

    def after(self, r: Replica) -> None:
        generated = sum(r.tokens_out(live) for live in r.running.values())
        wanted = sum(live.output for live in r.running.values())
        s = self.scheduler
        s.ratio = min(1.0, (generated + SGLANG_RETRACT_DECODE_STEPS * len(r.running)) / (wanted + 1))
        s.departed = True


class SGLangScheduler(Scheduler):
    """SGLang's prefill-first scheduler with output-reserving admission and retraction."""
    name = "sglang"

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica)
        cfg = self.cfg
        self.ratio = SGLANG_INIT_NEW_TOKEN_RATIO
        self.floor = cfg.min_new_token_ratio          # at most the initial ratio (checked by the config)
        self.decay = (SGLANG_INIT_NEW_TOKEN_RATIO - self.floor) / SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS
        self.latched = False              # 0.5's batch_is_full: a refusal until a request leaves
        self.departed = False             # a running request left since the last decision
        self.reserved = 0.0               # output tokens reserved in the round being formed
        self.finished = replica.rec.finished
        replica.preemption = Retraction(self)

    # --- admission ---------------------------------------------------------------------------------
    def _reservation(self) -> float:
        """Output tokens reserved for the requests in service: running ones at the ratio, prompts
        being prefilled in full."""
        r = self.replica
        running = sum(min(live.output - r.tokens_out(live), CLIP) for live in r.running.values())
        prefilling = sum(_clipped_output(live) for live in r.prefilling)
        return self.ratio * running + prefilling

    def _fits(self, live: Live) -> bool:
        r = self.replica
        free = r.cap_blocks * r.block - r.used - self.reserved
        return live.todo + live.context + _clipped_output(live) < free

    def admissible(self, live: Live) -> bool:
        if self.latched:
            return False
        self.reserved = self._reservation()
        return self._fits(live) and super().admissible(live)

    def admit(self, live: Live) -> bool:
        if self.latched:
            return False
        if not self._fits(live) or not self.replica.admit(live):
            self.latched = self.cfg.admission_latch
            return False
        # admitted, it takes its whole output (clipped) off the budget, generated tokens included: a
        # retracted request checks in with its remaining output but reserves all of it (0.5.5.post1
        # schedule_policy.py add_one_req, _update_prefill_budget(..., min(max_new_tokens, CLIP)))
        self.reserved += min(live.output, CLIP)
        return True

    # --- batches -----------------------------------------------------------------------------------
    def next_batch(self, next_arrival_s: float) -> Batch | None:
        r = self.replica
        if self.departed or r.rec.finished != self.finished or not (r.running or r.prefilling):
            self.latched = self.departed = False      # a request left (or none is in service to wait for)
            self.finished = r.rec.finished
        if r.prefilling or (r.waiting and not self.latched):
            self.reserved = self._reservation()
            chunks, completing, tokens = self.take_prefill(self.cfg.max_batched_tokens, split_any=True)
            if chunks:
                return Batch("mixed", chunks, completing, tokens=tokens)
        if not r.running:
            if not r.waiting:
                self.ratio = SGLANG_INIT_NEW_TOKEN_RATIO          # idle: the reservation starts over
            return None
        if not r.waiting:
            return Batch("decode", until=next_arrival_s, through=True)
        if self.latched or (self.ratio <= self.floor and not r.full):
            # free room less the reservation only shrinks while the batch decodes at a fixed ratio
            # (each step takes n tokens and frees at most ratio x n of reservation): nothing changes
            # until a request leaves. Not so when the pool holds each request's whole output from
            # admission (``full``): a step takes no new room and the reservation still falls
            return Batch("decode")
        return Batch("decode", max_steps=1)     # the ratio falls: the head of the queue may fit next step

    def on_batch_end(self, batch: Batch, started_s: float) -> None:
        if batch.kind == "decode" and batch.steps:
            self.ratio = max(self.floor, self.ratio - self.decay * batch.steps)


register(SGLangScheduler)
