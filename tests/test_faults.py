"""Faults, storage by storage: SIGKILLs at random moments, full disks, database outages, torn
journal records. Each kill test compares what the killed process committed (logged from inside it
right after each commit) with what the storage holds, and a deliberately broken recorder must
make it fail."""
import dataclasses
import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from ador.cli import main
from ador.errors import AdorError
from ador.explore import recorder as recorder_mod
from ador.explore import storage as storage_mod
from ador.explore.config import load_study
from ador.explore.storage import open_storage
from tests.conftest import REPO, ador_env, record

UID_KEY = "ador_uid"            # the random id each stored trial carries

HELPER = REPO / "tests" / "helpers" / "ador_logged.py"
KILLS = 5                       # per storage and run
KILL_AFTER_S = (0.3, 3.5)       # start-up (imports, baselines, creation) takes about 1.3 s
# trials committed together by the smoke study: its NSGA-II generation
BATCH = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())["sampler"]["options"]["population_size"]


def _url(kind, workdir, pg_db=None, name="k"):
    if kind == "sqlite":
        return f"sqlite:///studies/{name}.db"
    if kind == "journal":
        return f"journal:studies/{name}.journal"     # relative: Optuna's symlink lock dangled here
    return pg_db.url


def _stored(url, name):
    """The stored trials of a study ([] if it does not exist yet)."""
    try:
        storage = open_storage(url)
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except (KeyError, AdorError):
        return []


def _check_exactly_once(trials, committed=(), allowed_unlogged=0, where="", attempted=None):
    uids = [t.system_attrs[UID_KEY] for t in trials if UID_KEY in t.system_attrs]
    assert len(uids) == len(set(uids)), f"a trial is stored twice {where}"
    lost = set(committed) - set(uids)
    assert not lost, f"{len(lost)} committed trials are not stored {where}"
    if attempted is not None:        # nothing is stored that no write was about to store
        assert set(uids) <= set(attempted), f"trials stored that no write attempted {where}"
    # a write committed just before the kill may not have been logged yet: at most one per kill
    assert len(set(uids) - set(committed)) <= allowed_unlogged, f"trials stored that nobody committed {where}"
    assert sorted(t.number for t in trials) == list(range(len(trials))), f"trial numbers not contiguous {where}"
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials), f"unfinished trials {where}"


def _wait_for_commit(log, before, proc, timeout_s=60.0):
    """Until the process has logged a commit beyond the first ``before`` (or exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().split()) > before:
            return
        time.sleep(0.02)


def kill_repeatedly(workdir, url, name, kills, mutant=None, after_commit=False):
    """Launch, SIGKILL at a random moment, check; ``kills`` times, and more (up to three times as
    many) while no trial is stored yet (a loaded machine starts slowly). ``after_commit``: each kill
    lands a random moment after the run's first commit, however slowly it started (so do the kills
    beyond ``kills`` while nothing is stored). Returns the
    seed, the kills and the committed and stored trial counts."""
    seed = random.SystemRandom().randrange(2 ** 32)
    rng = random.Random(seed)
    log = workdir / f"{name}.commits"
    env = ador_env(ADOR_TEST_COMMIT_LOG=str(log))
    if mutant:
        env["ADOR_TEST_MUTANT"] = mutant
    cmd = [sys.executable, str(HELPER), "study", "launch", "studies/smoke.yaml", "--name", name, "--storage", url,
           "--trials", "100000", "--quiet"]
    trials, committed, k = [], [], 0
    while k < kills or (not trials and k < 3 * kills):
        before = len(log.read_text().split()) if log.exists() else 0
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # past ``kills`` with nothing stored (the machine starts runs more slowly than the kill
        # window), the later kills wait for a commit first, so the check is not left vacuous
        if after_commit or (k >= kills and not trials):
            _wait_for_commit(log, before, proc)
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            time.sleep(rng.uniform(*KILL_AFTER_S))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert b"Traceback" not in err, err.decode()[-2000:]
        committed = log.read_text().split() if log.exists() else []
        intent = log.with_name(log.name + ".intent")
        attempted = intent.read_text().split() if intent.exists() else []
        trials = _stored(url, name)
        _check_exactly_once(trials, committed, allowed_unlogged=(k + 1) * BATCH, attempted=attempted,
                            where=f"(seed {seed}, after kill {k + 1}, {len(committed)} committed)")
        k += 1
    return seed, k, len(committed), len(trials)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_killed_at_random_moments_then_resumed_loses_nothing(workdir, kind, request):
    pg_db = request.getfixturevalue("pg_db") if kind == "postgresql" else None
    url = _url(kind, workdir, pg_db)
    seed, kills, committed, n = kill_repeatedly(workdir, url, "k", KILLS)
    assert n > 0, f"no kill landed after the first trial in {kills} kills (seed {seed})"
    assert main(["study", "resume", "k", "--storage", url, "--trials", "20", "--quiet"]) == 0
    trials = _stored(url, "k")
    assert len(trials) == n + 20
    _check_exactly_once(trials, allowed_unlogged=len(trials))
    record("kill", storage=kind, kills=kills, committed=committed, stored=n, resumed=20)


@pytest.mark.slow
def test_kill_test_catches_a_recorder_that_buffers_writes(workdir):
    """The mutation check: a recorder holding 50 trials before writing them must fail the kill test.
    Each kill lands after the run's first commit, so a loaded machine's slow start-up cannot make
    every kill miss the trials held in memory."""
    with pytest.raises(AssertionError, match="committed trials are not stored"):
        kill_repeatedly(workdir, _url("sqlite", workdir), "m", KILLS, mutant="buffer50", after_commit=True)
    record("mutant caught", storage="sqlite", mutant="recorder buffering 50 trials")


@pytest.mark.slow
def test_kill_test_catches_a_recorder_that_stores_a_trial_nobody_wrote(workdir):
    """The mutation check of the other direction: a trial stored that no write attempted."""
    with pytest.raises(AssertionError, match="no write attempted"):
        kill_repeatedly(workdir, _url("sqlite", workdir), "g", 1, mutant="phantom", after_commit=True)
    record("mutant caught", storage="sqlite", mutant="recorder storing a phantom trial")


# --- full disk ---------------------------------------------------------------------------------

def _fill(disk, leave_bytes):
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_full_disk_stops_cleanly_and_resume_completes(workdir, small_disk, kind, monkeypatch, capsys):
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    url = f"sqlite:///{small_disk}/full.db" if kind == "sqlite" else f"journal:{small_disk}/full.journal"
    _fill(small_disk, 1536 * 1024)
    code = main(["study", "launch", "studies/smoke.yaml", "--name", "full", "--storage", url, "--trials", "100000",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "completed trials are saved" in err, err
    stored = _stored(url, "full")
    assert stored, "the disk filled before the first trial: give the study more room"
    _check_exactly_once(stored, allowed_unlogged=len(stored))
    (small_disk / "filler").unlink()
    assert main(["study", "status", "full", "--storage", url]) == 0
    assert main(["study", "resume", "full", "--storage", url, "--trials", "20", "--quiet"]) == 0
    after = _stored(url, "full")
    assert len(after) == len(stored) + 20
    _check_exactly_once(after, allowed_unlogged=len(after))
    record("full disk", storage=kind, how="tmpfs filled but 1.5 MiB", stored=len(stored), resumed=20)


def test_journal_full_disk_injected(workdir, monkeypatch, capsys):
    """ENOSPC in the middle of a journal record (any user, any file system): the record is cut
    back, the run stops with one line, and resume completes with every trial readable."""
    from ador.explore import journal as journal_mod
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01))
    url = "journal:studies/j.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "j", "--storage", url, "--trials", "10",
                 "--quiet"]) == 0
    real = journal_mod._pwrite
    full = {"on": True}

    def pwrite(fd, data, offset):
        if full["on"]:
            real(fd, bytes(data[: len(data) // 2]), offset)      # half a record reaches the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)
    monkeypatch.setattr(journal_mod, "_pwrite", pwrite)
    capsys.readouterr()
    assert main(["study", "resume", "j", "--storage", url, "--trials", "10", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "completed trials are saved" in err and err.count("\n") == 1
    assert (workdir / "studies" / "j.journal").read_bytes().endswith(b"\n")     # the half record was cut back
    full["on"] = False
    assert main(["study", "resume", "j", "--storage", url, "--trials", "10", "--quiet"]) == 0
    trials = _stored(url, "j")
    assert len(trials) == 20
    _check_exactly_once(trials, allowed_unlogged=20)
    record("full disk", storage="journal", how="ENOSPC injected mid-record", stored=10, resumed=10)


def test_journal_torn_record_is_cut_on_open_with_a_warning(workdir, capsys):
    """A record torn by a kill or a full disk (as left by Optuna's own file backend): status and
    best read past it without changing the file; the next command that writes cuts it and says
    how many bytes went."""
    url = "journal:studies/t.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "t", "--storage", url, "--trials", "12",
                 "--quiet"]) == 0
    path = workdir / "studies" / "t.journal"
    torn = b'{"op_code":4,"worker_id":"x","study_id":0,"datetime_start":"2024-01-01T00:00:00.0000'
    with path.open("ab") as f:
        f.write(torn)
    capsys.readouterr()
    assert main(["study", "status", "t", "--storage", url]) == 0
    assert main(["study", "best", "t", "--storage", url]) == 0
    assert path.read_bytes().endswith(torn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["study", "resume", "t", "--storage", url, "--trials", "5", "--quiet"]) == 0
    assert any(f"partial record of {len(torn)} bytes" in str(w.message) for w in caught)
    assert path.read_bytes().endswith(b"\n")
    assert len(_stored(url, "t")) == 17
    record("torn record", storage="journal", cut_bytes=len(torn), stored=12)


def test_journal_record_spliced_onto_a_torn_one_is_salvaged(workdir):
    """What older versions left after a full disk: the next record appended onto the torn one.
    The whole record is read (with a warning), so no completed trial becomes unreadable."""
    url = "journal:studies/s.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "s", "--storage", url, "--trials", "6",
                 "--quiet"]) == 0
    from ador.explore import journal as journal_mod
    path = workdir / "studies" / "s.journal"
    lines = path.read_bytes().splitlines(keepends=True)
    # tear the last record and splice it with itself, as an append onto a torn tail would
    last = lines[-1]
    path.write_bytes(b"".join(lines[:-1]) + last[: len(last) // 3] + last)
    with pytest.warns(journal_mod.JournalRepairWarning, match="partial record"):
        trials = _stored(url, "s")
    assert len(trials) == 6


def test_stale_optuna_symlink_lock_does_not_hang(workdir):
    """A SIGKILL inside Optuna's symlink lock leaves ``X.journal.lock`` pointing at a relative path
    that does not resolve: Optuna's lock loop spins on it forever. ador locks with flock (released
    by the kernel when its holder dies) and removes such a dead link."""
    url = "journal:studies/l.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "l", "--storage", url, "--trials", "3",
                 "--quiet"]) == 0
    os.symlink("studies/l.journal", workdir / "studies" / "l.journal.lock")     # dangles: relative to studies/
    proc = subprocess.run([sys.executable, "-m", "ador.cli", "study", "resume", "l", "--storage", url, "--trials", "3",
                           "--quiet"], cwd=workdir, capture_output=True, text=True, timeout=60, env=ador_env())
    assert proc.returncode == 0, proc.stderr
    assert len(_stored(url, "l")) == 6


def test_journal_lock_of_a_killed_holder_is_released(workdir):
    """A process killed while it holds the journal lock: the next writer goes on at once."""
    url = "journal:studies/h.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "h", "--storage", url, "--trials", "3",
                 "--quiet"]) == 0
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
                               str(workdir / "studies" / "h.journal.flock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        holder.kill()
        holder.wait()
        start = time.monotonic()
        assert main(["study", "resume", "h", "--storage", url, "--trials", "3", "--quiet"]) == 0
        assert time.monotonic() - start < 30
    finally:
        holder.kill()
        holder.wait()


# --- database outages (PostgreSQL) ---------------------------------------------------------------

def _launch_in_thread(args):
    result = {}

    def run():
        result["code"] = main(args)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _wait_for_trials(url, name, n, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_stored(url, name)) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} trials after {timeout} s")


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_outage_shorter_than_the_retries_is_survived(workdir, pg_db, capsys):
    """Connections refused and open ones terminated for OUTAGE_S seconds mid-study, with the default
    back-off (0.2 to 8 s, 15.7 s in all): every trial is stored exactly once."""
    outage_s = 5.0
    n = 600
    thread, result = _launch_in_thread(["study", "launch", "studies/smoke.yaml", "--name", "o", "--storage",
                                        pg_db.url, "--trials", str(n), "--quiet"])
    _wait_for_trials(pg_db.url, "o", 20)
    pg_db.allow(False)
    time.sleep(outage_s)
    pg_db.allow(True)
    thread.join(timeout=120)
    assert not thread.is_alive() and result["code"] == 0, capsys.readouterr().err
    trials = _stored(pg_db.url, "o")
    assert len(trials) == n
    _check_exactly_once(trials, allowed_unlogged=n)
    record("outage survived", storage="postgresql", seconds=outage_s, trials=n)


@pytest.mark.postgres
def test_postgresql_sustained_outage_ends_in_one_line_and_resume_completes(workdir, pg_db, monkeypatch, capsys):
    """Beyond the retries: ador's own line (storage lost, trials saved, resume), naming the
    server's reason, never Optuna's "invalid data in the commit"."""
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.05, 0.1, 0.2))
    thread, result = _launch_in_thread(["study", "launch", "studies/smoke.yaml", "--name", "s", "--storage",
                                        pg_db.url, "--trials", "100000", "--quiet"])
    _wait_for_trials(pg_db.url, "s", 20)
    pg_db.allow(False)
    thread.join(timeout=120)
    assert not thread.is_alive()
    err = capsys.readouterr().err
    assert result["code"] == 2 and err.count("\n") == 1, err
    assert "completed trials are saved, resume" in err and "invalid data" not in err
    assert "not currently accepting connections" in err or "terminating connection" in err, err
    pg_db.allow(True)
    stored = _stored(pg_db.url, "s")
    assert main(["study", "resume", "s", "--storage", pg_db.url, "--trials", "20", "--quiet"]) == 0
    after = _stored(pg_db.url, "s")
    assert len(after) == len(stored) + 20
    _check_exactly_once(after, allowed_unlogged=len(after))
    record("sustained outage", storage="postgresql", stored=len(stored), resumed=20)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_postgresql_connections_dropped_mid_study(workdir, pg_db, run):
    """Backends of a running study terminated at random moments (every 0.05 to 0.6 s, including
    while it opens and while it reports): all N trials stored exactly once, numbered 0..N-1."""
    rng = random.Random(random.SystemRandom().randrange(2 ** 32))
    n = 3000          # about 5 s of trials (a generation per transaction): kills land in every phase
    proc = subprocess.Popen([sys.executable, "-m", "ador.cli", "study", "launch", "studies/smoke.yaml", "--name",
                             "d", "--storage", pg_db.url, "--trials", str(n), "--quiet"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ador_env())
    killed = 0
    while proc.poll() is None:
        time.sleep(rng.uniform(0.05, 0.6))
        killed += pg_db.terminate()
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert killed >= 3, "too few connections were dropped for the test to mean anything"
    trials = _stored(pg_db.url, "d")
    assert len(trials) == n
    _check_exactly_once(trials, allowed_unlogged=n)
    record("dropped connections", storage="postgresql", terminated=killed, trials=n)


# --- retries of every storage call ------------------------------------------------------------------

def test_every_storage_read_is_retried(workdir, monkeypatch, capsys):
    """Every third read fails once: the run, the end-of-run status and Pareto table, status and
    best all complete (they used to read once, unguarded), through Optuna's storage and through
    the reader that status, best and export open (ador/explore/read_storage.py)."""
    from ador.explore.read_storage import ReadOnlyStorage
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01))
    calls = {"n": 0, ReadOnlyStorage: 0}
    for cls in (optuna.storages.RDBStorage, ReadOnlyStorage):
        for method in ("get_all_trials", "get_study_user_attrs", "get_study_system_attrs", "get_trial",
                       "get_study_directions"):
            real = getattr(cls, method)

            def flaky(self, *args, _real=real, _cls=cls, **kwargs):
                calls["n"] += 1
                calls[_cls] = calls.get(_cls, 0) + 1
                if calls["n"] % 3 == 0:
                    raise sqlite3.OperationalError("database is locked")
                return _real(self, *args, **kwargs)
            monkeypatch.setattr(cls, method, flaky)
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "30", "--quiet"]) == 0
    assert main(["study", "status", "smoke"]) == 0
    assert main(["study", "best", "smoke", "--json"]) == 0
    assert main(["study", "export", "smoke", "3"]) == 0
    assert calls["n"] > 10 and calls[ReadOnlyStorage] > 6
    assert "Traceback" not in capsys.readouterr().err


def test_a_session_left_pending_is_reset_before_a_retry(workdir, monkeypatch):
    """A connection that dies mid-transaction leaves SQLAlchemy's session needing a rollback
    (PendingRollbackError on every later call); a retry must start from a fresh session."""
    from sqlalchemy.exc import PendingRollbackError
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    state = {"calls": 0, "pending": False}
    real_get = optuna.storages.RDBStorage.get_study_system_attrs
    real_remove = optuna.storages.RDBStorage.remove_session

    def get_study_system_attrs(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == 3:
            state["pending"] = True
        if state["pending"]:
            raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
        return real_get(self, *args, **kwargs)

    def remove_session(self):
        state["pending"] = False
        return real_remove(self)
    monkeypatch.setattr(optuna.storages.RDBStorage, "get_study_system_attrs", get_study_system_attrs)
    monkeypatch.setattr(optuna.storages.RDBStorage, "remove_session", remove_session)
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "20", "--quiet"]) == 0
    assert state["calls"] > 3


def test_a_commit_reported_failed_is_not_stored_twice(workdir, monkeypatch):
    """The connection drops after the server committed but before the client heard: the retry
    finds the trial by its id instead of writing it again."""
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01))
    real = recorder_mod.TrialRecorder._write_rdb
    calls = {"n": 0}

    def write_then_lose_the_answer(self, trials, skip_stored=False):
        ids = real(self, trials, skip_stored)
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise sqlite3.OperationalError("disk I/O error")
        return ids
    monkeypatch.setattr(recorder_mod.TrialRecorder, "_write_rdb", write_then_lose_the_answer)
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "200", "--quiet"]) == 0   # 10 generations
    assert calls["n"] >= 4
    trials = _stored("sqlite:///studies/smoke.db", "smoke")
    assert len(trials) == 200
    _check_exactly_once(trials, allowed_unlogged=200)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_retry_waits_for_a_commit_still_finishing_and_does_not_store_twice(workdir, kind, request):
    """A write's commit whose answer was lost may still be finishing on the server when the retry
    starts. The retry looks for the trials' ids under the study's lock: it waits for that commit,
    then finds them, and writes nothing (looking before the lock, it saw none and stored them
    twice). Here the first write is held just before its commit while the retry starts."""
    from sqlalchemy import event

    from ador.explore.recorder import TrialRecorder
    url = request.getfixturevalue("pg_db").url if kind == "postgresql" else f"sqlite:///{workdir}/late.db"
    storage = open_storage(url, create=True)
    study = optuna.create_study(storage=storage, study_name="late")
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    trials = [optuna.trial.create_trial(params={"x": i}, distributions=dist, value=float(i),
                                        system_attrs={UID_KEY: f"u{i}"}) for i in range(3)]
    engine = storage.rdb.engine
    inserted, release = threading.Event(), threading.Event()

    def hold_first_commit(conn):
        if threading.current_thread().name == "first":
            inserted.set()
            release.wait(10)
    event.listen(engine, "commit", hold_first_commit)
    out: dict[str, list[int]] = {}
    first = threading.Thread(target=lambda: out.__setitem__("first", TrialRecorder(storage, study._study_id)
                                                              .write_many(trials)), name="first")
    retry = threading.Thread(target=lambda: out.__setitem__("retry", TrialRecorder(storage, study._study_id)
                                                              .write_many(trials, skip_stored=True)), name="retry")
    first.start()
    assert inserted.wait(10)
    retry.start()
    time.sleep(0.5)                       # the retry is waiting for the study's lock
    assert retry.is_alive()
    release.set()
    first.join(20)
    retry.join(20)
    event.remove(engine, "commit", hold_first_commit)
    assert out["retry"] == out["first"]
    stored = _stored(url, "late")
    assert sorted(t.system_attrs[UID_KEY] for t in stored) == ["u0", "u1", "u2"]


def test_a_study_copied_within_its_database_keeps_its_uids_and_both_take_writes(workdir):
    """Optuna's copy_study copies each trial's attributes, ador's uid included, into another study
    of the same database: the uids are unique per study, so neither study refuses its writes."""
    from ador.explore.runner import open_study, run_trials
    study = load_study("studies/smoke.yaml")
    url = f"sqlite:///{workdir}/copy.db"
    durable, _ = open_study(study, url)
    run_trials(study, durable, 40, progress=False)
    optuna.copy_study(from_study_name=study.name, from_storage=open_storage(url),
                      to_storage=open_storage(url), to_study_name="copy")
    copy = dataclasses.replace(study, name="copy")
    run_trials(copy, optuna.load_study(study_name="copy", storage=open_storage(url)), 40, progress=False)
    run_trials(study, durable, 40, progress=False)
    for name in (study.name, "copy"):
        trials = _stored(url, name)
        assert len(trials) == 80
        _check_exactly_once(trials, allowed_unlogged=80)


def test_optuna_internals_ador_relies_on(workdir):
    """The private parts of Optuna 5 that ador uses (hence optuna<6 in setup.cfg): the trial cache
    keeps its RDB storage as ``_backend``, and the table models the one-transaction recorder
    inserts into, with the trial numbering Optuna itself reads."""
    from optuna.storages._rdb import models
    storage = open_storage("sqlite:///studies/c.db", create=True)
    assert isinstance(storage.rdb, optuna.storages.RDBStorage)
    for model in (models.TrialModel, models.TrialValueModel, models.TrialParamModel, models.TrialUserAttributeModel,
                  models.TrialSystemAttributeModel, models.StudyModel):
        assert hasattr(model, "__table__")
    study = optuna.create_study(storage=storage, study_name="c", directions=["minimize"])
    recorder = recorder_mod.TrialRecorder(storage, study._study_id)
    t = optuna.trial.create_trial(values=[1.0], params={"x": 2}, distributions={
        "x": optuna.distributions.IntDistribution(0, 4)}, system_attrs={UID_KEY: "u1"})
    trial_id = recorder.write(t)
    assert recorder.find("u1") == trial_id and recorder.find("u2") is None
    plain = optuna.load_study(study_name="c", storage="sqlite:///studies/c.db").get_trials()
    assert [(p.number, p.values, p.params, p.system_attrs[UID_KEY]) for p in plain] == [(0, [1.0], {"x": 2}, "u1")]
