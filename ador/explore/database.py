"""SQL against an Optuna database, through SQLAlchemy or, for a SQLite file read only, the
standard library's ``sqlite3``.

ador's reads (ador/explore/stored.py, read_storage.py, stored_table.py, table_rows.py) are plain
SQL texts with ``:name`` parameters, which both drivers take as they are and answer with the same
Python values: SQLAlchemy's ``text()`` applies no column types, so a SQLite database gives the
same numbers, texts (a trial's state, a stored time) and NULLs through either. Importing
SQLAlchemy takes a reading command 0.1-0.2 s, more than most of its queries on a 20,000-trial
study; a SQLite file that only needs reading (``storage.open_storage``) is therefore read with
``sqlite3``, every other database (PostgreSQL, or a SQLite file Optuna itself must open) through
the engine of Optuna's storage.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence


class Session(Protocol):
    def rows(self, sql: str, params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row of ``sql`` (each a tuple of the columns' values)."""


class Database(Protocol):
    @property
    def dialect(self) -> str:
        """SQLAlchemy's name for the database's kind: sqlite, postgresql, ..."""

    def session(self) -> Any:
        """A context manager giving a ``Session`` on one connection."""

    def dispose(self) -> None:
        """Drop pooled connections (before a retry: one a failure left behind is not reused)."""


def marks(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``IN (...)`` placeholders for ``values`` (named ``name0``, ``name1``, ...) and their parameters."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in params), params


class _Sqlite3Session:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        return self.conn.execute(sql, params or {}).fetchall()


@dataclass(frozen=True)
class SqliteFile:
    """A SQLite database file, read with ``sqlite3``: a connection per session, closed after it (a
    reading command keeps none open, nor the write-ahead log's files, between its queries)."""
    path: str
    timeout_s: float = 60.0           # the storage passes its own (storage.SQLITE_BUSY_TIMEOUT_S)

    @property
    def dialect(self) -> str:
        return "sqlite"

    @contextmanager
    def session(self) -> Iterator[_Sqlite3Session]:
        """One connection in one read transaction: its queries see one snapshot of the file though
        a study writes to it meanwhile (Python's sqlite3 begins none before a SELECT by itself).
        Opened read-write but never created (``mode=rw``): a file deleted under a command is an
        error, not a new empty database; ``mode=ro`` could not read a WAL file without its index."""
        import sqlite3
        from urllib.parse import quote
        conn = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=self.timeout_s,
                               isolation_level=None)
        try:
            conn.execute("BEGIN")
            yield _Sqlite3Session(conn)
        finally:
            conn.close()          # ends the read transaction (nothing was written)

    def dispose(self) -> None:
        """Nothing is pooled."""


class _EngineSession:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> Sequence[Any]:
        from sqlalchemy import text
        return self.conn.execute(text(sql), params or {}).all()


@dataclass(frozen=True)
class EngineDatabase:
    """A database behind a SQLAlchemy engine (Optuna's storage's own, or the reader's)."""
    engine: Any

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    @contextmanager
    def session(self) -> Iterator[_EngineSession]:
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # the folded reads cast doubles to text: exact (shortest round-trip text) only with
                # extra_float_digits >= 1, PostgreSQL's default since 12 but a server or role may set
                # 0 (15 digits). LOCAL: for this read's transaction only, the pooled connection keeps its own
                from sqlalchemy import text
                conn.execute(text("SET LOCAL extra_float_digits = 3"))
            yield _EngineSession(conn)

    def dispose(self) -> None:
        self.engine.dispose()
