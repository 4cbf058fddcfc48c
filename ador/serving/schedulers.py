"""Scheduling policies: one class each, registered by name.

A scheduler decides what a replica runs next; the replica (``ador.serving.replica``) executes it.
The base class has three hooks:

- ``admit(live)``: take a waiting request into service if the policy allows it now (KV blocks,
  sequence slots; the decode side of a disaggregated system takes the prompt's KV cache too);
- ``next_batch(next_arrival_s)``: the next iteration (a ``Batch``), or None when idle until the
  next arrival;
- ``on_batch_end(batch, started_s)``: bookkeeping after it ran.

Policies:

- ``continuous`` (vLLM, also SGLang's default): prefill-first. Waiting prompts that fit run as a
  prefill-only iteration of up to ``max_batched_tokens`` prompt tokens, stalling every running
  decode (a prompt longer than that is cut into chunks, as SGLang's chunked prefill does);
  otherwise every running request decodes. With ``scheduler_steps`` k > 1 (vLLM multi-step),
  new prompts are only taken every k decode steps.
- ``chunked`` (Sarathi-Serve; TensorRT-LLM in-flight batching with chunked context): every
  iteration carries all running decodes plus prompt chunks filling the token budget
  ``chunk_tokens`` (decodes count one token each), fused into one pass.
- ``concurrent`` (ADOR): prefill batches run on the systolic arrays while decode steps run back
  to back on the MAC trees; while both run, each is slowed by the factor by which their combined
  HBM demand exceeds what HBM delivers.
- ``disaggregated`` (Splitwise, DistServe): a share of the replicas only prefill (prefill-first
  batches), the rest only decode; each prompt's KV cache moves over the chip-to-chip links.
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar

from ador.errors import ConfigError
from ador.hardware.system import System
from ador.perf.ador_engines import MACTREE, SYSTOLIC
from ador.perf.iteration import KV_BUCKET
from ador.serving.live import Live
from ador.serving.replica import Replica
from ador.workload.ops import DECODE, PREFILL

_INF = math.inf


class Batch:
    """One iteration (``kind`` mixed: prompt chunks, with one decode step if ``decodes``) or a run
    of decode-only iterations (``kind`` decode: at most ``max_steps``, stopping at ``until``)."""
    __slots__ = ("kind", "chunks", "completing", "decodes", "max_steps", "until", "slow", "steps", "through",
                 "tokens")

    def __init__(self, kind: str, chunks=(), completing=(), decodes: bool = False, max_steps: float = _INF,
                 until: float = _INF, slow: float = 1.0, through: bool = False, tokens: int = 0) -> None:
        self.kind, self.chunks, self.completing, self.decodes = kind, chunks, completing, decodes
        self.tokens = tokens                # prompt tokens in the chunks
        self.max_steps, self.until, self.slow = max_steps, until, slow
        self.through = through              # decode on through departures (they change no decision)
        self.steps = 0                      # decode steps it ran (set by the replica)


class Scheduler:
    """Base of every policy: FCFS admission by KV blocks and sequence slots."""
    name: ClassVar[str] = ""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.cfg = replica.cfg

    @classmethod
    def engines(cls, system: System) -> dict[str, str] | None:
        """Which engine runs each phase (None: every operator on its default engine)."""
        return None

    def admit(self, live: Live) -> bool:
        return self.replica.admit(live)

    def admissible(self, live: Live) -> bool:
        """Would ``admit`` take ``live`` now (without taking it)?"""
        r = self.replica
        seqs = len(r.running) + len(r.prefilling)
        need = live.todo + live.context + (live.output - live.generated if r.full else 0)
        return seqs < self.cfg.max_batch and r.blocks(need, 1) <= r.cap_blocks - r.watermark_blocks

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        raise NotImplementedError

    def on_batch_end(self, batch: Batch, started_s: float) -> None:
        """After ``batch`` ran (nothing to do by default)."""

    # --- helpers shared by the policies -----------------------------------------------------------
    def prefill_pending(self) -> bool:
        r = self.replica
        return bool(r.prefilling) or (bool(r.waiting) and self.admissible(r.waiting[0]))

    def take_prefill(self, budget: int, split_any: bool,
                     admit: bool = True) -> tuple[list[tuple[int, int]], list[Live], int]:
        """Prompt chunks [(tokens, context)] up to ``budget`` tokens, FCFS: partly prefilled prompts
        first, then waiting ones as they are admitted (unless not ``admit``). ``split_any``: cut any
        prompt to fill the budget (Sarathi); else only a prompt that alone exceeds it is cut, and a
        whole prompt that does not fit waits for the next iteration. Returns the chunks, the prompts
        completed and the tokens taken."""
        r = self.replica
        chunks: list[tuple[int, int]] = []
        completing: list[Live] = []
        prefilling, waiting = r.prefilling, r.waiting
        pending = len(prefilling)             # partly prefilled prompts (admitted ones append)
        i = 0
        left = budget
        while left > 0:
            if i < pending:
                live = prefilling[i]
                i += 1
            else:
                if not waiting or not admit:
                    break
                live = waiting[0]
                if chunks and not split_any and live.todo > left:
                    break
                if not self.admit(live):
                    break
                waiting.popleft()
            todo = live.todo
            take = todo if todo < left else left
            chunks.append((take, live.context))
            live.context += take
            live.todo = todo - take
            left -= take
            if take == todo:
                completing.append(live)
        return chunks, completing, budget - left


class ContinuousScheduler(Scheduler):
    """vLLM's prefill-first continuous batching (multi-step with ``scheduler_steps`` > 1)."""
    name = "continuous"

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica)
        self.since_schedule = 0           # decode steps since the last scheduling point

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        r = self.replica
        k = self.cfg.scheduler_steps
        boundary = self.since_schedule % k == 0 or not r.running
        if boundary and self.prefill_pending():
            chunks, completing, tokens = self.take_prefill(self.cfg.max_batched_tokens, split_any=False)
            if chunks:
                return Batch("mixed", chunks, completing, tokens=tokens)
        if not r.running:
            return None
        if not boundary:
            return Batch("decode", max_steps=k - self.since_schedule % k)
        if r.waiting or r.prefilling:
            return Batch("decode")                   # nobody fits until somebody leaves
        return Batch("decode", until=next_arrival_s, through=True)

    def on_batch_end(self, batch: Batch, started_s: float) -> None:
        self.since_schedule = 0 if batch.kind == "mixed" else self.since_schedule + batch.steps


class ChunkedScheduler(Scheduler):
    """Sarathi-Serve's stall-free batching: decodes plus prompt chunks within a token budget
    (TensorRT-LLM's, with its batch waiting where configured)."""
    name = "chunked"

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica)
        self.waited = 0                   # decode iterations new prompts have waited (batch waiting)
        self.waiting_batch: Batch | None = None   # the decode run they are waiting through

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        r = self.replica
        n = len(r.running)
        preempted = r.rec.preemptions
        if n:
            r.preempt_for(n)
            n = len(r.running)
        admit = self.cfg.admit_after_preemption or r.rec.preemptions == preempted
        budget = self.cfg.chunk_tokens - n
        wait = self._batch_wait(n, budget) if admit else 0
        if wait:
            self.waiting_batch = Batch("decode", max_steps=wait, until=next_arrival_s)
            return self.waiting_batch
        if budget > 0 and (r.prefilling or (admit and self.prefill_pending())):
            chunks, completing, tokens = self.take_prefill(budget, split_any=self.cfg.split_prompts, admit=admit)
            if chunks:
                return Batch("mixed", chunks, completing, decodes=n > 0, tokens=tokens)
        if not n:
            return None
        if r.rec.preemptions != preempted:
            return Batch("decode", max_steps=1)     # what just left may be let in after one step
        if r.waiting or r.prefilling or budget <= 0:
            return Batch("decode")
        return Batch("decode", until=next_arrival_s, through=True)

    def _batch_wait(self, n: int, budget: int) -> int:
        """Decode-only iterations new prompts wait now (TensorRT-LLM's batch waiting): while ``n``
        requests decode and prompts wait, until an iteration would carry the token threshold or the
        waiting has lasted its iterations (0: schedule them now). The run ends early at an arrival or
        a departure, and the threshold is counted again."""
        cfg = self.cfg
        r = self.replica
        if not (cfg.batch_wait_iters or cfg.batch_wait_tokens_ratio) or not n or budget <= 0 \
                or not self.prefill_pending():
            self.waited = 0
            return 0
        prompts = sum(live.todo for live in r.prefilling) + r.sent_prompt_tokens()
        tokens = n + min(prompts, budget)
        if self.waited >= cfg.batch_wait_iters or tokens >= cfg.batch_wait_tokens_ratio * cfg.chunk_tokens:
            self.waited = 0
            return 0
        return cfg.batch_wait_iters - self.waited

    def on_batch_end(self, batch: Batch, started_s: float) -> None:
        if batch is self.waiting_batch:
            self.waited += batch.steps
            self.waiting_batch = None


class ConcurrentScheduler(Scheduler):
    """ADOR: prefill batches on the systolic arrays, decode steps on the MAC trees, at once."""
    name = "concurrent"

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica)
        self.bw = replica.hbm_bw
        self.pf: list | None = None   # [completing, time alone, DRAM bytes/s, fraction left, pieces]

    @classmethod
    def engines(cls, system: System) -> dict[str, str]:
        device = system.device
        if device.kind != "ador" or not device.systolic.count or not device.mactree.count:
            raise ConfigError("policy", "concurrent", f"{device.name} has no separate prefill and decode engines "
                                                      "(needs systolic arrays and MAC trees)")
        return {PREFILL: SYSTOLIC, DECODE: MACTREE}

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        r = self.replica
        if self.pf is None and (r.waiting or r.prefilling):
            chunks, completing, tokens = self.take_prefill(self.cfg.concurrent_chunk_tokens, split_any=False)
            if chunks:
                pieces = r.prefill_pieces(chunks, 0, len(completing), tokens)
                alone = sum(p.time_s for p in pieces)
                if not 0 < alone < _INF:
                    r._unpriceable(alone)
                self.pf = [completing, alone, sum(p.dram_bytes for p in pieces) / alone, 1.0, pieces]
        preempted = r.rec.preemptions
        if r.running:
            r.preempt_for(len(r.running))
        n = len(r.running)
        if not n:
            return Batch("prefill_alone") if self.pf is not None else None
        if self.pf is None:
            if r.rec.preemptions != preempted:
                return Batch("decode", max_steps=1)     # what just left may be let in after one step
            if r.waiting:
                return Batch("decode")
            return Batch("decode", until=next_arrival_s, through=True)
        mean = r.mean_kv(n)
        bucket = max(KV_BUCKET, -(-int(mean) // KV_BUCKET) * KV_BUCKET)
        step = r.decode_step_price(n, bucket)
        slow = max(1.0, (self.pf[2] + step.dram_bytes / step.decode_s) / self.bw)
        finish_at = r.t + self.pf[3] * self.pf[1] * slow
        return Batch("decode", max_steps=max(1, math.ceil(bucket + 1 - mean)), until=finish_at, slow=slow)

    def on_batch_end(self, batch: Batch, started_s: float) -> None:
        pf = self.pf
        if pf is None:
            return
        r = self.replica
        completing, alone, _, left, pieces = pf
        if batch.kind == "prefill_alone":
            done, finish_at = left, started_s + left * alone
            r.t = finish_at
            r.rec.iterations += 1
        else:
            rate = 1.0 / (alone * batch.slow)
            done = min(left, (r.t - started_s) * rate)
            finish_at = started_s + left / rate if left <= (r.t - started_s) * rate else None
        for p in pieces:
            r.rec.use(p, done)
        pf[3] = left - done
        if finish_at is not None:
            self.pf = None
            r.complete_prefills(completing, finish_at)


class PrefillOnlyScheduler(Scheduler):
    """Disaggregated prefill side: prefill-first batches; finished prompts leave for a decoder."""
    name = "prefill-only"

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        if self.prefill_pending():
            chunks, completing, tokens = self.take_prefill(self.cfg.max_batched_tokens, split_any=False)
            if chunks:
                return Batch("mixed", chunks, completing, tokens=tokens)
        return None


class DecodeOnlyScheduler(Scheduler):
    """Disaggregated decode side: requests arrive with their prompt's KV cache and decode."""
    name = "decode-only"

    def admit(self, live: Live) -> bool:
        return self.replica.admit(live, with_kv=True)

    def admissible(self, live: Live) -> bool:
        r = self.replica
        need = live.prompt + (live.output - 1 if r.full else 0)
        return r.in_service() < self.cfg.max_batch and r.blocks(need, 1) <= r.cap_blocks - r.watermark_blocks

    def next_batch(self, next_arrival_s: float) -> Batch | None:
        r = self.replica
        while r.waiting and self.admit(r.waiting[0]):
            r.waiting.popleft()
        if not r.running:
            return None
        if r.waiting:
            return Batch("decode")
        return Batch("decode", until=next_arrival_s, through=True)


class DisaggregatedScheduler(Scheduler):
    """Splitwise/DistServe: ``prefill_share`` of the replicas prefill, the others decode."""
    name = "disaggregated"
    prefill = PrefillOnlyScheduler
    decode = DecodeOnlyScheduler

    def next_batch(self, next_arrival_s: float) -> Batch | None:   # pragma: no cover - roles do the work
        raise NotImplementedError("a disaggregated system runs PrefillOnly and DecodeOnly schedulers")


SCHEDULERS: dict[str, type[Scheduler]] = {}


def register(cls: type[Scheduler]) -> type[Scheduler]:
    SCHEDULERS[cls.name] = cls
    return cls


for _cls in (ContinuousScheduler, ChunkedScheduler, ConcurrentScheduler, DisaggregatedScheduler):
    register(_cls)


def scheduler_class(policy: str) -> type[Scheduler]:
    try:
        return SCHEDULERS[policy]
    except KeyError:
        raise ConfigError("policy", policy, f"unknown policy (known: {', '.join(SCHEDULERS)})") from None


Factory = Callable[[Replica], Scheduler]
