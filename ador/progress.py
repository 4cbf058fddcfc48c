"""A progress line on stderr for long runs: redrawn in place on a terminal, else every few seconds."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, *, total: int, label: str, min_seconds: float = 2.0, stream=None) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.min_seconds = min_seconds      # say nothing for runs shorter than this
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, **fields: object) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        interval = 0.2 if self.tty else 5.0
        if elapsed < self.min_seconds or (now - self._last < interval and done < self.total):
            return
        self._last = now
        self._shown = True
        rate = done / elapsed if elapsed > 0 else 0.0
        width = 24
        filled = int(width * done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        extra = "  ".join(f"{k} {v}" for k, v in fields.items())
        line = f"{self.label} [{bar}] {done}/{self.total}  {extra}  {rate:,.0f}/s"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
