"""Many workers on one study: PostgreSQL (the server at ADOR_PG_URL) and SQLite."""
import os
import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from ador.explore.pareto import pareto_mask

PG_URL = os.environ.get("ADOR_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return None
    except Exception as err:     # any failure to connect means: no server here
        return f"no PostgreSQL at {PG_URL} ({type(err).__name__}); set ADOR_PG_URL"


@pytest.fixture
def pg_url():
    reason = _pg_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    return PG_URL


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
