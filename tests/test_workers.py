"""Many workers on one study: PostgreSQL (the server at ADOR_PG_URL) and SQLite."""
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from ador.explore.pareto import pareto_mask
from tests.conftest import PG_URL, _pg_available, ador_env, need_pg, record  # noqa: F401  (re-exported for other test modules)


@pytest.fixture
def pg_url(pg_db):
    """A database of this test's own on the server (dropped after it): the shared one keeps nothing."""
    return pg_db.url


def _ador(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ador.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def _check_consistent(name: str, storage: str, expected: int) -> None:
    study = optuna.load_study(study_name=name, storage=storage.replace("postgresql://", "postgresql+psycopg://"))
    trials = study.get_trials()
    assert len(trials) == expected
    assert sorted(t.number for t in trials) == list(range(expected)), "duplicate or missing trial numbers"
    assert not [t for t in trials if t.state == TrialState.RUNNING], "stuck RUNNING trials"
    feasible = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    directions = [d.name.lower() for d in study.directions]
    mask = pareto_mask([t.values for t in feasible], directions)
    recomputed = {t.number for t, m in zip(feasible, mask) if m}
    assert {t.number for t in study.best_trials} == recomputed


@pytest.mark.postgres
@pytest.mark.slow
def test_four_workers_on_postgresql(workdir, pg_url):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    r = _ador("study", "launch", "studies/smoke.yaml", "--name", name, "--storage", pg_url, "--trials", "4",
              "--quiet", cwd=workdir)
    assert r.returncode == 0, r.stderr
    n = 40
    procs = [subprocess.Popen([sys.executable, "-m", "ador.cli", "study", "worker", name, "--storage", pg_url,
                               "--trials", str(n), "--seed", str(100 + i), "--quiet"], cwd=workdir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    try:
        _check_consistent(name, pg_url, 4 + 4 * n)
    finally:
        optuna.delete_study(study_name=name, storage=pg_url.replace("postgresql://", "postgresql+psycopg://"))


@pytest.mark.slow
def test_four_worker_processes_on_sqlite(workdir):
    r = _ador("study", "launch", "studies/smoke.yaml", "--trials", "120", "--workers", "4", "--quiet", cwd=workdir)
    assert r.returncode == 0, r.stderr
    _check_consistent("smoke", "sqlite:///studies/smoke.db", 120)
    # and separate worker commands against the same file, each asked for N trials
    procs = [subprocess.Popen([sys.executable, "-m", "ador.cli", "study", "worker", "smoke", "--storage",
                               "sqlite:///studies/smoke.db", "--trials", "25", "--seed", str(i), "--quiet"],
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    _check_consistent("smoke", "sqlite:///studies/smoke.db", 220)


def _children(pid):
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"      # a zombie has stopped
    except OSError:
        return False


def _count_trials(db):
    import sqlite3
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds worker processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
def test_stopping_a_launch_stops_every_worker(workdir, sig):
    """SIGTERM, SIGINT or SIGKILL to `launch --workers 3`: no worker goes on adding trials."""
    db = workdir / "studies" / "smoke.db"
    proc = subprocess.Popen([sys.executable, "-m", "ador.cli", "study", "launch", "studies/smoke.yaml",
                             "--trials", "1000000", "--workers", "3", "--quiet"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ador_env())
    workers = []
    try:
        deadline = time.monotonic() + 90
        while _count_trials(db) < 100:
            assert time.monotonic() < deadline and proc.poll() is None, "the workers never got going"
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 3
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_running(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(p) for p in workers), f"workers still running after {sig.name}"
        before = _count_trials(db)
        time.sleep(1.5)
        assert _count_trials(db) == before, "trials are still being added"
        record("workers stopped", signal=sig.name, child_processes=len(workers))
    finally:
        proc.kill()
        proc.wait()
        for p in workers:            # this test's own workers, if the command under test let them live
            if _running(p):
                os.kill(p, signal.SIGKILL)
