"""Files a command writes: checked before anything is computed, so that a mistyped path never
replaces a command's own input, a study's database or a file of another kind.

A command that reads files and writes one (``validate --plot``, ``--update-doc``, ``study export
--out``, ``calibrate --out``) names its output with ``check_output``: the output must not be one of
the inputs, nor a study database or journal, and must carry a suffix it can be written as.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ador.errors import ConfigError

SQLITE_HEADER = b"SQLite format 3\x00"      # the first 16 bytes of every SQLite database file
JOURNAL_HEADER = b'{"op_code":'              # the first bytes of every Optuna journal record (op_code first)
PLOT_SUFFIXES = (".png", ".svg", ".pdf")    # what the plots are saved as, by suffix


def check_output(path: str | Path, *, field: str, suffixes: tuple[str, ...] = (),
                 inputs: Iterable[str | Path | None] = ()) -> Path:
    """``path`` as an output of ``field``: a suffix among ``suffixes`` (when given), not one of
    ``inputs`` (the files the command reads), not a study database or journal."""
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise ConfigError(field, str(path), f"write a {' or '.join(suffixes)} file (the suffix says which)")
    if out.is_dir():
        raise ConfigError(field, str(path), "is a directory; give a file")
    if not out.exists():
        return out
    for source in inputs:
        if source is not None and Path(source).exists() and os.path.samefile(out, source):
            raise ConfigError(field, str(path), "is a file this command reads; writing it would replace it")
    try:
        with out.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError:
        return out                      # the write reports what is wrong with it
    if head == SQLITE_HEADER or head.startswith(JOURNAL_HEADER):
        raise ConfigError(field, str(path), "is a study database or journal; writing it would lose its trials")
    return out
