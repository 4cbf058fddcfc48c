"""Iteration-level discrete-event simulation of LLM serving.

Requests arrive, wait, are admitted while paged KV-cache blocks are free, run under a scheduling
policy, and leave. Each iteration is priced by the performance model (``IterationCost``): a mixed
iteration is priced as one iteration, not as two stages. Decoding requests are not touched one by
one: a global decode-step counter says how many tokens each has, and a heap says who finishes
when, so an iteration costs O(1) plus its admissions.

Policies:
- ``continuous``: prefill-first continuous batching (vLLM): waiting prompts that fit run as a
  prefill-only iteration, which stalls the running decodes; otherwise all running requests decode.
- ``chunked``: Sarathi-style chunked prefill: each iteration carries all decodes plus prefill
  chunks up to a token budget, fused into one pass.
- ``concurrent``: ADOR: prefill batches run on the systolic arrays while decode steps run back to
  back on the MAC trees, asynchronously; both slow down only when their combined HBM bandwidth
  demand exceeds what HBM delivers.
- ``disaggregated``: separate prefill and decode replicas (Splitwise/DistServe); the KV cache of
  each prompt moves over the chip-to-chip links from a prefill to a decode replica.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ador.errors import ConfigError
from ador.hardware.system import System
from ador.perf.ador_engines import MACTREE, SYSTOLIC
from ador.perf.evaluate import capacity_bytes
from ador.perf.iteration import IterationCost, Piece
from ador.perf.stage import rates as stage_rates
from ador.progress import Progress
from ador.serving.requests import Request
from ador.workload.memory import activation_bytes_per_device, kv_bytes_per_token_per_device, weight_bytes_per_device
from ador.workload.models import ModelSpec
from ador.workload.ops import DECODE, PREFILL
from ador.workload.precision import Precision

POLICIES = ("continuous", "chunked", "concurrent", "disaggregated")


@dataclass(frozen=True)
class SchedulerConfig:
    policy: str = "continuous"
    max_batch: int = 256               # running sequences per replica (vLLM max_num_seqs)
    max_batched_tokens: int = 8192     # prompt tokens per prefill iteration (continuous, disaggregated)
    chunk_tokens: int = 512            # token budget per iteration (chunked)
    concurrent_chunk_tokens: int = 8192  # prompt tokens per prefill batch on the arrays (concurrent)
    block_tokens: int = 16             # KV-cache page (vLLM default)
    prefill_share: float = 0.5         # disaggregated: share of replicas that prefill

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError("policy", self.policy, f"unknown policy (known: {', '.join(POLICIES)})")
        for name in ("max_batch", "max_batched_tokens", "chunk_tokens", "concurrent_chunk_tokens", "block_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not 0 < self.prefill_share < 1:
            raise ConfigError("prefill_share", self.prefill_share, "must be between 0 and 1")


class _Live:
    __slots__ = ("req", "todo", "context", "first_s", "last_s", "admitted_s", "join", "finish", "version",
                 "generated", "kv", "done_s", "ready_s")

    def __init__(self, req: Request) -> None:
        self.req = req
        self.todo = req.prompt_len       # prompt tokens still to prefill
        self.context = 0                 # tokens already in the KV cache when prefill resumes
        self.first_s = math.nan
        self.last_s = math.nan
        self.admitted_s = math.nan
        self.join = -1
        self.finish = -1
        self.version = 0
        self.generated = 0               # tokens out before the current decode run
        self.kv = 0                      # KV tokens held
        self.done_s = math.nan
        self.ready_s = req.arrival_s     # when it may be admitted (arrival, or KV arrival)


@dataclass
class _Log:
    gaps: list[float] = field(default_factory=list)      # pooled time-between-token samples ...
    weights: list[int] = field(default_factory=list)     # ... with how many requests saw each
    uses: dict[int, list] = field(default_factory=dict)  # id(piece) -> [piece, times used]
    preemptions: int = 0
    iterations: int = 0
    peak_in_service: int = 0       # most requests holding KV cache at once, any replica

    def add(self, piece: Piece, scale: float = 1.0) -> None:
        entry = self.uses.get(id(piece))
        if entry is None:
            self.uses[id(piece)] = [piece, scale]
        else:
            entry[1] += scale

    def busy(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for piece, times in self.uses.values():
            for k, v in piece.busy_s.items():
                out[k] = out.get(k, 0.0) + v * times
        return out

    def dram_bytes(self) -> float:
        return sum(piece.dram_bytes * times for piece, times in self.uses.values())


def kv_capacity_tokens(system: System, model: ModelSpec, precision: Precision, cfg: SchedulerConfig) -> int:
    """KV-cache tokens one replica holds: device memory after weights and a prefill's activations."""
    per_token = kv_bytes_per_token_per_device(model, precision, system.tp, system.pp)
    free = capacity_bytes(system) - weight_bytes_per_device(model, precision, system.tp, system.pp) \
        - activation_bytes_per_device(model, precision, system.tp, cfg.max_batched_tokens, cfg.max_batch)
    return max(0, int(free // per_token))


class _Replica:
    """One model replica (tp x pp devices) serving the requests routed to it."""

    def __init__(self, cost: IterationCost, cfg: SchedulerConfig, capacity_tokens: int, *, mode: str,
                 log: _Log, bw_bytes_per_s: float, on_done=None) -> None:
        self.cost, self.cfg, self.mode, self.log = cost, cfg, mode, log
        self.cap_blocks = capacity_tokens // cfg.block_tokens
        self.bw = bw_bytes_per_s
        self.on_done = on_done
        self.t = 0.0
        self.step = 0                    # decode steps done
        self.last_step_end = math.nan
        self.waiting: deque[_Live] = deque()
        self.prefilling: list[_Live] = []
        self.running: list[_Live] = []   # decoding, in admission order (newest last)
        self.joiners: list[_Live] = []
        self.heap: list[tuple[int, int, int, _Live]] = []
        self.used_tokens = 0
        self.sum_prompt = 0              # KV tokens of running requests when they joined
        self.sum_join = 0
        self.refused: list[_Live] = []
        self.finished: list[_Live] = []
        self.pf: list | None = None      # concurrent: [requests, alone time, DRAM bytes, fraction left, pieces]

    # --- memory ---------------------------------------------------------------------------
    def blocks(self, extra_tokens: int = 0, extra_seqs: int = 0) -> int:
        seqs = len(self.running) + len(self.prefilling) + extra_seqs
        return -(-(self.used_tokens + extra_tokens) // self.cfg.block_tokens) + seqs // 2

    def fits_ever(self, live: _Live) -> bool:
        need = -(-(live.req.prompt_len + live.req.output_len) // self.cfg.block_tokens)
        return need <= self.cap_blocks

    # --- bookkeeping ----------------------------------------------------------------------
    def _kv_of(self, live: _Live) -> int:
        return live.kv + (self.step - live.join) if live.join >= 0 else live.kv

    def _join(self, live: _Live, now: float) -> None:
        remaining = live.req.output_len - live.generated
        if remaining <= 0:
            self._finish(live, now)
            return
        live.join = self.step
        live.finish = self.step + remaining - 1
        self.running.append(live)
        self.joiners.append(live)
        self.sum_prompt += live.kv
        self.sum_join += self.step
        heapq.heappush(self.heap, (live.finish, live.req.id, live.version, live))

    def _leave_running(self, live: _Live) -> None:
        self.running.remove(live)
        self.sum_prompt -= live.kv
        self.sum_join -= live.join

    def _finish(self, live: _Live, now: float) -> None:
        live.done_s = now
        self.used_tokens -= live.kv
        self.finished.append(live)
        if self.on_done:
            self.on_done(live, now)

    def _preempt_for(self, tokens: int) -> None:
        """vLLM-style recompute preemption: drop the newest running requests until ``tokens`` more
        KV tokens fit; they return to the head of the queue and prefill again later."""
        while self.running and self.blocks(tokens) > self.cap_blocks:
            live = self.running[-1]
            produced = self.step - live.join
            self._leave_running(live)
            kv = live.kv + produced
            self.used_tokens -= live.kv
            live.generated += produced
            live.version += 1
            live.todo, live.context, live.kv, live.join = kv, 0, 0, -1
            if live in self.joiners:
                self.joiners.remove(live)
            self.waiting.appendleft(live)
            self.log.preemptions += 1
            tokens -= 1

    # --- pricing --------------------------------------------------------------------------
    def _decode_piece(self, n: int) -> list[Piece]:
        mean_kv = (self.sum_prompt + n * self.step - self.sum_join) / n
        c = self.cost
        return [c.linear(n, DECODE), c.decode_attention(n, mean_kv), c.head(n, DECODE)]

    def _prefill_pieces(self, chunks: list[tuple[int, int]], completing: int) -> list[Piece]:
        c = self.cost
        pieces = [c.linear(sum(t for t, _ in chunks), PREFILL)]
        pieces += [c.prefill_attention(t, ctx) for t, ctx in chunks]
        if completing:
            pieces.append(c.head(completing, PREFILL))
        return pieces

    # --- scheduling -----------------------------------------------------------------------
    def _admit(self, live: _Live, now: float) -> bool:
        need = live.todo + live.context
        if len(self.running) + len(self.prefilling) >= self.cfg.max_batch:
            return False
        if self.blocks(need, 1) > self.cap_blocks:
            return False
        if math.isnan(live.admitted_s):
            live.admitted_s = now
        self.used_tokens += need
        live.kv = live.context
        self.prefilling.append(live)
        self.log.peak_in_service = max(self.log.peak_in_service, len(self.running) + len(self.prefilling))
        return True

    def _take_prefill(self, budget: int) -> tuple[list[tuple[int, int]], list[_Live]]:
        """Admit and chunk waiting prompts FCFS up to ``budget`` tokens: [(tokens, context)], and
        the requests whose prefill completes."""
        chunks, completing = [], []
        while budget > 0:
            if not self.prefilling or all(p.todo == 0 for p in self.prefilling):
                if not self.waiting or not self._admit(self.waiting[0], self.t):
                    break
                self.waiting.popleft()
            live = next(p for p in self.prefilling if p.todo > 0)
            take = min(live.todo, budget)
            chunks.append((take, live.context))
            live.context += take
            live.todo -= take
            budget -= take
            if live.todo == 0:
                completing.append(live)
        return chunks, completing

    def _complete_prefills(self, done: list[_Live], now: float) -> None:
        for live in done:
            self.prefilling.remove(live)
            live.kv = live.context
            live.context = 0
            if math.isnan(live.first_s):
                live.first_s = now
                live.generated = 1
            live.last_s = now
            if self.mode == "prefill_only":
                self.used_tokens -= live.kv
                self._finish(live, now)
            else:
                self._join(live, now)

    def _decode_step_done(self, n: int, now: float) -> None:
        log = self.log
        joiners = [j for j in self.joiners if j.join == self.step]
        cont = n - len(joiners)
        if cont > 0 and not math.isnan(self.last_step_end):
            log.gaps.append(now - self.last_step_end)
            log.weights.append(cont)
        for j in joiners:
            log.gaps.append(now - j.last_s)
            log.weights.append(1)
        self.joiners = []
        self.used_tokens += n
        self.last_step_end = now
        step = self.step
        self.step += 1
        while self.heap and self.heap[0][0] <= step:
            _, _, version, live = heapq.heappop(self.heap)
            if version != live.version or live.join < 0:
                continue
            self._leave_running(live)
            live.kv += step - live.join + 1
            live.generated = live.req.output_len
            self._finish(live, now)

    def run_iteration(self) -> bool:
        """Schedule and run one iteration at self.t; False if there is nothing to do now."""
        cfg, mode = self.cfg, self.mode
        n = min(len(self.running), cfg.max_batch)
        overhead = self.cost.step_overhead_s
        if mode in ("continuous", "prefill_only"):
            can_prefill = self.waiting and (mode == "prefill_only" or self._admissible(self.waiting[0]))
            if can_prefill:
                chunks, completing = self._take_whole_prompts(cfg.max_batched_tokens)
                if chunks:
                    pieces = self._prefill_pieces(chunks, len(completing))
                    self._advance(pieces, overhead)
                    self._complete_prefills(completing, self.t)
                    return True
            if n:
                self._preempt_for(n)
                n = len(self.running)
                if n:
                    self._advance(self._decode_piece(n), overhead)
                    self._decode_step_done(n, self.t)
                return True
            return False
        if mode == "decode_only":
            while self.waiting and self._admit_decoder(self.waiting[0]):
                self.waiting.popleft()
            if not self.running:
                return False
            self._preempt_for(len(self.running))
            n = len(self.running)
            if n:
                self._advance(self._decode_piece(n), overhead)
                self._decode_step_done(n, self.t)
            return True
        if mode == "chunked":
            if n:
                self._preempt_for(n)
                n = len(self.running)
            chunks, completing = self._take_prefill(max(0, cfg.chunk_tokens - n))
            if not chunks and not n:
                return False
            pieces = [self.cost.linear(n + sum(t for t, _ in chunks), PREFILL)]
            pieces += [self.cost.prefill_attention(t, ctx) for t, ctx in chunks]
            if n:
                mean_kv = (self.sum_prompt + n * self.step - self.sum_join) / n
                pieces.append(self.cost.decode_attention(n, mean_kv))
            if n + len(completing):
                pieces.append(self.cost.head(n + len(completing), DECODE))
            self._advance(pieces, overhead)
            if n:
                self._decode_step_done(n, self.t)
            self._complete_prefills(completing, self.t)
            return True
        return self._concurrent_iteration(n, overhead)

    def _concurrent_iteration(self, n: int, overhead: float) -> bool:
        """ADOR: the MAC trees run decode steps back to back while the systolic arrays work through
        a prefill batch at their own pace; the two only meet in HBM, where each is slowed by the
        factor their combined bandwidth demand exceeds what HBM delivers."""
        if self.pf is None and self.waiting:
            chunks, completing = self._take_whole_prompts(self.cfg.concurrent_chunk_tokens)
            if chunks:
                pieces = self._prefill_pieces(chunks, len(completing))
                self.pf = [completing, sum(p.time_s for p in pieces), sum(p.dram_bytes for p in pieces), 1.0, pieces]
        if n:
            self._preempt_for(n)
            n = len(self.running)
        if not n and self.pf is None:
            return False
        start = self.t
        if n:
            decode = self._decode_piece(n)
            t_decode = sum(p.time_s for p in decode)
            slow = 1.0
            if self.pf is not None:
                demand = self.pf[2] / self.pf[1] + sum(p.dram_bytes for p in decode) / t_decode
                slow = max(1.0, demand / self.bw)
            duration = t_decode * slow + overhead
            for p in decode:
                self.log.add(p)
            self.t += duration
            self.log.iterations += 1
            self._decode_step_done(n, self.t)
        if self.pf is not None:
            completing, t_alone, _, left, pieces = self.pf
            if n:
                rate = 1.0 / (t_alone * slow)
                done_fraction = min(left, (self.t - start) * rate)
                finish_at = start + left / rate if left <= (self.t - start) * rate else None
            else:
                done_fraction, finish_at = left, start + left * t_alone
                self.t = finish_at
            for p in pieces:
                self.log.add(p, done_fraction)
            self.pf[3] = left - done_fraction
            if finish_at is not None:
                self.pf = None
                self._complete_prefills(completing, finish_at)
        return True

    def _admissible(self, live: _Live) -> bool:
        return (len(self.running) + len(self.prefilling) < self.cfg.max_batch
                and self.blocks(live.todo + live.context, 1) <= self.cap_blocks)

    def _take_whole_prompts(self, budget: int):
        chunks: list[tuple[int, int]] = []
        completing = []
        while self.waiting:
            live = self.waiting[0]
            need = live.todo
            if chunks and sum(t for t, _ in chunks) + need > budget:
                break
            if not self._admit(live, self.t):
                break
            self.waiting.popleft()
            chunks.append((live.todo, live.context))
            live.context += live.todo
            live.todo = 0
            completing.append(live)
        return chunks, completing

    def _admit_decoder(self, live: _Live) -> bool:
        """Disaggregated decode side: a request arrives with its prompt's KV cache."""
        need = live.req.prompt_len
        if len(self.running) >= self.cfg.max_batch or self.blocks(need, 1) > self.cap_blocks:
            return False
        live.admitted_s = self.t if math.isnan(live.admitted_s) else live.admitted_s
        self.used_tokens += need
        live.kv = need
        self._join(live, self.t)
        self.log.peak_in_service = max(self.log.peak_in_service, len(self.running))
        return True

    def _advance(self, pieces: list[Piece], overhead: float) -> None:
        for p in pieces:
            self.log.add(p)
        self.t += sum(p.time_s for p in pieces) + overhead
        self.log.iterations += 1


def _run(replica: _Replica, arrivals: list[_Live], bar: Progress | None = None, total_done=None) -> None:
    """Drive one replica over its arrivals (sorted by ready time)."""
    i = 0
    n = len(arrivals)
    while i < n or replica.waiting or replica.running or replica.prefilling or replica.pf is not None:
        while i < n and arrivals[i].ready_s <= replica.t:
            live = arrivals[i]
            i += 1
            if replica.fits_ever(live):
                replica.waiting.append(live)
            else:
                replica.refused.append(live)
        if not replica.run_iteration():
            if i < n:
                replica.t = max(replica.t, arrivals[i].ready_s)
            elif replica.waiting:
                # the head of the queue can never be admitted next to nothing: refuse it
                replica.refused.append(replica.waiting.popleft())
            else:
                break
        if bar and total_done is not None:
            bar.update(total_done() + len(replica.finished))


@dataclass(frozen=True)
class ServingResult:
    policy: str
    n_requests: int
    n_finished: int
    refused: int
    preemptions: int
    ttft_ms: dict[str, float]
    tbt_ms: dict[str, float]
    e2e_ms: dict[str, float]
    queue_ms: dict[str, float]
    output_tok_s: float
    total_tok_s: float
    goodput_rps: float
    slo_attainment: float
    mean_in_system: float
    arrival_rate: float
    mean_e2e_ms: float
    makespan_s: float
    utilisation: dict[str, float]
    hbm_utilisation: float
    iterations: int
    peak_in_service: int
    kv_capacity_tokens: int
    ttft_slo_ms: float | None = None
    tbt_slo_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


def _percentiles(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    if len(values) == 0:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan}
    if weights is None:
        p = np.percentile(values, [50, 90, 99])
        return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]), "mean": float(values.mean())}
    order = np.argsort(values)
    v, w = values[order], weights[order].astype(float)
    cum = np.cumsum(w) / w.sum()
    pick = lambda q: float(v[min(int(np.searchsorted(cum, q)), len(v) - 1)])  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": float((v * w).sum() / w.sum())}


def simulate(system: System, model: ModelSpec, precision: Precision, requests: list[Request], *,
             config: SchedulerConfig = SchedulerConfig(), ttft_slo_ms: float | None = None,
             tbt_slo_ms: float | None = None, progress: bool = False) -> ServingResult:
    """Serve ``requests`` on ``system`` under ``config.policy``; replicas share the load round-robin."""
    config.check()
    if not requests:
        raise ConfigError("requests", 0, "nothing to simulate")
    device = system.device
    engines = None
    if config.policy == "concurrent":
        if device.kind != "ador" or not device.systolic.count or not device.mactree.count:
            raise ConfigError("policy", "concurrent", f"{device.name} has no separate prefill and decode engines "
                                                      "(needs systolic arrays and MAC trees)")
        engines = {PREFILL: SYSTOLIC, DECODE: MACTREE}
    cap = kv_capacity_tokens(system, model, precision, config)
    if cap <= 0:
        raise ConfigError("hardware", device.name, f"{model.name} ({precision.name}) leaves no memory for a "
                                                   f"KV cache at tp={system.tp}")
    rates = stage_rates(system)
    bw = rates.hbm_bw
    log = _Log()
    lives = [_Live(r) for r in requests]
    for live in lives:     # the runtime's fixed cost per request (front end, tokenisation) comes first
        live.ready_s += system.runtime.request_overhead_s
    replicas: list[_Replica] = []
    bar = Progress(total=len(requests), label=f"simulate ({config.policy})") if progress else None
    finished_before = [0]
    if config.policy == "disaggregated":
        if system.replicas < 2:
            raise ConfigError("devices", system.devices, f"disaggregated serving needs at least two replicas "
                                                         f"(devices >= 2 x tp = {2 * system.tp})")
        n_pre = min(system.replicas - 1, max(1, round(system.replicas * config.prefill_share)))
        n_dec = system.replicas - n_pre
        cost = IterationCost(system, model, precision)
        per_token = kv_bytes_per_token_per_device(model, precision, system.tp, system.pp)
        link = rates.link_bw
        if link <= 0:
            raise ConfigError("links.count", 0, "disaggregated serving moves KV caches over chip-to-chip links")
        handoff: list[_Live] = []

        def moved(live: _Live, now: float) -> None:
            # every device sends its KV shard in parallel over its own links
            live.ready_s = now + live.kv * per_token / link + rates.step_latency_s
            handoff.append(live)

        pre = [_Replica(cost, config, cap, mode="prefill_only", log=log, bw_bytes_per_s=bw, on_done=moved)
               for _ in range(n_pre)]
        for k, r in enumerate(pre):
            _run(r, [lv for lv in lives if lv.req.id % n_pre == k], bar, lambda: 0)
        dec = [_Replica(cost, config, cap, mode="decode_only", log=log, bw_bytes_per_s=bw) for _ in range(n_dec)]
        handoff.sort(key=lambda lv: lv.ready_s)
        for k, r in enumerate(dec):
            mine = [lv for j, lv in enumerate(handoff) if j % n_dec == k]
            for lv in mine:
                lv.kv, lv.join = 0, -1
            _run(r, mine, bar, lambda: 0)
        replicas = pre + dec
        finished = [lv for r in dec for lv in r.finished]
        refused = sum(len(r.refused) for r in replicas)
    else:
        mode = {"continuous": "continuous", "chunked": "chunked", "concurrent": "concurrent"}[config.policy]
        cost = IterationCost(system, model, precision, engines)
        for k in range(system.replicas):
            r = _Replica(cost, config, cap, mode=mode, log=log, bw_bytes_per_s=bw)
            _run(r, [lv for lv in lives if lv.req.id % system.replicas == k], bar,
                 lambda: finished_before[0])
            finished_before[0] += len(r.finished)
            replicas.append(r)
        finished = [lv for r in replicas for lv in r.finished]
        refused = sum(len(r.refused) for r in replicas)
    if bar:
        bar.close()
    return _summarise(config, requests, finished, refused, log, system, ttft_slo_ms, tbt_slo_ms, cap)


def _summarise(config, requests, finished, refused, log, system, ttft_slo, tbt_slo, cap) -> ServingResult:
    arrivals = np.array([r.arrival_s for r in requests])
    ttft = np.array([(lv.first_s - lv.req.arrival_s) * 1e3 for lv in finished])
    e2e = np.array([(lv.done_s - lv.req.arrival_s) * 1e3 for lv in finished])
    queue = np.array([(lv.admitted_s - lv.req.arrival_s) * 1e3 for lv in finished])
    per_req_tbt = np.array([((lv.done_s - lv.first_s) / (lv.req.output_len - 1) * 1e3) if lv.req.output_len > 1
                            else 0.0 for lv in finished])
    start = float(arrivals.min())
    end = max((lv.done_s for lv in finished), default=start)
    makespan = max(end - start, 1e-12)
    out_tokens = sum(lv.req.output_len for lv in finished)
    in_tokens = sum(lv.req.prompt_len for lv in finished)
    ok = np.ones(len(finished), dtype=bool)
    if ttft_slo is not None:
        ok &= ttft <= ttft_slo
    if tbt_slo is not None:
        ok &= per_req_tbt <= tbt_slo
    # time-average number of requests in the system, integrated over arrivals and departures
    events = sorted([(lv.req.arrival_s, 1) for lv in finished] + [(lv.done_s, -1) for lv in finished])
    area, level, prev = 0.0, 0, start
    for when, delta in events:
        area += level * (when - prev)
        level += delta
        prev = when
    n = len(requests)
    rate = (n - 1) / (arrivals.max() - start) if n > 1 and arrivals.max() > start else math.inf
    gaps = np.array(log.gaps) * 1e3
    weights = np.array(log.weights)
    busy_devices = system.replicas
    return ServingResult(
        policy=config.policy, n_requests=n, n_finished=len(finished), refused=refused, preemptions=log.preemptions,
        ttft_ms=_percentiles(ttft), tbt_ms=_percentiles(gaps, weights), e2e_ms=_percentiles(e2e),
        queue_ms=_percentiles(queue), output_tok_s=out_tokens / makespan,
        total_tok_s=(out_tokens + in_tokens) / makespan,
        goodput_rps=float(ok.sum()) / makespan, slo_attainment=float(ok.mean()) if len(ok) else 0.0,
        mean_in_system=area / makespan, arrival_rate=rate,
        mean_e2e_ms=float(e2e.mean()) if len(e2e) else math.nan, makespan_s=makespan,
        utilisation={k: v / (makespan * busy_devices) for k, v in sorted(log.busy().items())},
        hbm_utilisation=log.dram_bytes() / (system.device.hbm_bw_bytes_per_s * makespan * busy_devices),
        iterations=log.iterations, peak_in_service=log.peak_in_service, kv_capacity_tokens=cap,
        ttft_slo_ms=ttft_slo, tbt_slo_ms=tbt_slo,
    )


def max_sustainable_rate(run, *, target: float = 0.9, low: float = 0.01, high: float | None = None,
                         tolerance: float = 0.05, max_runs: int = 24) -> tuple[float, ServingResult | None]:
    """Highest arrival rate whose SLO attainment stays >= ``target``, by doubling then bisection.
    ``run(rate)`` returns a ServingResult (same requests' lengths and seed at every rate)."""
    best, best_result = 0.0, None
    rate = high or 1.0
    runs = 0
    if high is None:
        while runs < max_runs:
            res = run(rate)
            runs += 1
            if res.slo_attainment < target:
                high = rate
                break
            best, best_result, low = rate, res, rate
            rate *= 2
    hi = high if high is not None else rate
    lo = low if best else 0.0
    while runs < max_runs and (hi - lo) > tolerance * max(hi, 1e-9):
        mid = (lo + hi) / 2 if lo else hi / 2
        res = run(mid)
        runs += 1
        if res.slo_attainment >= target:
            best, best_result, lo = mid, res, mid
        else:
            hi = mid
        if not lo and mid < 1e-6:
            break
    return best, best_result
