"""One model replica's state and the mechanics every policy shares.

A replica holds the requests in service, their paged KV cache and a clock. It does not decide
what runs: a scheduler (``ador.serving.schedulers``) forms each batch and the replica executes it,
pricing it with the performance model (``IterationCost``) and recording what requests see.

Decoding requests are not touched one by one: a global decode-step counter says how many tokens
each has, a heap says who finishes when, and the running requests' mean KV length follows from two
sums. A run of decode-only iterations with nobody joining or leaving is executed in closed form
(``decode_run``): a step's price depends only on the batch size and the mean KV length rounded up
to the pricing bucket, so a run is a few segments of identical steps, each recorded in one go. The
result is the same as stepping one iteration at a time (tested), at a fraction of the cost.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from heapq import heappop

from ador.perf.iteration import KV_BUCKET, IterationCost, Piece
from ador.serving.config import SchedulerConfig
from ador.serving.live import RECOMPUTE, Live, Preemption
from ador.serving.recorder import Recorder, Step
from ador.serving.stats import FLUSH
from ador.workload.ops import DECODE, PREFILL

_INF = math.inf
FINISHED, UNTIL, ROOM, MAX_STEPS = range(4)      # why a span of decode steps ended


class Replica:
    """A replica of the model (tp x pp devices): queue, requests in service, KV account, clock."""

    def __init__(self, cost: IterationCost, cfg: SchedulerConfig, capacity_tokens: int, rec: Recorder, *,
                 hbm_bw: float = math.inf, on_prefilled=None, clients: int = 0,
                 client_overhead_s: float = 0.0, first_token_from_decode: bool = False) -> None:
        self.cost, self.cfg, self.rec = cost, cfg, rec
        # a runtime whose prefill pass stops one prompt token short emits a request's first token at
        # the end of its first decode step, not of its prefill (``RuntimeProfile.first_token_from_decode``;
        # ``Setting.prefill_prompt`` shortens the prefill)
        self.first_token_from_decode = first_token_from_decode
        # closed loop (``clients`` > 0): each client sends its next request when its previous one ends,
        # so the m-th request admitted (admission is in sending order) was sent at the (m - clients)-th
        # completion, or at the start for the first ``clients``; its latencies count from then. The
        # runtime's front-end cost per request is added to those latencies (an approximation: it does
        # not delay the replica's timeline in a closed loop, where it is small against a step)
        self.clients = clients
        self.client_overhead_s = client_overhead_s
        self.admissions = 0
        # completion times not yet matched to an admission (a heap: at most ``clients`` of them)
        self.completions: list[float] = []
        self.hbm_bw = hbm_bw                 # bytes/s a replica's devices deliver (concurrent contention)
        self.block = cfg.block_tokens
        self.cap_blocks = capacity_tokens // cfg.block_tokens
        self.watermark_blocks = int(cfg.kv_watermark * self.cap_blocks)
        self.full = cfg.reservation == "full"
        self.on_prefilled = on_prefilled      # disaggregated prefill side: hand the request on
        self.preemption: Preemption = RECOMPUTE  # which requests leave when decodes outgrow the cache
        self.overhead_s = cost.step_overhead_s
        self.host_s_per_seq = cfg.host_s_per_seq
        self.t = 0.0
        self.step = 0
        self.last_step_end = math.nan
        # schedule-ahead (``SchedulerConfig.schedule_ahead``): a decision at the end of an iteration
        # was made when that iteration started, and sees what had arrived by then (``seen_s``)
        self.ahead = cfg.schedule_ahead
        self.last_start = math.nan           # start and end of the last iteration run
        self.last_end = math.nan
        self.seen_s = 0.0                    # arrivals and closed-loop sends the current decision sees
        self.waiting: deque[Live] = deque()
        self.prefilling: list[Live] = []
        self.running: dict[int, Live] = {}   # decoding, in admission order (newest last)
        self.joiners: list[Live] = []
        self.heap: list[tuple[int, int, int, Live]] = []
        self.used = 0                        # KV tokens accounted (held + grown)
        self.sum_kv0 = 0                     # sum of running requests' KV when they joined
        self.sum_join = 0                    # sum of their join steps
        self.measured_running = 0
        self.steps: dict[tuple[int, int], Step] = {}

    # --- memory -----------------------------------------------------------------------------
    def slack_blocks(self, seqs: int) -> int:
        """Blocks a paged pool loses to its sequences' partly filled last blocks: half a block each on
        average; none in a token-granular pool (SGLang's page size 1)."""
        return seqs // 2 if self.block > 1 else 0

    def blocks(self, extra_tokens: int = 0, extra_seqs: int = 0) -> int:
        """Blocks in use: the tokens' blocks plus the partly filled last blocks (``slack_blocks``)."""
        seqs = len(self.running) + len(self.prefilling) + extra_seqs
        return -(-(self.used + extra_tokens) // self.block) + self.slack_blocks(seqs)

    def fits_ever(self, live: Live) -> bool:
        return -(-(live.prompt + live.output) // self.block) <= self.cap_blocks

    def in_service(self) -> int:
        return len(self.running) + len(self.prefilling)

    def sends_left(self) -> int:
        """Closed loop: requests the clients may send now (a client idle from the start, or one whose
        request ended, before what the current decision sees, and is not yet matched to an admission)."""
        ended = len(self.completions)
        if self.ahead and ended:
            seen = self.seen_s
            ended = sum(1 for c in self.completions if c <= seen)
        return max(0, self.clients - self.admissions) + ended

    def observe(self) -> float:
        """Set and return what the next decision sees: the clock, or under schedule-ahead, when the
        iteration that just ended started, if requests are still in service (nothing was formed ahead
        behind a replica's last requests: an empty replica sees the clock, as an idle engine does)."""
        busy = self.running or self.prefilling
        self.seen_s = self.last_start if self.ahead and busy and self.last_end == self.t else self.t
        return self.seen_s

    def sends_unseen(self) -> bool:
        """Closed loop under schedule-ahead: a client sent a request the current decision does not
        see yet (its previous one ended during the iteration that just ran); the next decision, one
        step on, sees it, so a run of decode steps stops after one."""
        return bool(self.ahead and self.completions and self.waiting) and max(self.completions) > self.seen_s

    def sent_prompt_tokens(self) -> int:
        """Prompt tokens of the waiting requests that have been sent (in a closed loop, the queue
        holds requests whose clients have not sent them yet: ``admit`` refuses those)."""
        if not self.clients:
            return sum(live.todo for live in self.waiting)
        free = self.sends_left()
        tokens = 0
        for live in self.waiting:
            if live.admitted_s != live.admitted_s:        # NaN: never admitted, needs a sending client
                if not free:
                    break
                free -= 1
            tokens += live.todo
        return tokens

    def admit(self, live: Live, *, with_kv: bool = False) -> bool:
        """Take ``live`` into service if a sequence slot and its KV blocks (beyond the watermark)
        are free. ``with_kv``: its prompt's KV cache arrives with it (disaggregated decode side)."""
        seqs = len(self.running) + len(self.prefilling)
        if seqs >= self.cfg.max_batch:
            return False
        if self.clients and live.admitted_s != live.admitted_s and not self.sends_left():
            return False                                 # its client has not sent it yet
        need = live.todo + live.context if not with_kv else live.prompt
        if self.full:
            need += live.output - max(live.generated, 1 if with_kv else 0)
        if self.blocks(need, 1) > self.cap_blocks - self.watermark_blocks:
            return False
        if live.admitted_s != live.admitted_s:          # NaN: first admission
            live.admitted_s = self.t
            if self.clients:
                if self.admissions >= self.clients:      # the earliest completion not yet matched
                    live.arrival = heappop(self.completions) - self.client_overhead_s
                self.admissions += 1
            if self.t <= self.rec.horizon:
                self.rec.admitted_in_horizon += 1
        self.used += need
        live.hold = need
        if with_kv:
            live.kv, live.context, live.todo = live.prompt, 0, 0
            self._join(live)
        else:
            live.kv = live.context
            self.prefilling.append(live)
        if seqs + 1 > self.rec.peak_in_service:
            self.rec.peak_in_service = seqs + 1
        return True

    # --- joining and leaving the decode batch ---------------------------------------------------
    def _join(self, live: Live) -> None:
        remaining = live.output - live.generated
        if remaining <= 0:
            self._finish(live, self.t)
            return
        live.join = self.step
        self.running[live.id] = live
        self.joiners.append(live)
        self.sum_kv0 += live.kv
        self.sum_join += self.step
        if live.measured:
            self.measured_running += 1
        heapq.heappush(self.heap, (self.step + remaining - 1, live.id, live.version, live))

    def _leave(self, live: Live) -> None:
        del self.running[live.id]
        self.sum_kv0 -= live.kv
        self.sum_join -= live.join
        if live.measured:
            self.measured_running -= 1

    def _finish(self, live: Live, now: float) -> None:
        self.used -= live.hold
        self.rec.finish(live, now)
        if self.clients:
            heapq.heappush(self.completions, now)

    def complete_prefills(self, done: list[Live], now: float) -> None:
        for live in done:
            self.prefilling.remove(live)
            live.kv, live.context = live.context, 0
            if math.isnan(live.first_s) and not self.first_token_from_decode:
                live.first_s = now
                live.generated = 1
            live.last_s = now
            if self.on_prefilled is not None:
                self.used -= live.hold
                self.on_prefilled(live, now)
            else:
                self._join(live)

    def preempt_for(self, tokens: int) -> None:
        """Recompute preemption: running requests leave, in the order and until the room the
        replica's ``preemption`` rule says, and wait to prefill their context again."""
        if self.full:
            return
        rule = self.preemption
        left = 0
        while self.running and not rule.enough(self, tokens):
            live = rule.victim(self)
            produced = self.step - live.join
            self._leave(live)
            self.used -= live.hold + produced
            live.generated += produced
            live.version += 1
            live.todo, live.context, live.kv, live.join, live.hold = live.kv + produced, 0, 0, -1, 0
            if live in self.joiners:
                self.joiners.remove(live)
            rule.requeue(self, live)
            self.rec.preemptions += 1
            tokens -= 1
            left += 1
        if left:
            rule.after(self)

    # --- pricing --------------------------------------------------------------------------------
    def _unpriceable(self, seconds: float) -> None:
        from ador.errors import ConfigError
        raise ConfigError("hardware", self.cost.system.device.name,
                          f"the model gives a non-finite or zero iteration time ({seconds:g} s): a bandwidth, rate "
                          "or clock of the design is too small to model")

    def tokens_out(self, live: Live) -> int:
        """Output tokens a running request has produced so far (before and during this decode run)."""
        return live.generated + self.step - live.join

    def mean_kv(self, n: int) -> float:
        return (self.sum_kv0 - self.sum_join) / n + self.step

    def decode_step_price(self, n: int, kv_bucket: int) -> Step:
        step = self.steps.get((n, kv_bucket))
        if step is None:
            c = self.cost
            # multi-step decoding pays the batch's host work once per scheduling decision
            host = self.overhead_s + self.host_s_per_seq * n / self.cfg.scheduler_steps
            step = Step([c.linear(n, DECODE), c.decode_attention(n, kv_bucket), c.head(n, DECODE)], host)
            if not 0 < step.total_s < _INF:
                self._unpriceable(step.total_s)
            self.steps[(n, kv_bucket)] = step
        return step

    def prefill_pieces(self, chunks: list[tuple[int, int]], decodes: int, completing: int,
                       tokens: int | None = None) -> list[Piece]:
        """One iteration: prompt chunks [(tokens, context)] fused with ``decodes`` decode rows
        (``tokens``: the chunks' total, if the caller knows it)."""
        c = self.cost
        if tokens is None:
            tokens = sum(t for t, _ in chunks)
        pieces = [c.linear(decodes + tokens, PREFILL)]
        attention = c.prefill_attention
        for t, ctx in chunks:
            pieces.append(attention(t, ctx))
        if decodes:
            pieces.append(c.decode_attention(decodes, self.mean_kv(decodes)))
            pieces.append(c.head(decodes + completing, DECODE))
        elif completing:
            pieces.append(c.head(completing, PREFILL))
        return pieces

    # --- execution ------------------------------------------------------------------------------
    def run_pieces(self, pieces: list[Piece], fraction: float = 1.0) -> float:
        """Record ``pieces`` as run (``fraction`` of them) and return their time."""
        uses = self.rec.uses
        total = 0.0
        for p in pieces:
            entry = uses.get(id(p))
            if entry is None:
                uses[id(p)] = [p, fraction]
            else:
                entry[1] += fraction
            total += p.time_s
        return total

    def mixed_iteration(self, chunks: list[tuple[int, int]], completing: list[Live], decodes: bool,
                        tokens: int | None = None) -> None:
        """One iteration of prompt chunks, with one decode step of every running request if
        ``decodes``; prefills that complete emit their first token at its end."""
        n = len(self.running) if decodes else 0
        duration = self.run_pieces(self.prefill_pieces(chunks, n, len(completing), tokens)) + self.overhead_s
        if self.host_s_per_seq:
            duration += self.host_s_per_seq * (n + len(chunks))
        if not 0 < duration < _INF:
            self._unpriceable(duration)
        self.last_start = self.t
        self.t += duration
        self.last_end = self.t
        self.rec.iterations += 1
        if n:
            self._step_done(n, self.t, self.t, self.t - self.last_step_end, 1)
        self.complete_prefills(completing, self.t)

    def _step_done(self, n: int, now: float, first_end: float, first_gap: float, steps: int,
                   gaps: list[tuple[float, int]] | None = None) -> None:
        """``steps`` decode steps of ``n`` requests ended at ``now``. The first ended at
        ``first_end``, ``first_gap`` after the previous step (joiners count from their first
        token); ``gaps`` lists the later steps' durations as (seconds, how many)."""
        tbt = self.rec.tbt
        measured = self.measured_running
        if self.joiners:
            ones = tbt.ones
            for j in self.joiners:
                if j.first_s != j.first_s:                 # NaN: this step gives its first token
                    j.first_s = j.last_s = first_end
                    if j.measured:
                        measured -= 1
                elif j.measured:
                    ones.append(first_end - j.last_s)
                    measured -= 1
            self.joiners = []
        if measured > 0 and first_gap == first_gap:       # not NaN (there was an earlier step)
            tbt.wvals.append(first_gap)
            tbt.wts.append(measured)
        if gaps and self.measured_running:
            m = self.measured_running
            for gap, count in gaps:
                tbt.wvals.append(gap)
                tbt.wts.append(count * m)
        if len(tbt.wvals) + len(tbt.ones) >= FLUSH:
            tbt.flush()
        if not self.full:
            self.used += n * steps
        self.last_step_end = now
        self.step += steps
        last = self.step - 1
        heap = self.heap
        while heap and heap[0][0] <= last:
            _, _, version, live = heappop(heap)
            if version != live.version or live.join < 0:
                continue
            self._leave(live)
            if not self.full:
                live.hold += last - live.join + 1
            live.kv += last - live.join + 1
            live.generated = live.output
            self._finish(live, now)

    def decode_run(self, max_steps: float, until: float = _INF, slow: float = 1.0,
                   through_finishes: bool = False) -> int:
        """Run up to ``max_steps`` decode-only iterations of the running batch; stop after the
        first that ends at or after ``until`` (under schedule-ahead, that starts at or after it: the
        decision at its end is the first to see what arrives at ``until``), before one whose KV
        growth would not fit, and after the first that finishes a request unless
        ``through_finishes`` (the scheduler's choice when
        a departure changes nothing it would decide). ``slow`` stretches the decode work (HBM
        contention). Returns the steps run."""
        total = 0
        while True:
            done, reason = self._decode_span(max_steps - total, until, slow)
            total += done
            if reason != FINISHED or not through_finishes or total >= max_steps or not self.running \
                    or self.waiting:          # a preemption queued a request: the scheduler decides next
                return total

    def _decode_span(self, max_steps: float, until: float, slow: float) -> tuple[int, int]:
        """Decode steps up to the next departure (or ``until``, the KV room, ``max_steps``)."""
        running = self.running
        n = len(running)
        full = self.full
        seqs = n + len(self.prefilling)
        if not full and self.blocks(n) > self.cap_blocks:
            self.preempt_for(n)
            n = len(running)
            seqs = n + len(self.prefilling)
            # the scheduler decides again after one step: what left can let a waiting request in with
            # nobody else leaving (SGLang's ratio reset; the preempted request itself, where the pool
            # has no partly filled blocks and the step overshot by one token)
            if max_steps > 1:
                max_steps = 1
        if not n:
            return 0, ROOM
        heap = self.heap
        top = heap[0]
        while top[2] != top[3].version or top[3].join < 0:
            heappop(heap)
            top = heap[0]
        step = self.step
        k: float = top[0] - step + 1
        reason = FINISHED
        if max_steps < k:
            k, reason = max_steps, MAX_STEPS
        if not full:
            room = ((self.cap_blocks - self.slack_blocks(seqs)) * self.block - self.used) // n
            if room < k:
                k, reason = (room if room > 1 else 1), ROOM
        mean = (self.sum_kv0 - self.sum_join) / n + step
        t = self.t
        steps_cache = self.steps
        use = self.rec.uses
        lag = 1 if self.ahead else 0     # schedule-ahead: what arrives at ``until`` is seen one step later
        d = start = 0.0
        done = 0
        first_end = first_gap = math.nan
        gaps: list[tuple[float, int]] = []
        limit = int(k)                        # finite: the next departure bounds it
        while done < limit:
            bucket = -(-int(mean) // KV_BUCKET) * KV_BUCKET
            if bucket < KV_BUCKET:
                bucket = KV_BUCKET
            seg = math.ceil(bucket + 1 - mean)
            if seg > limit - done:
                seg = limit - done
            elif seg < 1:
                seg = 1
            price = steps_cache.get((n, bucket))
            if price is None:
                price = self.decode_step_price(n, bucket)
            d = price.total_s if slow == 1.0 else price.decode_s * slow + price.host_s
            stop = t + (seg - lag) * d >= until   # (ahead: the first step starting at or after it)
            if stop:
                seg = max(1, min(seg, math.ceil((until - t) / d) + lag))
            if done == 0:
                first_end = t + d
                first_gap = first_end - self.last_step_end
                if seg > 1:
                    gaps.append((d, seg - 1))
            else:
                gaps.append((d, seg))
            entry = use.get(id(price))
            if entry is None:
                use[id(price)] = [price, seg]
            else:
                entry[1] += seg
            start = t + (seg - 1) * d          # the last step's start, as stepping computes it
            t += seg * d
            done += seg
            mean += seg
            if stop:
                reason = UNTIL
                break
        self.rec.iterations += done
        self.last_start, self.t, self.last_end = start, t, t
        self._step_done(n, t, first_end, first_gap, done, gaps)
        return done, reason

