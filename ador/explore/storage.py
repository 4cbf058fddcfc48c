"""Where studies live: a SQLite file under studies/ by default, a journal file, or any SQLAlchemy
URL (PostgreSQL through psycopg 3). Opening errors and lost connections become one-line errors."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

import optuna

from ador.errors import AdorError, ConfigError

T = TypeVar("T")
STUDIES_DIR = Path("studies")
# bounded retries when the database drops mid-study (a PostgreSQL restart takes a few seconds)
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
OPEN_RETRY_DELAYS_S = (0.5, 1.0, 2.0)   # opening: a server that is down is reported within seconds


class StorageLostError(AdorError):
    """The storage failed during a study after the retries; completed trials are saved."""


def default_storage(name: str) -> str:
    return f"sqlite:///{STUDIES_DIR / name}.db"


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url and not url.startswith("journal:") and url.endswith((".db", ".sqlite", ".sqlite3")):
        return f"sqlite:///{url}"
    return url


def open_storage(url: str) -> optuna.storages.BaseStorage:
    url = normalise_url(url)
    if url.startswith("journal:") or (("://" not in url) and url.endswith((".log", ".journal", ".jsonl"))):
        path = Path(url.removeprefix("journal:"))
        _check_writable(path, url)
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as err:
            raise ConfigError("storage", url, f"cannot open the journal file ({err.strerror or err})") from None
    if "://" not in url:
        raise ConfigError("storage", url, "expected a database URL (sqlite:///x.db, postgresql://...) "
                                          "or journal:PATH")
    engine_kwargs: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        _check_writable(path, url)
        engine_kwargs["connect_args"] = {"timeout": 60}   # several worker processes share the file
    elif url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 5}
    last: BaseException | None = None
    for delay in (0.0, *OPEN_RETRY_DELAYS_S):
        time.sleep(delay)
        try:
            if url.startswith("sqlite:///"):
                _use_wal(url, engine_kwargs)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except ImportError as err:
            raise ConfigError("storage", url, f"missing database driver ({err.name})") from None
        except Exception as err:   # SQLAlchemy raises many kinds; all mean the storage cannot be used
            last = err
            if not _is_database_error(err):
                break
    raise ConfigError("storage", _redact(url), f"cannot open the database: {_first_line(last)}") from None


def _use_wal(url: str, engine_kwargs: dict) -> None:
    """Write-ahead logging: one fsync per commit instead of three, readers never block the writer,
    and with synchronous=FULL a committed trial survives a crash or power loss."""
    import sqlite3
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=60) as conn:
        conn.execute("PRAGMA journal_mode=WAL")     # persistent in the file


def _check_writable(path: Path, url: str) -> None:
    """Try to create a file beside the database: permission bits alone mislead (root passes
    os.access everywhere) and read-only mounts show only on a write."""
    import tempfile
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".ador-write-test-"):
            pass
        if path.exists():
            with path.open("ab"):
                pass
    except OSError as err:
        raise ConfigError("storage", url, f"{parent} is not writable ({err.strerror or err})") from None


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


def with_retries(action: Callable[[], T], what: str) -> T:
    """Run a storage action, retrying on database errors with bounded back-off."""
    last: BaseException | None = None
    for delay in (0.0, *RETRY_DELAYS_S):
        if delay:
            time.sleep(delay)
        try:
            return action()
        except Exception as err:      # sqlalchemy.exc.OperationalError and friends
            if not _is_database_error(err):
                raise
            last = err
    raise StorageLostError(f"storage: {what} failed after {len(RETRY_DELAYS_S)} retries "
                           f"({_first_line(last)}); completed trials are saved, resume the study") from None


def _is_database_error(err: BaseException) -> bool:
    if isinstance(err, optuna.exceptions.StorageInternalError):   # Optuna's wrapper of a DB failure
        return True
    module = type(err).__module__
    return module.startswith(("sqlalchemy", "psycopg", "sqlite3")) or isinstance(err, (OSError, ConnectionError))


class TrialRecorder:
    """Writes a finished trial to a storage in one transaction.

    On an RDB storage this issues a handful of bulk INSERTs into Optuna's own tables (about a
    millisecond) instead of Optuna's per-attribute ORM round trips (about 30 ms on SQLite); the
    trial number is assigned the way Optuna assigns it (count of earlier trials of the study, under
    the study-row lock), so Optuna, optuna-dashboard and other workers read the trial as their own.
    Other storages fall back to ``create_new_trial(template_trial=...)``.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        self.storage = storage
        self.study_id = study_id
        backend = getattr(storage, "_backend", storage)
        self.rdb = backend if isinstance(backend, optuna.storages.RDBStorage) else None

    def write(self, trial) -> int:
        if self.rdb is None:
            return self.storage.create_new_trial(self.study_id, template_trial=trial)
        return self._write_rdb(trial)

    def _write_rdb(self, trial) -> int:
        import datetime as dt
        import json

        from optuna.storages._rdb import models
        from sqlalchemy import func, select

        def utc(t):
            return None if t is None else t.astimezone(dt.timezone.utc).replace(tzinfo=None)

        T = models.TrialModel.__table__
        engine = self.rdb.engine
        with engine.begin() as conn:
            if engine.dialect.name != "sqlite":
                S = models.StudyModel.__table__
                conn.execute(select(S.c.study_id).where(S.c.study_id == self.study_id).with_for_update())
            trial_id = conn.execute(T.insert().values(
                number=None, study_id=self.study_id, state=trial.state,
                datetime_start=utc(trial.datetime_start), datetime_complete=utc(trial.datetime_complete),
            )).inserted_primary_key[0]
            number = conn.execute(select(func.count(T.c.trial_id)).where(
                T.c.study_id == self.study_id, T.c.trial_id < trial_id)).scalar()
            conn.execute(T.update().where(T.c.trial_id == trial_id).values(number=number))
            if trial.values is not None:
                rows = []
                for objective, value in enumerate(trial.values):
                    stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                    rows.append({"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind})
                conn.execute(models.TrialValueModel.__table__.insert(), rows)
            if trial.params:
                from optuna.distributions import distribution_to_json
                conn.execute(models.TrialParamModel.__table__.insert(), [
                    {"trial_id": trial_id, "param_name": name,
                     "param_value": trial.distributions[name].to_internal_repr(value),
                     "distribution_json": distribution_to_json(trial.distributions[name])}
                    for name, value in trial.params.items()])
            for model, attrs in ((models.TrialUserAttributeModel, trial.user_attrs),
                                 (models.TrialSystemAttributeModel, trial.system_attrs)):
                if attrs:
                    conn.execute(model.__table__.insert(), [
                        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                        for key, value in attrs.items()])
        return trial_id
