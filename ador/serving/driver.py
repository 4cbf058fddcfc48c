"""The event loop: feed each replica its arrivals and let its scheduler run batches until done.

Requests enter as columns and become ``Live`` objects only when they arrive; finished requests
are folded into the recorder's histograms and dropped, so memory follows the requests in the
system, not the requests simulated. Replicas share the load round-robin (request i goes to
replica i mod R) and, being independent, are simulated one after the other.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ador.errors import AdorError
from ador.hardware.runtime import RuntimeProfile
from ador.perf.evaluate import prefilled_tokens
from ador.perf.iteration import IterationCost
from ador.progress import Progress
from ador.serving.config import SchedulerConfig
from ador.serving.recorder import Recorder
from ador.serving.live import Live
from ador.serving.replica import Replica
from ador.serving.requests import RequestArrays

_INF = math.inf
_CHUNK = 4096            # requests converted from numpy to Python at a time
_STALL_LIMIT = 1000      # iterations without the clock or any request moving: a scheduler bug


@dataclass(frozen=True)
class Setting:
    """What every replica of one simulation shares."""
    cfg: SchedulerConfig
    cost: IterationCost
    capacity_tokens: int
    rec: Recorder
    hbm_bw: float
    replicas: int
    step_by_step: bool = False
    request_overhead_s: float = 0.0  # the runtime's fixed cost per request before it can queue (front end)
    link_bw: float = 0.0             # disaggregated: bytes/s a device sends its KV shard at
    kv_bytes_per_token: float = 0.0  # per device
    handoff_latency_s: float = 0.0
    clients: int = 0                 # closed loop: clients per replica, one request outstanding each
    runtime: RuntimeProfile | None = None   # its passes' rules (None: the prefill emits the first token)
    prefix_cached: float = 0.0       # share of each prompt in the prefix cache when it arrives

    @property
    def first_token_from_decode(self) -> bool:
        return self.runtime is not None and self.runtime.first_token_from_decode

    def replica(self, on_prefilled=None) -> Replica:
        return Replica(self.cost, self.cfg, self.capacity_tokens, self.rec, hbm_bw=self.hbm_bw,
                       on_prefilled=on_prefilled, clients=self.clients, client_overhead_s=self.request_overhead_s,
                       first_token_from_decode=self.first_token_from_decode)

    def prefill_prompt(self):
        """What a request's prefill covers, set as it queues (None: the whole prompt, nothing to set):
        ``evaluate.prefilled_tokens`` (under a runtime whose first token comes from a decode step over
        the last prompt token, all but that token), less the prompt's blocks found in the prefix cache
        (``prefix_cached``: whole KV blocks, and never the last prompt token, which vLLM's and SGLang's
        prefix caches always compute: ``cached_prefix_tokens``), which the pass attends to as context.
        A pass covers at least one token (a step needs a token to work on), so a one-token prompt under
        a from-decode runtime ends with a KV cache one token longer than the runtime's."""
        runtime = self.runtime
        share, block = self.prefix_cached, self.cfg.block_tokens
        if not self.first_token_from_decode and not share:
            return None

        def shorten(live: Live) -> None:
            covered = live.prompt if runtime is None else prefilled_tokens(runtime, live.prompt)
            # the pass covers at least one token of what the runtime prefills
            cached = min(cached_prefix_tokens(live.prompt, share, block), max(0, covered - 1) // block * block)
            live.context = cached
            live.todo = max(1, covered - cached)
        return shorten


def cached_prefix_tokens(prompt: int, share: float, block: int) -> int:
    """Prompt tokens a prefix cache holding ``share`` of the prompt serves: whole blocks of ``block``
    tokens (vLLM caches full blocks only; SGLang's radix cache, page size 1, any token), never the last
    prompt token (vLLM recomputes it when the whole prompt hits: its logits give the first token)."""
    return min(int(share * prompt) // block, (prompt - 1) // block) * block


class Arrivals:
    """Requests of one replica in order of arrival, made ``Live`` as the clock reaches them."""
    __slots__ = ("arrays", "index", "measured", "pos", "n", "buf", "buf_at", "next_s", "prepare", "_times")

    def __init__(self, arrays: RequestArrays, index: np.ndarray, measured: tuple[int, int],
                 times: np.ndarray | None = None, prepare=None, delay_s: float = 0.0) -> None:
        self.arrays, self.index, self.measured = arrays, index, measured
        self.prepare = prepare                      # adjusts a Live before it queues
        # when each may queue: its arrival plus the runtime's per-request front-end cost (or given)
        times = arrays.arrival_s[index] + delay_s if times is None else times
        self.buf: list = []
        self.buf_at = 0
        self.pos = 0
        self.n = len(index)
        self._times = times
        self.next_s = _INF
        self._refill()

    def _refill(self) -> None:
        lo = self.pos
        hi = min(self.n, lo + _CHUNK)
        idx = self.index[lo:hi]
        self.buf = list(zip(self._times[lo:hi].tolist(), idx.tolist(), self.arrays.arrival_s[idx].tolist(),
                            self.arrays.prompt_len[idx].tolist(), self.arrays.output_len[idx].tolist()))
        self.buf_at = 0
        self.next_s = self.buf[0][0] if self.buf else _INF

    def pull(self, replica: Replica, now: float) -> None:
        """Queue every request that has arrived by ``now`` (what the replica's next decision sees:
        ``Replica.observe``), refusing those that could never fit in its KV cache."""
        lo, hi = self.measured
        waiting = replica.waiting
        buf = self.buf
        while self.next_s <= now and self.pos < self.n:     # (a clock at infinity: an unpriceable design)
            _, rid, arrival, prompt, output = buf[self.buf_at]      # (pulled once ready: the first field)
            live = Live(rid, arrival, prompt, output, lo <= rid < hi)
            if self.prepare is not None:
                self.prepare(live)
            if replica.fits_ever(live):
                waiting.append(live)
            else:
                replica.rec.refused += 1
            self.buf_at += 1
            self.pos += 1
            if self.buf_at < len(buf):
                self.next_s = buf[self.buf_at][0]
            else:
                self._refill()
                buf = self.buf


def serve_replica(sched, arrivals: Arrivals, bar: Progress | None = None, step_by_step: bool = False) -> None:
    """Run one replica's scheduler over its arrivals until every request has left.
    ``step_by_step``: one decode iteration per scheduling decision (the reference the closed-form
    decode runs are tested against, and the benchmark's baseline)."""
    r = sched.replica
    rec = r.rec
    stalls = 0
    loops = 0
    while True:
        seen = r.observe()
        if arrivals.next_s <= seen:
            arrivals.pull(r, seen)
        batch = sched.next_batch(arrivals.next_s)
        if batch is None:
            if arrivals.next_s <= r.t:       # arrived, unseen, and nothing to run: it would never be seen
                raise AdorError(f"serving simulation stalled at t={r.t:.6g} s ({sched.name}): an arrival is "
                                "never seen (a scheduler bug)")
            if arrivals.next_s < _INF:
                r.t = max(r.t, arrivals.next_s)
            elif r.waiting:
                r.waiting.popleft()          # cannot be admitted next to nothing: refuse it
                rec.refused += 1
            else:
                break
            continue
        start, finished = r.t, rec.finished
        kind = batch.kind
        if kind == "decode":
            one = step_by_step or r.sends_unseen()
            batch.steps = r.decode_run(1 if one else batch.max_steps, batch.until, batch.slow, batch.through)
        elif kind == "mixed":
            r.mixed_iteration(batch.chunks, batch.completing, batch.decodes, batch.tokens)
        sched.on_batch_end(batch, start)
        if r.t == start and rec.finished == finished and kind != "mixed":
            stalls += 1
            if stalls > _STALL_LIMIT:
                raise AdorError(f"serving simulation stalled at t={r.t:.6g} s ({sched.name}): a scheduler bug")
        else:
            stalls = 0
        loops += 1
        if bar is not None and not loops & 1023:
            bar.update(rec.finished)


def _split(n: int, parts: int) -> list[np.ndarray]:
    """Request ids dealt round-robin to ``parts`` replicas; replicas beyond the n-th get none and
    are not listed (a run with more replicas than requests lists n, not ``parts``)."""
    ids = np.arange(n, dtype=np.int64)
    return [ids[k::parts] for k in range(min(parts, n))]


def serve_colocated(scheduler_cls, setting: Setting, arrays: RequestArrays, measured: tuple[int, int],
                    bar: Progress | None = None) -> None:
    for index in _split(len(arrays), setting.replicas):
        if len(index):
            serve_replica(scheduler_cls(setting.replica()),
                          Arrivals(arrays, index, measured, delay_s=setting.request_overhead_s,
                                   prepare=setting.prefill_prompt()), bar, setting.step_by_step)


def serve_disaggregated(prefill_cls, decode_cls, share: float, setting: Setting, arrays: RequestArrays,
                        measured: tuple[int, int], bar: Progress | None = None) -> None:
    """Prefill replicas first (their finished prompts' KV caches leave over the links), then the
    decode replicas over the handed-off requests in order of KV arrival."""
    n = len(arrays)
    n_pre = min(setting.replicas - 1, max(1, round(setting.replicas * share)))
    n_dec = setting.replicas - n_pre
    ready = np.full(n, _INF)
    first = np.full(n, math.nan)
    admitted = np.full(n, math.nan)

    def moved(live: Live, now: float) -> None:
        # every device sends its KV shard in parallel over its own links
        ready[live.id] = now + live.kv * setting.kv_bytes_per_token / setting.link_bw + setting.handoff_latency_s
        first[live.id] = now
        admitted[live.id] = live.admitted_s

    for index in _split(n, n_pre):
        if len(index):
            serve_replica(prefill_cls(setting.replica(on_prefilled=moved)),
                          Arrivals(arrays, index, measured, delay_s=setting.request_overhead_s,
                                   prepare=setting.prefill_prompt()), bar, setting.step_by_step)
    handed = np.flatnonzero(np.isfinite(ready))
    handed = handed[np.argsort(ready[handed], kind="stable")]

    def arrive_with_kv(live: Live) -> None:
        live.first_s = live.last_s = first[live.id]
        live.admitted_s = admitted[live.id]
        live.generated = 1
        live.todo = 0

    for k in range(min(n_dec, len(handed))):
        index = handed[k::n_dec]
        if len(index):
            serve_replica(decode_cls(setting.replica()),
                          Arrivals(arrays, index, measured, times=ready[index], prepare=arrive_with_kv), bar,
                          setting.step_by_step)


def measured_range(n: int, window: Sequence[float]) -> tuple[int, int]:
    """Request indices [lo, hi) whose statistics count, from fractions of the run."""
    lo, hi = window
    return int(math.floor(lo * n)), max(int(math.floor(lo * n)) + 1, int(math.ceil(hi * n)))
