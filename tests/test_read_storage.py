"""Reading a stored study without Optuna's RDBStorage (ador/explore/read_storage.py): its tables
and schema check against the Optuna installed, its answers against RDBStorage's on SQLite and
PostgreSQL, and the reading commands' output and errors against the RDBStorage path."""
import contextlib
import gc
import json
import sqlite3
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from ador.cli import main
from ador.explore import read_storage
from ador.explore.read_storage import ReadOnlyStorage, schema_head
from ador.explore import storage as storage_mod
from ador.explore.storage import open_storage
from tests.conftest import ador_env

READS = [["status"], ["status", "--json"], ["best"], ["best", "--json"], ["best", "--csv"],
         ["export", "--format", "csv"], ["export", "--format", "json"], ["export", "3"], ["export", "3", "--json"]]


def test_tables_are_optunas():
    """Every table of Optuna's models, column for column, and no other; the stored kinds of values,
    states and directions are the names of Optuna's enums."""
    from optuna.storages._rdb import models
    from optuna.study import StudyDirection

    from ador.explore.optuna_tables import COLUMNS, INTERMEDIATE_KINDS, TABLE_NAMES, VALUE_KINDS
    theirs = models.BaseModel.metadata.tables
    assert set(COLUMNS) == set(theirs) and TABLE_NAMES == set(theirs) | {"alembic_version"}
    for name, columns in COLUMNS.items():
        assert columns == tuple(c.name for c in theirs[name].columns), name
    assert VALUE_KINDS == tuple(k.name for k in models.TrialValueModel.TrialValueType)
    assert INTERMEDIATE_KINDS == tuple(k.name for k in models.TrialIntermediateValueModel.TrialIntermediateValueType)
    assert theirs["trials"].c.state.type.enums == [s.name for s in TrialState]
    assert theirs["study_directions"].c.direction.type.enums == [d.name for d in StudyDirection]


def test_schema_head_is_alembics():
    storage = optuna.storages.RDBStorage("sqlite://")
    assert schema_head() == storage._version_manager.get_head_version()


def test_stored_numbers_decode_as_optuna_decodes_them():
    from optuna.storages._rdb import models

    from ador.explore.stored_table import stored_number
    V, M = models.TrialValueModel, models.TrialIntermediateValueModel
    for kind in V.TrialValueType:
        number = 1.5 if kind.name == "FINITE" else None
        assert stored_number(number, kind.name) == V.stored_repr_to_value(number, kind)
        assert stored_number(number, kind) == V.stored_repr_to_value(number, kind)
    for kind in M.TrialIntermediateValueType:
        number = -2.5 if kind.name == "FINITE" else None
        assert repr(stored_number(number, kind.name)) == repr(M.stored_repr_to_intermediate_value(number, kind))


def _fill(url):
    """Two studies: attributes, several directions, trials of every state (intermediate values,
    infinite values, constraints), through Optuna's own storage."""
    storage = open_storage(url, create=True)
    a = optuna.create_study(storage=storage, study_name="a", directions=["minimize", "maximize"])
    a.set_user_attr("u", {"k": [1, 2.5]})
    storage.set_study_system_attr(a._study_id, "s", "x")
    dists = {"x": IntDistribution(0, 9), "y": FloatDistribution(0.1, 2.0, log=True)}
    for i, state in enumerate([TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING, TrialState.PRUNED,
                               TrialState.COMPLETE, TrialState.WAITING]):
        t = a.ask(dists)
        t.set_user_attr("i", i)
        t.set_user_attr("metrics", {"m": i / 3})
        a._storage.set_trial_system_attr(t._trial_id, "constraints", [float(i) - 2])
        if i == 0:                            # (Trial.report is single-objective only)
            for step, value in enumerate([0.5, float("inf"), float("-inf"), float("nan")]):
                a._storage.set_trial_intermediate_value(t._trial_id, step, value)
        if state == TrialState.COMPLETE:
            a.tell(t, [float(i), float("inf") if i == 4 else -1.0])
        elif state in (TrialState.FAIL, TrialState.PRUNED):
            a.tell(t, state=state)
    a.enqueue_trial({"x": 3})                               # a WAITING trial
    b = optuna.create_study(storage=storage, study_name="b")
    b.optimize(lambda t: t.suggest_float("z", -1, 1), n_trials=3)
    return {"a": a._study_id, "b": b._study_id}


def _same_answers(url, driver):
    ids = _fill(url)
    ours, theirs = open_storage(url, reads_only=True), open_storage(url)
    assert isinstance(ours.inner, ReadOnlyStorage) and ours.rdb is None and theirs.rdb is not None
    assert type(ours.database).__name__ == driver

    def study_fields(s):
        return (s.study_name, s._study_id, s.directions, s.user_attrs, s.system_attrs)
    assert [study_fields(s) for s in ours.get_all_studies()] == [study_fields(s) for s in theirs.get_all_studies()]
    for name, sid in ids.items():
        for storage in (ours, theirs):
            assert storage.get_study_id_from_name(name) == sid and storage.get_study_name_from_id(sid) == name
        for call in ("get_study_directions", "get_study_user_attrs", "get_study_system_attrs"):
            assert getattr(ours, call)(sid) == getattr(theirs, call)(sid), call
        # (repr: a NaN intermediate value is not equal to itself)
        for states in (None, (TrialState.COMPLETE,), (TrialState.RUNNING, TrialState.WAITING), ()):
            assert repr(ours.get_all_trials(sid, states=states)) == repr(theirs.get_all_trials(sid, states=states))
        for t in theirs.get_all_trials(sid):
            assert repr(ours.get_trial(t._trial_id)) == repr(t)
            assert ours.get_trial_number_from_id(t._trial_id) == t.number
            assert ours.get_trial_id_from_study_id_trial_number(sid, t.number) == t._trial_id
    assert len(ours.get_all_trials(ids["a"])) == 7
    for call, args in (("get_study_id_from_name", ("nope",)), ("get_study_name_from_id", (999,)),
                       ("get_study_directions", (999,)), ("get_study_user_attrs", (999,)),
                       ("get_study_system_attrs", (999,)), ("get_trial", (10 ** 9,)),
                       ("get_trial_number_from_id", (10 ** 9,)),
                       ("get_trial_id_from_study_id_trial_number", (ids["a"], 10 ** 6))):
        for storage in (ours, theirs):
            with pytest.raises(KeyError):
                getattr(storage, call)(*args)
    with pytest.raises(RuntimeError, match="opened for reading"):
        ours.set_study_user_attr(ids["a"], "k", 1)
    with pytest.raises(RuntimeError, match="opened for reading"):
        ours.create_new_trial(ids["a"])


@pytest.mark.parametrize("driver", ["SqliteFile", "EngineDatabase"])
def test_reader_answers_as_rdbstorage_on_sqlite(tmp_path, monkeypatch, driver):
    """Through ``sqlite3`` (what a reading command opens a SQLite file with) and through a
    SQLAlchemy engine (what it opens any other database with), the same SQL."""
    if driver == "EngineDatabase":
        monkeypatch.setattr(storage_mod, "_sqlite_reader", lambda url, shown, tables: None)
    _same_answers(f"sqlite:///{tmp_path}/r.db", driver)


@pytest.mark.postgres
def test_reader_answers_as_rdbstorage_on_postgresql(pg_db):
    _same_answers(pg_db.url, "EngineDatabase")


def _outputs(argvs, capsys):
    out = []
    for argv in argvs:
        code = main(argv)
        captured = capsys.readouterr()
        out.append((code, captured.out, captured.err))
    return out


def _reads_equal_rdb_path(url, monkeypatch, capsys):
    """Every reading command prints what it printed through RDBStorage, which it never builds."""
    argvs = [["study", argv[0], "smoke", *argv[1:], "--storage", url] for argv in READS]
    through_rdb = optuna.storages.RDBStorage.__init__
    built = []

    def counted(self, *args, **kwargs):
        built.append(args)
        through_rdb(self, *args, **kwargs)
    monkeypatch.setattr(optuna.storages.RDBStorage, "__init__", counted)
    opened = []
    real_open_reader = read_storage.open_reader
    monkeypatch.setattr(read_storage, "open_reader", lambda db, *args: opened.append(type(db).__name__)
                        or real_open_reader(db, *args))
    fast = _outputs(argvs, capsys)
    assert not built and set(opened) == {"SqliteFile" if url.startswith("sqlite") else "EngineDatabase"}
    if url.startswith("sqlite"):                         # the reader through a SQLAlchemy engine, as on PostgreSQL
        monkeypatch.setattr(storage_mod, "_sqlite_reader", lambda url, shown, tables: None)
        assert _outputs(argvs, capsys) == fast and not built and opened[-1] == "EngineDatabase"
    monkeypatch.setattr(read_storage, "open_reader", lambda *args: None)      # the path before the reader
    slow = _outputs(argvs, capsys)
    assert len(built) == len(argvs)
    assert fast == slow
    assert all(code == 0 for code, _, _ in fast)
    assert gc.isenabled()               # paused during each reading command only (cli_study._bulk_read)
    # both routes run ador's own queries: hold them to what Optuna's API says of the study
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials(deepcopy=False)
    status = json.loads(fast[1][1])
    assert status["n_trials"] == len(trials) > 40
    assert (status["n_complete"], status["n_failed"], status["n_running"]) == tuple(
        sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING))
    from ador.explore.record import is_feasible
    assert status["n_feasible"] == sum(t.state == TrialState.COMPLETE and is_feasible(t) for t in trials)
    assert sorted(e["trial"] for e in json.loads(fast[6][1])) == [t.number for t in trials]


def test_reading_commands_print_what_the_rdbstorage_path_printed(workdir, monkeypatch, capsys):
    url = f"sqlite:///{workdir}/s.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "60", "--quiet", "--storage", url]) == 0
    other = optuna.load_study(study_name="smoke", storage=url)         # a plain Optuna client's trials too
    other.ask()                                                        # RUNNING
    t = other.ask({"x": IntDistribution(0, 3)})
    t.set_user_attr("note", "a, \"quoted\" text")
    other.tell(t, [1.0, 2.0, 3.0][:len(other.directions)])
    other.tell(other.ask(), state=TrialState.PRUNED)
    other.tell(other.ask(), state=TrialState.FAIL)
    # a second study in the file, trials of every state with ador's attributes: no read of "smoke"
    # may pick them up (a query that lost its study filter fails here)
    second = optuna.create_study(study_name="second", storage=url, directions=other.directions)
    for state in (TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, None):
        t = second.ask({"x": IntDistribution(0, 3)})
        second._storage.set_trial_system_attr(t._trial_id, "ador_design", f"second-{t.number}")
        second._storage.set_trial_system_attr(t._trial_id, "constraints", [-1.0])
        if state is not None:
            second.tell(t, [0.5] * len(second.directions) if state == TrialState.COMPLETE else None, state=state)
    capsys.readouterr()
    _reads_equal_rdb_path(url, monkeypatch, capsys)


@pytest.mark.postgres
def test_reading_commands_print_what_the_rdbstorage_path_printed_on_postgresql(workdir, pg_db, monkeypatch,
                                                                               capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "60", "--quiet", "--storage",
                 pg_db.url]) == 0
    capsys.readouterr()
    _reads_equal_rdb_path(pg_db.url, monkeypatch, capsys)


def test_a_journal_is_read_through_optunas_api(workdir, capsys):
    url = "journal:studies/j.log"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "30", "--quiet", "--storage", url]) == 0
    capsys.readouterr()
    for code, out, err in _outputs([["study", a[0], "smoke", *a[1:], "--storage", url] for a in READS], capsys):
        assert code == 0 and out and not err
    storage = open_storage(url, reads_only=True)
    assert storage.database is None and not isinstance(storage.inner, ReadOnlyStorage)


def test_reading_commands_import_neither_alembic_nor_sqlalchemy(workdir):
    """A fresh process: status, best and export of a SQLite study never construct RDBStorage nor
    import alembic or SQLAlchemy (0.3 s and 0.1-0.2 s of each command: the file is read with
    ``sqlite3``), and keep no SQLite connection open between queries (none of the write-ahead
    log's files is left while the process lives)."""
    import gc
    url = f"sqlite:///{workdir}/s.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "30", "--quiet", "--storage", url]) == 0
    gc.collect()                                        # the launch's own connections
    assert not (workdir / "s.db-wal").exists()
    script = """
import os, sys
import optuna.storages
def refused(*args, **kwargs):
    raise AssertionError("RDBStorage built")
optuna.storages.RDBStorage.__init__ = refused
from ador.cli import main
for argv in %r:
    assert main(argv) == 0, argv
loaded = sorted(m for m in sys.modules if m.startswith(("alembic", "sqlalchemy", "optuna.storages._rdb.models",
                                                        "ador.explore.runner", "ador.explore.scoring")))
assert not loaded, loaded
assert not os.path.exists("s.db-wal") and not os.path.exists("s.db-shm")
""" % ([["study", "status", "smoke", "--storage", url], ["study", "best", "smoke", "--json", "--storage", url],
        ["study", "export", "smoke", "--format", "csv", "--storage", url],
        ["study", "export", "smoke", "2", "--storage", url]],)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=workdir,
                          env=ador_env(), timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("revision,needle", [("v3.0.0.d", "optuna storage upgrade"),
                                             ("v99.0.0.a", "pip install -U optuna")])
def test_another_schema_version_is_optunas_one_line_error(workdir, capsys, revision, needle):
    """A database of another Optuna schema is opened by RDBStorage, which refuses it in the same
    one line as before the reader existed, and nothing in it changes."""
    path = workdir / "old.db"
    url = f"sqlite:///{path}"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet", "--storage", url]) == 0
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    capsys.readouterr()
    for command in ("status", "best", "export"):
        assert main(["study", command, "smoke", "--storage", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ador: error: storage=") and err.count("\n") == 1, err
        assert "cannot open the database" in err and "no longer compatible" in err and needle in err, err
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(revision,)]


def test_a_database_optuna_would_complete_goes_through_optuna(workdir, monkeypatch):
    """No alembic revision stamped (a creation cut short, an old database): the reader steps
    aside, as for a missing table or an empty version_info."""
    path = workdir / "s.db"
    url = f"sqlite:///{path}"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet", "--storage", url]) == 0
    assert isinstance(open_storage(url, reads_only=True).inner, ReadOnlyStorage)
    for sql in ("DELETE FROM version_info", "DELETE FROM alembic_version"):
        copy = workdir / f"c{len(sql)}.db"
        with contextlib.closing(sqlite3.connect(path)) as src, contextlib.closing(sqlite3.connect(copy)) as conn:
            src.backup(conn)                      # the file and its write-ahead log
            with conn:
                conn.execute(sql)
        storage = open_storage(f"sqlite:///{copy}", reads_only=True)
        assert not isinstance(storage.inner, ReadOnlyStorage) and storage.rdb is not None
    monkeypatch.setattr(read_storage, "schema_head", lambda: None)    # scripts this reader cannot read
    assert open_storage(url, reads_only=True).rdb is not None


def test_a_missing_database_is_still_one_line(workdir, capsys):
    code = main(["study", "status", "smoke", "--storage", f"sqlite:///{workdir}/none.db"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such file" in err, err
    assert not (workdir / "none.db").exists()
    assert gc.isenabled()               # back on after a reading command that failed


def test_the_sqlite_reader_never_creates_a_database(tmp_path):
    """A file deleted under a reading command is an error on the next query, not a new empty file."""
    from ador.explore.database import SqliteFile
    db = SqliteFile(str(tmp_path / "gone db#1.db"))
    with pytest.raises(sqlite3.OperationalError), db.session() as s:
        s.rows("SELECT name FROM sqlite_master")
    assert not list(tmp_path.iterdir())


def test_a_reader_session_sees_one_snapshot(tmp_path):
    """A study writing between two queries of one session is not seen by the second."""
    from ador.explore.database import SqliteFile
    path = tmp_path / "s.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    with SqliteFile(str(path)).session() as s:
        before = s.rows("SELECT COUNT(*) FROM t")
        writer.execute("INSERT INTO t VALUES (1)")
        assert s.rows("SELECT COUNT(*) FROM t") == before == [(0,)]
    with SqliteFile(str(path)).session() as s:
        assert s.rows("SELECT COUNT(*) FROM t") == [(1,)]


def test_status_counts_every_point_it_read(workdir, monkeypatch):
    """Trials that complete while status reads are in its counts if they are in its points: never
    more feasible than complete trials (the counts are read after the points)."""
    from ador.explore import results
    url = f"sqlite:///{workdir}/s.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "20", "--quiet", "--storage", url]) == 0
    study = optuna.load_study(study_name="smoke", storage=url)
    real_reader = results.reader

    def reader_with_a_writer(durable):
        r = real_reader(durable)
        real_counts = r.counts

        def counts():
            finished = real_counts()
            # the writer completes a trial between the two reads, whichever order they come in
            if not getattr(r, "wrote", False):
                r.wrote = True
                t = study.ask({"x": IntDistribution(0, 3)})
                study._storage.set_trial_system_attr(t._trial_id, "constraints", [-1.0])
                study.tell(t, [1.0] * len(study.directions))
            return finished
        r.counts = counts
        return r
    monkeypatch.setattr(results, "reader", reader_with_a_writer)
    durable = optuna.load_study(study_name="smoke", storage=url)
    out = results.status(durable)
    assert out["n_feasible"] <= out["n_complete"], out


@pytest.mark.parametrize("when", ["before the file check", "after the file check"])
def test_a_locked_database_is_one_wait_and_one_line_naming_the_lock(workdir, capsys, monkeypatch, when):
    """Another process holds the file's exclusive lock past the busy timeout: a one-line error that
    says so (not "not a SQLite database"), exit 2, after one busy timeout. A lock taken between the
    file check and the sqlite3 reader's first query used to fall back to Optuna's storage, which
    waited out its own timeout and retries again."""
    import time

    from ador.explore import storage
    url = f"sqlite:///{workdir}/s.db"
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "2", "--quiet", "--storage", url]) == 0
    gc.collect()                                        # the launch's own connections
    capsys.readouterr()
    monkeypatch.setattr(storage, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    holder = sqlite3.connect(workdir / "s.db", isolation_level=None)

    def lock() -> None:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")

    if when == "before the file check":
        lock()
    else:
        check = storage._check_sqlite_is_optuna
        monkeypatch.setattr(storage, "_check_sqlite_is_optuna", lambda path, shown: (check(path, shown), lock())[0])
    try:
        start = time.monotonic()
        code = main(["study", "status", "smoke", "--storage", url])
        waited = time.monotonic() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "locked by another process for over 0.3 s" in err, err
    assert 0.3 <= waited < 0.3 * 2.5, waited
    monkeypatch.undo()
    assert main(["study", "status", "smoke", "--storage", url]) == 0      # the lock gone, it reads
