"""The README's single test command also lints and type-checks (configuration in pyproject.toml)."""
import subprocess
import sys

from tests.conftest import REPO


def _run(*argv):
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    r = _run("ruff", "check", "--no-cache", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean():
    r = _run("mypy")
    assert r.returncode == 0, r.stdout + r.stderr
