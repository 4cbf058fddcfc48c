"""Timing helpers: repeats with median and spread, so a noisy shared machine shows as spread."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Rate:
    name: str
    median_per_s: float
    min_per_s: float
    max_per_s: float
    repeats: int

    def row(self) -> str:
        return (f"{self.name:44} {self.median_per_s:12,.0f}/s  "
                f"[{self.min_per_s:,.0f} .. {self.max_per_s:,.0f}] x{self.repeats}")


def rate(name: str, work: Callable[[], int], repeats: int) -> Rate:
    """Run ``work`` (which returns how many items it processed) ``repeats`` times."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return Rate(name, statistics.median(rates), min(rates), max(rates), repeats)
