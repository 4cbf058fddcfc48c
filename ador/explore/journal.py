"""A journal file for Optuna's JournalStorage that survives kills and full disks.

Optuna's own file backend locks with a symlink whose relative target dangles when the journal is
not in the working directory; after a SIGKILL that stale lock is never broken and every later
process spins. A full disk leaves half a record at the end of the file, and the next append
splices a whole record onto it, after which no process can read the journal.

This backend (Optuna's public ``BaseJournalBackend``) instead:

- locks with ``fcntl.flock`` on ``PATH.flock``: the kernel releases the lock when its holder
  dies, so there is no stale lock to detect;
- appends under the lock, after cutting any partial record at the end of the file (a writer that
  died mid-record or a write that hit a full disk), and cuts its own record back if the write or
  the fsync fails, so a failed append leaves the file as it was;
- reads complete lines only (a record being appended by another process is read next time), and
  salvages the whole record at the end of a line that an older writer spliced onto a partial one.

Every cut is reported with a warning naming the bytes dropped. All writers of a journal must use
this backend (Optuna's symlink lock does not see the flock).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend

from ador.outputs import JOURNAL_HEADER

LOCK_SUFFIX = ".flock"
LOCK_TIMEOUT_S = 60.0             # an append takes milliseconds; a lock held this long is a hung process
OPTUNA_LOCK_SUFFIX = ".lock"      # Optuna's symlink lock (older ador versions used it)
# every record Optuna writes starts so (json.dumps of a dict, op_code first); one home, beside the
# check that no command's output replaces a journal
RECORD_START = JOURNAL_HEADER
_CHUNK = 1 << 16


class JournalRepairWarning(UserWarning):
    """Bytes of a partial record were cut from a journal file."""


class JournalFile(BaseJournalBackend):
    def __init__(self, path: str | Path, *, repair: bool = True) -> None:
        """``repair``: cut a partial record at the end now (a command that writes); a command that
        only reads passes False and changes nothing (it reads complete lines only)."""
        self.path = str(path)
        self.lock_path = self.path + LOCK_SUFFIX
        self._offsets: dict[int, int] = {0: 0}       # log number -> byte offset of its line
        # before any repair or lock file: a file that is not a journal must be left exactly as it is
        _check_is_journal(self.path)
        if not repair:
            return
        _remove_dead_symlink_lock(self.path + OPTUNA_LOCK_SUFFIX)
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._cut_partial_tail(fd)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the journal lock {self.lock_path} has been held for "
                                           f"{LOCK_TIMEOUT_S:.0f} s by a process that is alive") from None
                    time.sleep(0.002)
            yield
        finally:
            os.close(fd)                              # closing releases the lock

    def _cut_partial_tail(self, fd: int) -> None:
        """Truncate the file after its last newline (call under the lock)."""
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            chunk = os.pread(fd, end - start, start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                end = start + i + 1
                break
            end = start
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
            warnings.warn(f"journal {self.path}: cut a partial record of {size - end} bytes at its end "
                          f"(a write interrupted by a kill or a full disk); every complete record is kept",
                          JournalRepairWarning, stacklevel=3)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as f:
            start = max((n for n in self._offsets if n <= log_number_from), default=0)
            f.seek(self._offsets[start])
            number = start
            for line in f:
                if not line.endswith(b"\n"):          # being appended right now: read it next time
                    break
                self._offsets[number + 1] = self._offsets[number] + len(line)
                if number >= log_number_from:
                    yield self._decode(line, number)
                number += 1

    def _decode(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            return json.loads(line)
        except ValueError:
            pass
        # an older writer appended a whole record onto a partial one: keep the whole one
        i = line.rfind(RECORD_START)
        if i > 0:
            try:
                record = json.loads(line[i:])
            except ValueError:
                record = None
            if isinstance(record, dict):
                warnings.warn(f"journal {self.path}: record {number} followed {i} bytes of a partial record, "
                              f"which were skipped", JournalRepairWarning, stacklevel=2)
                return record
        from ador.errors import ConfigError
        raise ConfigError("storage", f"journal:{self.path}", f"record {number} is not valid JSON and cannot be "
                                                             f"repaired; the records before it are intact")

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(log, separators=(",", ":")).encode() + b"\n" for log in logs)
        with self._locked():
            fd = os.open(self.path, os.O_RDWR)
            try:
                self._cut_partial_tail(fd)
                size = os.fstat(fd).st_size
                try:
                    _write_all(fd, data, size)
                    os.fsync(fd)
                except BaseException:
                    # leave the file as it was: a record is either whole and on disk, or absent
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)


_pwrite = os.pwrite      # one name for the write, so a test can make the disk "full"


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = _pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _check_is_journal(path: str) -> None:
    """A non-empty file must start with an Optuna record (a missing or empty file is a new journal)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(RECORD_START))
    except FileNotFoundError:
        return
    if not RECORD_START.startswith(head):       # a first record cut short is still a journal
        from ador.errors import ConfigError
        raise ConfigError("storage", f"journal:{path}", f"is not an Optuna journal (it starts with {head!r}, "
                                                        f"a journal with {RECORD_START!r}); nothing was changed")


def _remove_dead_symlink_lock(path: str) -> None:
    """Optuna's symlink lock left by a killed process whose target does not resolve: it can only
    be stale (Optuna's lock loop spins on it forever)."""
    if os.path.islink(path) and not os.path.exists(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            warnings.warn(f"removed the stale lock {path} left by a killed process", JournalRepairWarning,
                          stacklevel=3)
