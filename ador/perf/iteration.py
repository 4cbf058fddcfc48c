"""Time of one serving iteration, priced from cached pieces of the operator graph.

A stage's time is the sum of its operators' times (``stage_time``), so an iteration splits
exactly into: the token-parallel operators (norms, projections, FFN, collectives) over all its
tokens; each prefill chunk's attention; the decodes' attention; the LM head over the rows that
emit a token; and the per-step overhead. Each piece is priced once per shape and cached, which
makes iteration-level simulation of thousands of requests cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ador.hardware.system import System
from ador.perf.stage import stage_time
from ador.workload.graph import PrefillChunk, build_iteration
from ador.workload.models import ModelSpec
from ador.workload.ops import ATTENTION, DECODE, PREFILL
from ador.workload.precision import Precision

HEAD_OPS = ("final_norm", "lm_head", "logits_allgather", "logits_die_allgather")
TOKEN_BUCKET = 16     # token counts above EXACT_TOKENS are priced at multiples of this (rounded up)
EXACT_TOKENS = 512    # below this, token counts (decode batches) are priced exactly
KV_BUCKET = 64        # context lengths are priced at multiples of this (rounded up)


def _up(n: float, step: int) -> int:
    return max(step, -(-int(n) // step) * step)


@dataclass
class Piece:
    time_s: float
    dram_bytes: float
    busy_s: dict[str, float] = field(default_factory=dict)   # engine -> seconds


class IterationCost:
    def __init__(self, system: System, model: ModelSpec, precision: Precision,
                 engines: Mapping[str, str] | None = None, *, cache: bool = True) -> None:
        self.system, self.model, self.precision = system, model, precision
        self.cache = cache               # False only to measure what the cache saves
        self.engines = dict(engines) if engines else None
        self._cache: dict[tuple, Piece] = {}
        self.step_overhead_s = system.runtime.step_overhead_s

    def _price(self, key: tuple, ops) -> Piece:
        piece = self._cache.get(key)
        if piece is None:
            # pieces carry no per-step overhead: an iteration pays it once
            result = stage_time(self.system, self.precision, ops, engines=self.engines, step_overhead=False)
            busy: dict[str, float] = {}
            for t in result.breakdown:
                busy[t.engine] = busy.get(t.engine, 0.0) + t.time_s
            piece = Piece(result.time_s, sum(t.dram_bytes for t in result.breakdown), busy)
            if self.cache:
                self._cache[key] = piece
        return piece

    def _graph(self, prefill: tuple[PrefillChunk, ...], decode_batch: int = 0, decode_kv_len: int = 0):
        s = self.system
        return build_iteration(self.model, self.precision, s.tp, s.pp, prefill, decode_batch, decode_kv_len,
                               dies=s.dies)

    def linear(self, tokens: int, phase: str = PREFILL) -> Piece:
        """Token-parallel operators over ``tokens`` tokens (every layer)."""
        m = tokens if tokens <= EXACT_TOKENS else _up(tokens, TOKEN_BUCKET)
        key = ("lin", m, phase)
        if key not in self._cache:
            if not self.cache:
                build_iteration.cache_clear()
            ops = self._graph((PrefillChunk(1, m, 0),)) if phase == PREFILL else self._graph((), m, 1)
            ops = tuple(o for o in ops if o.kind != ATTENTION and o.name not in HEAD_OPS)
            return self._price(key, ops)
        return self._cache[key]

    def prefill_attention(self, tokens: int, context: int) -> Piece:
        t = tokens if tokens <= EXACT_TOKENS else _up(tokens, TOKEN_BUCKET)
        c = _up(context, KV_BUCKET) if context else 0
        key = ("pa", t, c)
        if key not in self._cache:
            ops = self._graph((PrefillChunk(1, t, c),))
            return self._price(key, tuple(o for o in ops if o.kind == ATTENTION))
        return self._cache[key]

    def decode_attention(self, batch: int, mean_kv: float) -> Piece:
        kv = _up(mean_kv, KV_BUCKET)
        key = ("da", batch, kv)
        if key not in self._cache:
            ops = self._graph((), batch, kv)
            return self._price(key, tuple(o for o in ops if o.kind == ATTENTION))
        return self._cache[key]

    def head(self, rows: int, phase: str = DECODE) -> Piece:
        key = ("head", rows, phase)
        if key not in self._cache:
            ops = self._graph((), rows, 1) if phase == DECODE else self._graph((PrefillChunk(rows, 1, 0),))
            return self._price(key, tuple(o for o in ops if o.name in HEAD_OPS))
        return self._cache[key]
