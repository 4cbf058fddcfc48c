"""A request in service (``Live``) and how a replica preempts one (``Preemption``): the state
every scheduler and the replica (``ador.serving.replica``) share."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ador.serving.replica import Replica


class Live:
    """A request in the system."""
    __slots__ = ("id", "arrival", "prompt", "output", "todo", "context", "first_s", "last_s", "admitted_s", "join",
                 "version", "generated", "kv", "hold", "measured")

    def __init__(self, rid: int, arrival: float, prompt: int, output: int, measured: bool = True) -> None:
        self.id, self.arrival, self.prompt, self.output = rid, arrival, prompt, output
        self.todo = prompt          # prompt tokens still to prefill
        self.context = 0            # tokens already in the KV cache when prefill resumes
        self.first_s = math.nan
        self.last_s = math.nan
        self.admitted_s = math.nan
        self.join = -1              # decode step at which it joined the running batch
        self.version = 0            # bumped on preemption (stale heap entries are skipped)
        self.generated = 0          # tokens out before the current decode run
        self.kv = 0                 # KV tokens held when it joined
        self.hold = 0               # tokens it holds in the replica's KV account (besides growth)
        self.measured = measured    # counts in the statistics (outside the warm-up)


class Preemption:
    """vLLM's recompute preemption: when the next decode step's ``tokens`` KV tokens do not fit, the
    newest running request leaves and waits at the head of the queue, until they fit."""

    def enough(self, r: Replica, tokens: int) -> bool:
        return r.blocks(tokens) <= r.cap_blocks

    def victim(self, r: Replica) -> Live:
        return r.running[next(reversed(r.running))]

    def requeue(self, r: Replica, live: Live) -> None:
        r.waiting.appendleft(live)

    def after(self, r: Replica) -> None:
        """Once the requests have left (nothing by default)."""


RECOMPUTE = Preemption()
