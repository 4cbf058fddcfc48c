import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]


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
