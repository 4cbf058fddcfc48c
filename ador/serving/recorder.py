"""What a simulation records: request latencies streamed into histograms, and what the engines did.

Kept apart from the replica's mechanics so that memory stays bounded in one visible place: a
finished request leaves four samples in buffers that ``LogHistogram`` folds into its buckets, and
nothing else.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ador.perf.iteration import Piece
from ador.serving.stats import FLUSH, LogHistogram

if TYPE_CHECKING:
    from ador.serving.live import Live


class Step:
    """Price of one decode-only iteration at a batch size and KV bucket."""
    __slots__ = ("decode_s", "host_s", "total_s", "dram_bytes", "pieces")

    def __init__(self, pieces: list[Piece], host_s: float) -> None:
        self.pieces = pieces
        self.decode_s = sum(p.time_s for p in pieces)
        self.host_s = host_s                    # the runtime's per-step overhead and the batch's host work
        self.total_s = self.decode_s + host_s
        self.dram_bytes = sum(p.dram_bytes for p in pieces)


class Recorder:
    """What requests see, streamed into histograms (memory independent of the request count), and
    what the engines did (pieces priced times used)."""

    def __init__(self, ttft_slo_s: float | None = None, tbt_slo_s: float | None = None) -> None:
        self.ttft, self.tbt, self.tpot = LogHistogram(), LogHistogram(), LogHistogram()
        self.e2e, self.queue = LogHistogram(), LogHistogram()
        self.ttft_slo_s = math.inf if ttft_slo_s is None else ttft_slo_s
        self.tbt_slo_s = math.inf if tbt_slo_s is None else tbt_slo_s
        self.uses: dict[int, list] = {}          # id of a Piece or Step -> [it, times used]
        self.finished = 0
        self.measured_finished = 0
        self.slo_ok = 0
        self.out_tokens = 0
        self.in_tokens = 0
        self.sojourn_s = 0.0                     # sum of time in system, all finished requests
        self.first_arrival = math.inf
        self.last_done = -math.inf
        self.refused = 0
        self.preemptions = 0
        self.iterations = 0
        self.peak_in_service = 0
        self.horizon = math.inf                  # time of the last arrival
        self.admitted_in_horizon = 0             # admissions by then (the rest were still waiting)

    def use(self, thing: object, times: float = 1.0) -> None:
        entry = self.uses.get(id(thing))
        if entry is None:
            self.uses[id(thing)] = [thing, times]
        else:
            entry[1] += times

    def finish(self, live: Live, now: float) -> None:
        self.finished += 1
        self.out_tokens += live.output
        self.in_tokens += live.prompt
        arrival = live.arrival
        self.sojourn_s += now - arrival
        if now > self.last_done:
            self.last_done = now
        if not live.measured:
            return
        self.measured_finished += 1
        first = live.first_s
        ttft = first - arrival
        buf = self.ttft.ones
        buf.append(ttft)
        self.e2e.ones.append(now - arrival)
        self.queue.ones.append(live.admitted_s - arrival)
        # TPOT is a request's mean gap after its first token: a one-token answer has none, so it
        # is left out of TPOT (as benchmark clients leave it out) and meets the TBT SLO
        tpot_ok = True
        if live.output > 1:
            tpot = (now - first) / (live.output - 1)
            self.tpot.ones.append(tpot)
            tpot_ok = tpot <= self.tbt_slo_s
        if ttft <= self.ttft_slo_s and tpot_ok:
            self.slo_ok += 1
        if len(buf) >= FLUSH:
            for h in (self.ttft, self.e2e, self.queue, self.tpot):
                h.flush()

    def busy(self) -> tuple[dict[str, float], float]:
        """Seconds per engine and DRAM bytes over the run."""
        busy: dict[str, float] = {}
        dram = 0.0
        for thing, times in self.uses.values():
            for p in (thing.pieces if isinstance(thing, Step) else (thing,)):
                dram += p.dram_bytes * times
                for k, v in p.busy_s.items():
                    busy[k] = busy.get(k, 0.0) + v * times
        return busy, dram
