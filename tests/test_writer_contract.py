"""ador's trial writer (TrialRecorder: bulk INSERTs into Optuna's tables) against Optuna's own
``create_new_trial(template_trial=...)``: the same trial, read back by Optuna, is equal field by
field, on SQLite, PostgreSQL and the journal file (where ador writes through the public API).
This ties the writer, and the targeted reads of ador/explore/stored.py, to the Optuna installed."""
import datetime as dt
import uuid

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from ador.explore.recorder import TrialRecorder
from ador.explore.storage import open_storage
from ador.explore.stored import StoredTrials

FIELDS = ("state", "values", "datetime_start", "datetime_complete", "params", "distributions", "user_attrs",
          "system_attrs", "intermediate_values", "constraints")


def _template(state=TrialState.COMPLETE):
    dists = {"a": IntDistribution(1, 64, log=True), "b:log2": IntDistribution(0, 6), "c": FloatDistribution(0.1, 2.0),
             "d": CategoricalDistribution(["x", 2, 3.5, True, None]), "e": FloatDistribution(0, 1, step=0.25)}
    params = {"a": 17, "b:log2": 3, "c": 0.1 + 0.2, "d": 3.5, "e": 0.75}    # c: 17 digits to round-trip
    start = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
    values = [1.5, float("inf"), -float("inf")] if state == TrialState.COMPLETE else None
    trial = optuna.trial.create_trial(state=state, values=values, params=params, distributions=dists,
                                      user_attrs={"m": 1.25, "feasible": False, "infeasible_reasons": ["x > 1"],
                                                  "nested": {"k": [1, 2]}},
                                      system_attrs={"NSGAIISampler:generation": 4, "ador_uid": uuid.uuid4().hex},
                                      constraints={"fits_memory": -0.5, "area<=800": 0.25} if values else None)
    trial.datetime_start, trial.datetime_complete = start, start + dt.timedelta(seconds=3)
    return trial


def _compare(url: str, opener=open_storage) -> None:
    storage = opener(url, create=True)
    name = f"contract-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=storage, study_name=name, directions=["minimize"] * 3)
    try:
        recorder = TrialRecorder(storage, study._study_id)
        if url.startswith("journal:"):
            assert recorder.rdb is None          # no tables: ador writes through Optuna's public API
        for state in (TrialState.COMPLETE, TrialState.FAIL):
            template = _template(state)
            ours = recorder.write(template)
            theirs = storage.create_new_trial(study._study_id, template_trial=template)
            fresh = optuna.load_study(study_name=name, storage=url.replace("postgresql://", "postgresql+psycopg://")
                                      if "://" in url else open_storage(url))
            a, b = fresh._storage.get_trial(ours), fresh._storage.get_trial(theirs)
            for field in FIELDS:
                assert getattr(a, field) == getattr(b, field), field
            assert b.number == a.number + 1
            # ador's own reads agree with Optuna's
            mine = {t._trial_id: t for t in StoredTrials(storage, study._study_id).load([ours, theirs])}
            for field in FIELDS:
                assert getattr(mine[ours], field) == getattr(a, field), field
                assert getattr(mine[theirs], field) == getattr(b, field), field
            # ... and so do its reads of a whole table (aggregated queries on SQLite and PostgreSQL):
            # every field but the system attributes, of which the constraints
            table = {t._trial_id: t for t in StoredTrials(storage, study._study_id).load(table=True)}
            for tid, ref in ((ours, a), (theirs, b)):
                for field in FIELDS:
                    if field in ("system_attrs", "intermediate_values"):
                        continue
                    assert getattr(table[tid], field) == getattr(ref, field), field
                    assert type(getattr(table[tid], field)) is type(getattr(ref, field)), field
                assert table[tid].constraints == ref.constraints
                assert table[tid].params["c"] == 0.1 + 0.2 and table[tid].number == ref.number
        # a batch in one write (a generation): each trial as Optuna writes it, numbered in order
        batch = [_template(TrialState.COMPLETE if i % 3 else TrialState.FAIL) for i in range(7)]
        for i, t in enumerate(batch):
            t.set_user_attr("i", i)
        before = len(storage.get_all_trials(study._study_id, deepcopy=False))
        ours_ids = recorder.write_many(batch)
        theirs_ids = [storage.create_new_trial(study._study_id, template_trial=t) for t in batch]
        fresh = optuna.load_study(study_name=name, storage=url.replace("postgresql://", "postgresql+psycopg://")
                                  if "://" in url else open_storage(url))
        for k, (ours, theirs) in enumerate(zip(ours_ids, theirs_ids)):
            a, b = fresh._storage.get_trial(ours), fresh._storage.get_trial(theirs)
            for field in FIELDS:
                assert getattr(a, field) == getattr(b, field), (k, field)
            assert a.number == before + k and b.number == before + len(batch) + k
            assert recorder.rdb is None or recorder.number_of(ours) == a.number
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_writer_matches_optuna_on_sqlite(tmp_path, monkeypatch, tz):
    """Also away from UTC: trial times are stored as Optuna stores them, not converted."""
    import time
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        _compare(f"sqlite:///{tmp_path}/c.db")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_writer_falls_back_to_optuna_on_a_journal(tmp_path):
    _compare(f"journal:{tmp_path}/c.log")


@pytest.mark.postgres
def test_writer_matches_optuna_on_postgresql(pg_db):
    _compare(pg_db.url)       # a database of its own: the shared one keeps nothing



def test_writer_without_returning_or_positional_placeholders(tmp_path, monkeypatch):
    """The portable paths: a database without INSERT ... RETURNING (SQLite before 3.35) and a
    driver whose placeholders are named write the same trials."""
    from sqlalchemy import event

    from ador.explore import recorder as recorder_mod
    monkeypatch.setattr(recorder_mod, "DRIVER_PLACEHOLDERS", {})
    statements = []

    def opener(url, **kwargs):
        storage = open_storage(url, **kwargs)
        monkeypatch.setattr(storage.rdb.engine.dialect, "insert_returning", False)
        event.listen(storage.rdb.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, *rest: statements.append(sql))
        return storage
    _compare(f"sqlite:///{tmp_path}/p.db", opener=opener)
    assert any("INSERT INTO trials" in sql for sql in statements)
    assert not any("RETURNING" in sql for sql in statements)
