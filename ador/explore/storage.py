"""How studies are stored: a SQLite file (by default; where: ador/explore/locate.py), a journal
file, or any SQLAlchemy URL (PostgreSQL through psycopg 3). Opening errors and lost connections become one-line errors.

Every storage call goes through a retrying proxy (``retrying``): a database error (a dropped connection, a
locked or briefly full database) is retried with bounded back-off after the session is reset,
and then ends in one line saying the completed trials are saved. Commands that only read never
create a database, a table or a directory; only ``launch`` creates a study's storage.
"""
from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage

from ador.errors import AdorError, ConfigError

if TYPE_CHECKING:
    from ador.explore.database import Database

T = TypeVar("T")
# bounded retries when the database drops mid-study (a PostgreSQL restart takes a few seconds)
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
OPEN_RETRIES_UNREACHABLE = 3            # opening: a server that is down is reported within seconds
_OPEN_JITTER = random.Random()          # spreads the retries of processes opening one study together
# a study name is a name, never a path: it becomes a file name under studies/
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
# tables every Optuna database has (a database without them holds no study to read)
OPTUNA_TABLES = {"studies", "trials", "version_info"}
# how long a SQLite connection waits for another process's lock: several worker processes share the file
SQLITE_BUSY_TIMEOUT_S = 60.0


class StorageLostError(AdorError):
    """The storage failed during a study after the retries; completed trials are saved."""


class NoStorageError(ConfigError):
    """A command that reads found no database (or no Optuna tables) where the storage should be."""


def check_study_name(name: str, field: str = "study") -> str:
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(field, name, "a study name is letters, digits and . _ + - (at most 128, starting with a "
                                       "letter or digit), not a path")
    return name


# the SQLAlchemy dialects Optuna's RDBStorage supports (its documentation names these)
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url and not url.startswith("journal:") and url.endswith((".db", ".sqlite", ".sqlite3")):
        return f"sqlite:///{url}"
    return url


def redact(url: str) -> str:
    """The URL with any password (``user:PASSWORD@host`` or ``?password=``) replaced by ***."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        if ":" in creds:
            netloc = f"{creds.split(':', 1)[0]}:***@{host}"
    secret = ("password", "passwd", "pwd")
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in secret for k, _ in pairs):
        query = urlencode([(k, "***" if k.lower() in secret else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url                     # nothing secret (and sqlite:///path keeps its three slashes)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def storage_file(url: str) -> Path | None:
    """The file a storage URL names (a SQLite database or a journal, bare names as ``open_storage``
    reads them); None for a server."""
    url = normalise_url(url)
    if _is_journal(url):
        return Path(url.removeprefix("journal:"))
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    return None


def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or (("://" not in url) and url.endswith((".log", ".journal", ".jsonl")))


def open_storage(url: str, *, create: bool = False, reads_only: bool = False) -> RetryingStorage:
    """Open a study storage. ``create``: this command may create the database file and Optuna's
    tables (``launch``); otherwise the storage must exist and nothing is written to open it.
    ``reads_only``: the command only reads; a database Optuna would open as it is is then read
    without Optuna's storage (ador/explore/read_storage.py), a SQLite file with ``sqlite3``
    instead of SQLAlchemy (ador/explore/database.py)."""
    url = normalise_url(url)
    shown = redact(url)
    if _is_journal(url):
        path = Path(url.removeprefix("journal:"))
        _check_file(path, shown, create)
        from ador.explore.journal import JournalFile
        from optuna.storages.journal import JournalStorage
        try:
            return retrying(JournalStorage(JournalFile(path, repair=not (reads_only and not create))))
        except OSError as err:
            raise ConfigError("storage", shown, f"cannot open the journal file ({err.strerror or err})") from None
        except (KeyError, TypeError, IndexError, AttributeError) as err:
            # Optuna replays every record on opening; one it cannot apply was not written by Optuna
            raise ConfigError("storage", shown, f"holds a record Optuna did not write ({err.__class__.__name__}: "
                                                f"{err})") from None
    if "://" not in url:
        raise ConfigError("storage", shown, "expected a database URL (sqlite:///x.db, postgresql://...) "
                                            "or journal:PATH")
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in RDB_SCHEMES:
        raise ConfigError("storage", shown, f"unknown database {scheme!r} (studies are stored in "
                                            f"{', '.join(RDB_SCHEMES)} or a journal:PATH file)")
    if url.startswith("sqlite:") and (url in ("sqlite://", "sqlite:///") or ":memory:" in url
                                      or "mode=memory" in url):
        raise ConfigError("storage", shown, "an in-memory database is lost when the command ends; "
                                            "give a file (sqlite:///studies/NAME.db)")
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        _check_file(path, shown, create)
        tables = _check_sqlite_is_optuna(path, shown)
        if reads_only and not create and tables is not None:
            fast = _sqlite_reader(url, shown, tables)
            if fast is not None:
                return retrying(fast)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    elif url.startswith("postgresql"):
        _check_postgresql_url(url, shown)
        engine_kwargs["connect_args"] = {"connect_timeout": 5}
    last: BaseException | None = None
    unreachable = 0
    budget_s, start = sum(RETRY_DELAYS_S), time.monotonic()
    while True:
        try:
            if url.startswith("sqlite:///") and create:
                _use_wal(url)
            # a reader's SQLite connections close after each query: the command leaves no open
            # connection (nor the write-ahead log's -wal and -shm files) behind while it lives
            engine, reader = _engine(url, engine_kwargs, pooled=not (reads_only and url.startswith("sqlite"))), None
            try:
                tables = _tables(engine)
                if not create and not OPTUNA_TABLES <= tables:
                    raise NoStorageError("storage", shown, "holds no studies (`ador study launch` creates a study)")
                reader = _reader(engine, tables) if reads_only and not create else None
            finally:
                if reader is None:
                    engine.dispose()
            if reader is not None:
                return retrying(reader)
            complete = _optuna_table_names() - {"alembic_version"} <= tables     # nothing for Optuna to create
            rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                             skip_table_creation=complete or not create)
            # Optuna wraps an RDB storage in its trial cache when it opens a study; done here so
            # the retries wrap the cache (the cache is what Optuna itself uses)
            return retrying(optuna.storages.get_storage(rdb))
        except ImportError as err:
            raise ConfigError("storage", shown, f"missing database driver ({err.name})") from None
        except AdorError:
            raise
        except Exception as err:   # SQLAlchemy raises many kinds; all mean the storage cannot be used
            last = err
            if not _is_database_error(err):
                break
            if _unreachable(err):
                # a server that refuses connections is reported soon, after backing off
                unreachable += 1
                if unreachable > OPEN_RETRIES_UNREACHABLE:
                    break
                delay = RETRY_DELAYS_S[min(unreachable, len(RETRY_DELAYS_S)) - 1]
            else:
                # one that answers but drops the connection while the study opens (a restart, an
                # administrator) or is busy: try again soon, as often as the retry budget allows,
                # since opening takes several connections and any of them may be dropped
                delay = _OPEN_JITTER.uniform(0.25, 1.0) * RETRY_DELAYS_S[0]
            if time.monotonic() - start + delay > budget_s:
                break
            time.sleep(delay)
    raise ConfigError("storage", shown, f"cannot open the database: {_root_message(last)}") from None


def _use_wal(url: str) -> None:
    """Write-ahead logging: one fsync per commit instead of three, readers never block the writer,
    and with synchronous=FULL a committed trial survives a crash or power loss."""
    import sqlite3
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as conn:
        conn.execute("PRAGMA journal_mode=WAL")     # persistent in the file


def _check_postgresql_url(url: str, shown: str) -> None:
    """A PostgreSQL URL names its database, and its user where it has an ``@``: libpq fills what
    is missing from the process's user name, so a mistyped URL would otherwise write a study into
    some other database of the local server."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        _ = parts.port                 # parsed on access
    except ValueError:
        raise ConfigError("storage", shown, "the port is not a number") from None
    if "@" in parts.netloc and not parts.username and not query.get("user"):
        raise ConfigError("storage", shown, "the user before @ is empty (postgresql://USER@HOST/DATABASE)")
    if not parts.path.strip("/") and not query.get("dbname"):
        raise ConfigError("storage", shown, "names no database (postgresql://USER@HOST/DATABASE); PostgreSQL "
                                            "would pick one from the user's name")


def _check_file(path: Path, shown: str, create: bool) -> None:
    """A storage file to read must exist; one to create needs an existing, writable directory.
    Directories are never created here (a mistyped path must not grow a tree of folders)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not create:
        if not path.is_file():
            raise NoStorageError("storage", shown, "no such file (`ador study launch` creates a study)")
        return
    if not parent.is_dir():
        raise ConfigError("storage", shown, f"directory {parent} does not exist (create it first)")
    _check_writable(path, parent, shown)


def _check_writable(path: Path, parent: Path, shown: str) -> None:
    """Try to create a file beside the database: permission bits alone mislead (root passes
    os.access everywhere) and read-only mounts show only on a write. The database file itself is
    not opened here: closing any descriptor of a SQLite file drops the process's locks on it."""
    import tempfile
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".ador-write-test-"):
            pass
    except OSError as err:
        raise ConfigError("storage", shown, f"{parent} is not writable ({err.strerror or err})") from None


def _check_sqlite_is_optuna(path: Path, shown: str) -> set[str] | None:
    """Refuse another application's SQLite file before anything (WAL mode, Optuna's tables) is
    written to it; its tables (None: no file yet, or an empty one)."""
    import sqlite3
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise _sqlite_refusal(err, shown, "not a SQLite database") from None
    foreign = sorted(tables - _optuna_table_names())
    if foreign:     # (a subset of Optuna's tables is a creation that was cut short: Optuna completes it)
        listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError("storage", shown, f"belongs to another application (tables: {listed}); "
                                            f"ador stores studies only in Optuna databases")
    return tables


def _sqlite_refusal(err: Exception, shown: str, otherwise: str) -> ConfigError:
    """The one-line error for a SQLite file ``sqlite3`` could not read: held locked past the busy
    timeout, or ``otherwise``."""
    why = f"locked by another process for over {SQLITE_BUSY_TIMEOUT_S:g} s" if "locked" in str(err) else otherwise
    return ConfigError("storage", shown, f"{why} ({err})")


def _optuna_table_names() -> set[str]:
    from ador.explore.optuna_tables import TABLE_NAMES
    return set(TABLE_NAMES)


def _engine(url: str, engine_kwargs: dict[str, Any], *, pooled: bool = True) -> Any:
    import sqlalchemy
    if pooled:
        return sqlalchemy.create_engine(url, **engine_kwargs)
    from sqlalchemy.pool import NullPool
    return sqlalchemy.create_engine(url, poolclass=NullPool, **engine_kwargs)


def _tables(engine: Any) -> set[str]:
    """The database's tables, read before Optuna opens it (Optuna creates missing ones: a reading
    command must not, and a complete database needs no creation queries)."""
    import sqlalchemy
    return set(sqlalchemy.inspect(engine).get_table_names())


def _reader(engine: Any, tables: set[str]) -> BaseStorage | None:
    from ador.explore.database import EngineDatabase
    from ador.explore.read_storage import open_reader
    return open_reader(EngineDatabase(engine), tables)


def _sqlite_reader(url: str, shown: str, tables: set[str]) -> BaseStorage | None:
    """A reader of a SQLite file whose ``tables`` the file check read, through ``sqlite3``, without
    importing SQLAlchemy (ador/explore/database.py); None where the file is for Optuna's storage to
    open (``open_reader``: a table or the schema stamp missing), or any query fails, or the URL says
    more than a path (a query string, an escape): the engine's way then opens it as before, errors
    included. A file locked past the busy timeout is an error here: the engine would wait again."""
    import sqlite3

    from ador.explore.database import SqliteFile
    from ador.explore.read_storage import open_reader
    path = url.removeprefix("sqlite:///")
    if any(c in path for c in "?%#") or not path:
        return None
    try:
        return open_reader(SqliteFile(path, timeout_s=SQLITE_BUSY_TIMEOUT_S), tables)
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            raise _sqlite_refusal(err, shown, "") from None
        return None
    except sqlite3.Error:
        return None


def _unreachable(err: BaseException) -> bool:
    text = _root_message(err).lower()
    return any(s in text for s in ("connection refused", "connection failed", "could not connect", "timeout expired",
                                   "could not translate host", "name or service not known"))


def _root_message(err: BaseException | None) -> str:
    """The first line of the deepest cause: the database's own words, not a wrapper's guess
    (Optuna reports every failed commit as "invalid data in the commit")."""
    if err is None:
        return "unknown error"
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = getattr(err, "orig", None) or err.__cause__ or err.__context__
        if nxt is None:
            break
        err = nxt
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


_retrying = threading.local()


def with_retries(action: Callable[[], T], what: str, reset: Callable[[], Any] | None = None) -> T:
    """Run a storage action, retrying on database errors with bounded back-off; ``reset`` runs
    before each retry (dropping a session a failed connection left pending). Nested calls do not
    retry on their own: the outermost call retries the whole action."""
    if getattr(_retrying, "active", False):
        return action()
    _retrying.active = True
    last: BaseException | None = None
    try:
        for delay in (0.0, *RETRY_DELAYS_S):
            if delay:
                time.sleep(delay)
                if reset is not None:
                    try:
                        reset()
                    except Exception:       # the reset is best effort; the retry reports what fails
                        pass
            try:
                return action()
            except Exception as err:      # sqlalchemy.exc.OperationalError and friends
                if not _is_database_error(err):
                    raise
                last = err
    finally:
        _retrying.active = False
    raise StorageLostError(f"storage: {what} failed after {len(RETRY_DELAYS_S)} retries "
                           f"({_root_message(last)}); completed trials are saved, resume the study") from None


def _is_database_error(err: BaseException) -> bool:
    if isinstance(err, optuna.exceptions.StorageInternalError):   # Optuna's wrapper of a DB failure
        return True
    module = type(err).__module__
    return module.startswith(("sqlalchemy", "psycopg", "sqlite3")) or isinstance(err, (OSError, ConnectionError))


# every BaseStorage method (the abstract ones and those Optuna's storages override for speed)
_STORAGE_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id", "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials", "get_n_trials", "get_best_trial",
    "get_trial_params", "get_trial_user_attrs", "get_trial_system_attrs", "check_trial_is_updatable",
)


def _retried(name: str) -> Callable[..., Any]:
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        inner = self.inner
        return with_retries(lambda: getattr(inner, name)(*args, **kwargs), f"the storage call {name}",
                            reset=self.remove_session)
    method.__name__ = name
    return method


class RetryingStorage(BaseStorage):
    """A storage whose every call is retried on database errors (see ``with_retries``). Made by
    ``retrying``, which fills in each BaseStorage method."""

    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner

    def remove_session(self) -> None:
        """Drop this thread's database session (Optuna's trial cache does not pass this on)."""
        (self.rdb or self.inner).remove_session()

    @property
    def rdb(self) -> optuna.storages.RDBStorage | None:
        """The RDB storage underneath (Optuna's trial cache keeps it as ``_backend``), if any."""
        backend = getattr(self.inner, "_backend", self.inner)
        return backend if isinstance(backend, optuna.storages.RDBStorage) else None

    @property
    def database(self) -> Database | None:
        """The database of Optuna's tables (through Optuna's engine, or a reader's of
        ador/explore/read_storage.py); None for a storage without tables (a journal file)."""
        rdb = self.rdb
        if rdb is not None:
            from ador.explore.database import EngineDatabase
            return EngineDatabase(rdb.engine)
        return getattr(self.inner, "database", None)


def database_of(storage: BaseStorage) -> Database | None:
    """The database under ``storage`` for ador's own queries (ador/explore/stored.py): that of
    ador's retrying storage or of a reader; None for any other storage (read through Optuna's API)."""
    from ador.explore.read_storage import ReadOnlyStorage
    if isinstance(storage, (RetryingStorage, ReadOnlyStorage)):
        return storage.database
    return None


# built with type() so that ABCMeta sees the abstract methods implemented
_Retrying = type("_Retrying", (RetryingStorage,), {"__module__": __name__,
                                                   **{name: _retried(name) for name in _STORAGE_METHODS}})


def retrying(inner: BaseStorage) -> RetryingStorage:
    storage: RetryingStorage = _Retrying(inner)
    return storage


# the positional placeholder of each DB-API paramstyle the bulk rows are sent with (others: through SQLAlchemy)
