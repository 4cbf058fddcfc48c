import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.figures import count_example, record, write_example_counts  # noqa: F401  (for the test modules)

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("ADOR_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session", autouse=True)
def _write_example_counts():
    yield
    write_example_counts()


def ador_env(**extra: str) -> dict[str, str]:
    """Environment for an ``ador`` child process: this checkout's package, whatever is installed."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _pg_available() -> str | None:
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return None
    except Exception as err:     # any failure to connect means: no server here
        return f"no PostgreSQL at {PG_URL} ({type(err).__name__}); set ADOR_PG_URL"


def need_pg() -> None:
    reason = _pg_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A scratch copy of the study and search-space files, as the working directory."""
    shutil.copytree(REPO / "studies", tmp_path / "studies", ignore=shutil.ignore_patterns("*.db*"))
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class PgDatabase:
    """A PostgreSQL database of one test (other worktrees share the server): its URL, and an
    outage switch (new connections refused, open ones terminated)."""

    def __init__(self) -> None:
        import psycopg
        self.name = f"ador_t_{uuid.uuid4().hex[:12]}"
        self.admin_url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        self.url = f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"
        self.admin = psycopg.connect(self.admin_url, autocommit=True)
        self.admin.execute(f'CREATE DATABASE "{self.name}"')

    def terminate(self) -> int:
        rows = self.admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                  "AND pid <> pg_backend_pid()", (self.name,)).fetchall()
        return len(rows)

    def allow(self, allowed: bool) -> None:
        self.admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            self.terminate()

    def tables(self) -> set[str]:
        import psycopg
        with psycopg.connect(f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}") as conn:
            return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()


@pytest.fixture
def pg_db():
    need_pg()
    db = PgDatabase()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs (needs root; skipped, saying why, elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode}); "
                    "the injected-ENOSPC tests still run")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def spy_simulate(monkeypatch):
    """``spy_simulate(module)``: where ``module`` calls ``simulate``, record each call's requests and
    ``clients`` in the returned list (the simulation still runs)."""
    def install(module):
        calls = []
        real = module.simulate

        def spy(system, model, precision, reqs, **kw):
            calls.append((reqs, kw.get("clients")))
            return real(system, model, precision, reqs, **kw)
        monkeypatch.setattr(module, "simulate", spy)
        return calls
    return install
