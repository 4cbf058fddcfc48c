"""Writing finished trials into Optuna's own tables in one transaction (``TrialRecorder``), each
exactly once: every trial carries a random id, and a retried write looks for its trials' ids under
the study's lock before writing the ones it does not find."""
from __future__ import annotations

from typing import Any, Sequence

from optuna.storages import BaseStorage

from ador.explore.storage import RetryingStorage

DRIVER_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
UID_KEY = "ador_uid"     # system attribute: a random id per trial, so a retried write is never stored twice


class TrialRecorder:
    """Writes a finished trial to a storage in one transaction.

    On an RDB storage this issues a handful of bulk INSERTs into Optuna's own tables (about a
    millisecond) instead of Optuna's per-attribute ORM round trips (about 30 ms on SQLite); the
    trial number is assigned the way Optuna assigns it (count of earlier trials of the study, under
    the study-row lock), so Optuna, optuna-dashboard and other workers read the trial as their own.
    Other storages fall back to ``create_new_trial(template_trial=...)``.
    """

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self.storage = storage
        self.study_id = study_id
        self.rdb = storage.rdb if isinstance(storage, RetryingStorage) else None
        self._last: dict[int, int] = {}      # id -> number of the trials of the last write

    def find(self, uid: str) -> int | None:
        """The id of the stored trial carrying ``uid`` (a write whose commit was reported failed
        may still have committed), or None."""
        return self.find_many([uid]).get(uid)

    def find_many(self, uids: list[str]) -> dict[str, int]:
        """uid -> id of the stored trials carrying one of ``uids``."""
        wanted = set(uids)
        if not wanted:
            return {}
        if self.rdb is None:
            return {t.system_attrs[UID_KEY]: t._trial_id
                    for t in self.storage.get_all_trials(self.study_id, deepcopy=False)
                    if t.system_attrs.get(UID_KEY) in wanted}
        with self.rdb.engine.connect() as conn:
            return self._find(conn, wanted)

    def _find(self, conn, wanted: set[str]) -> dict[str, int]:
        import json

        from optuna.storages._rdb import models
        from sqlalchemy import select
        A = models.TrialSystemAttributeModel.__table__
        T = models.TrialModel.__table__
        rows = conn.execute(select(A.c.trial_id, A.c.value_json).join(T, T.c.trial_id == A.c.trial_id).where(
            T.c.study_id == self.study_id, A.c.key == UID_KEY,
            A.c.value_json.in_([json.dumps(u) for u in wanted]))).all()
        return {json.loads(text): int(trial_id) for trial_id, text in rows}

    def number_of(self, trial_id: int) -> int | None:
        """The number the storage gave a trial of the write this recorder made last (None for
        another)."""
        return self._last.get(trial_id)

    def write(self, trial) -> int:
        return self.write_many([trial])[0]

    def write_many(self, trials: Sequence[Any], *, skip_stored: bool = False) -> list[int]:
        """Store ``trials`` (finished FrozenTrials) in one transaction, numbered in order; returns
        their ids. ``skip_stored`` (a retry): first look, in the same transaction and under the
        study's lock, for trials whose id is already stored, and return those instead of writing
        them again. Under the lock, because a commit whose answer was lost may still be finishing
        on the server: it holds the study's row lock until it ends, so the look waits for it and
        then sees its trials (looking before taking the lock could miss them and store them twice).
        Other storages than an RDB write them one by one (``create_new_trial``)."""
        if not trials:
            return []
        if self.rdb is None:
            found = self.find_many([t.system_attrs[UID_KEY] for t in trials if UID_KEY in t.system_attrs]) \
                if skip_stored else {}
            return [found[t.system_attrs.get(UID_KEY)] if t.system_attrs.get(UID_KEY) in found
                    else self.storage.create_new_trial(self.study_id, template_trial=t) for t in trials]
        return self._write_rdb(trials, skip_stored)

    def _write_rdb(self, trials: Sequence[Any], skip_stored: bool = False) -> list[int]:
        assert self.rdb is not None
        import datetime as dt
        import json

        from optuna.distributions import distribution_to_json
        from optuna.storages._rdb import models
        from sqlalchemy import bindparam, func, select

        def utc(t):
            return None if t is None else t.astimezone(dt.timezone.utc).replace(tzinfo=None)

        T = models.TrialModel.__table__
        engine = self.rdb.engine
        S = models.StudyModel.__table__
        uid_of = [t.system_attrs.get(UID_KEY) for t in trials]
        with engine.begin() as conn:
            if engine.dialect.name != "sqlite":
                conn.execute(select(S.c.study_id).where(S.c.study_id == self.study_id).with_for_update())
            elif skip_stored:       # SQLite's write lock first, so the look below is not of an older snapshot
                conn.execute(S.update().where(S.c.study_id == self.study_id).values(study_name=S.c.study_name))
            found = self._find(conn, {u for u in uid_of if u is not None}) if skip_stored else {}
            if found:
                trials = [t for t, u in zip(trials, uid_of) if u not in found]
                if not trials:
                    return [found[u] for u in uid_of]
            heads = [{"number": None, "study_id": self.study_id, "state": t.state,
                      "datetime_start": utc(t.datetime_start), "datetime_complete": utc(t.datetime_complete)}
                     for t in trials]
            if conn.dialect.insert_returning:      # one statement, ids in the order given
                rows = conn.execute(T.insert().returning(T.c.trial_id, sort_by_parameter_order=True), heads).all()
                ids = [int(r[0]) for r in rows]
            else:                                  # e.g. SQLite before 3.35: one INSERT per trial
                ids = []
                for head in heads:
                    key = conn.execute(T.insert().values(**head)).inserted_primary_key
                    assert key is not None
                    ids.append(int(key[0]))
            # Optuna's number: the count of the study's earlier trials, which is the previous trial's
            # number + 1 (one index step back, where counting reads the whole study); this
            # transaction holds the study (its row lock; SQLite's one writer), so its trials follow
            # one another
            previous = conn.execute(select(T.c.number).where(T.c.study_id == self.study_id, T.c.trial_id < ids[0])
                                    .order_by(T.c.trial_id.desc()).limit(1)).first()
            first = 0 if previous is None else previous[0] + 1 if previous[0] is not None else \
                conn.execute(select(func.count(T.c.trial_id)).where(T.c.study_id == self.study_id,
                                                                    T.c.trial_id < ids[0])).scalar()
            numbers = [int(first or 0) + i for i in range(len(ids))]
            conn.execute(T.update().where(T.c.trial_id == bindparam("tid")).values(number=bindparam("num")),
                         [{"tid": i, "num": n} for i, n in zip(ids, numbers)])
            values: list[dict[str, Any]] = []
            params: list[tuple] = []
            user: list[tuple] = []
            system: list[tuple] = []
            dist_json: dict[int, str] = {}       # id(distribution) -> its JSON: trials share them
            for trial_id, trial in zip(ids, trials):
                for objective, value in enumerate(trial.values or ()):
                    stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                    values.append({"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind})
                for name, value in trial.params.items():
                    dist = trial.distributions[name]
                    text = dist_json.get(id(dist))
                    if text is None:
                        text = dist_json[id(dist)] = distribution_to_json(dist)
                    params.append((trial_id, name, dist.to_internal_repr(value), text))
                user.extend((trial_id, k, json.dumps(v)) for k, v in trial.user_attrs.items())
                system.extend((trial_id, k, json.dumps(v)) for k, v in trial.system_attrs.items())
            if values:     # (its enum column through SQLAlchemy; the bulk of the rows below straight to the driver)
                conn.execute(models.TrialValueModel.__table__.insert(), values)
            mark = DRIVER_PLACEHOLDERS.get(conn.dialect.paramstyle)
            quote = conn.dialect.identifier_preparer.quote       # `key` is a reserved word in MySQL
            for model, columns, bulk in (
                    (models.TrialParamModel, ("trial_id", "param_name", "param_value", "distribution_json"), params),
                    (models.TrialUserAttributeModel, ("trial_id", "key", "value_json"), user),
                    (models.TrialSystemAttributeModel, ("trial_id", "key", "value_json"), system)):
                if not bulk:
                    continue
                if mark is None:         # a driver with named placeholders: through SQLAlchemy
                    conn.execute(model.__table__.insert(), [dict(zip(columns, row)) for row in bulk])
                    continue
                conn.exec_driver_sql(f"INSERT INTO {quote(model.__tablename__)} ({', '.join(map(quote, columns))}) "
                                     f"VALUES ({', '.join([mark] * len(columns))})", bulk)
        self._last = dict(zip(ids, numbers))
        if not found:
            return ids
        new = iter(ids)
        return [found[u] if u in found else next(new) for u in uid_of]
