"""Studies work from any directory: files a study names are found beside it (then among ador's
own), storage sits beside the study file (or in --storage-dir / $ADOR_STUDIES), and reading
commands find it by name or by study file, creating nothing."""
import json
import os
import shutil

import pytest

from ador.cli import main
from ador.explore.config import load_study
from tests.conftest import REPO

SMOKE = (REPO / "studies" / "smoke.yaml").read_text()


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(("-wal", "-shm")))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A project folder with a study file, and a working directory that is neither it nor the checkout."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "mine.yaml").write_text(SMOKE)                    # names search_space: smoke.yaml
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("ADOR_STUDIES", raising=False)
    return project, cwd


def test_a_study_file_anywhere_finds_its_space_and_stores_beside_itself(elsewhere, capsys):
    project, cwd = elsewhere
    assert main(["study", "launch", str(project / "mine.yaml"), "--trials", "4", "--quiet"]) == 0
    assert (project / "mine.db").is_file() and _tree(cwd) == []
    capsys.readouterr()
    # reading by the study file finds the storage where launch put it, from any directory
    assert main(["study", "status", str(project / "mine.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 4
    # by name: ./NAME.db, ./studies/NAME.db, else an error saying where it looked (nothing created)
    code = main(["study", "status", "mine"])
    assert code == 2 and "looked in" in capsys.readouterr().err and _tree(cwd) == []
    os.chdir(project)
    assert main(["study", "best", "mine", "--json"]) == 0
    before = _tree(project)
    for argv in (["status", "mine"], ["best", "mine"], ["export", "mine", "1"], ["export", "mine", "--format", "json"]):
        assert main(["study", *argv]) == 0
    assert _tree(project) == before


def test_a_space_beside_the_file_comes_before_the_shipped_one(elsewhere):
    project, _ = elsewhere
    space = (REPO / "search_spaces" / "smoke.yaml").read_text().replace("high: 16, step: 2", "high: 14, step: 2")
    (project / "smoke.yaml").write_text(space)
    (project / "study.yaml").write_text(SMOKE)
    assert load_study(project / "study.yaml").space.knobs["systolic.count"].high == 14
    (project / "smoke.yaml").unlink()
    assert load_study(project / "study.yaml").space.knobs["systolic.count"].high == 16      # the shipped one
    (project / "study.yaml").write_text(SMOKE.replace("search_space: smoke.yaml", "search_space: nowhere.yaml"))
    with pytest.raises(Exception, match="search_space='nowhere.yaml': no such file"):
        load_study(project / "study.yaml")


def test_storage_dir_and_ador_studies(elsewhere, monkeypatch, capsys):
    project, cwd = elsewhere
    store = cwd / "store"
    store.mkdir()
    assert main(["study", "launch", str(project / "mine.yaml"), "--storage-dir", str(store), "--trials", "3",
                 "--quiet"]) == 0
    assert (store / "mine.db").is_file() and not (project / "mine.db").exists()
    assert main(["study", "status", "mine", "--storage-dir", str(store)]) == 0
    monkeypatch.setenv("ADOR_STUDIES", str(store))
    assert main(["study", "resume", "mine", "--trials", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["study", "status", "mine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 5
    # a folder that does not exist is not made
    assert main(["study", "launch", str(project / "mine.yaml"), "--storage-dir", str(cwd / "no" / "such"),
                 "--quiet"]) == 2
    assert not (cwd / "no").exists()


def test_relative_paths_in_a_study_file_are_beside_it(elsewhere):
    project, cwd = elsewhere
    (project / "prof.yaml").write_text("name: mine\nstep_overhead_s: 0.001\n")
    (project / "rel.yaml").write_text(SMOKE + "storage: sqlite:///data/rel.db\nruntime: prof.yaml\n")
    (project / "data").mkdir()
    study = load_study(project / "rel.yaml")
    assert study.spec.storage == f"sqlite:///{project / 'data' / 'rel.db'}"
    assert isinstance(study.spec.runtime, dict)                  # stored inline: the stored study needs no file
    assert study.runtime_for("gpu").step_overhead_s == 0.001
    assert main(["study", "launch", str(project / "rel.yaml"), "--trials", "2", "--quiet"]) == 0
    assert (project / "data" / "rel.db").is_file() and _tree(cwd) == []


def test_a_shipped_study_by_name(elsewhere, capsys):
    _, cwd = elsewhere
    assert main(["study", "launch", "smoke", "--trials", "3", "--quiet"]) == 0
    assert (cwd / "studies" / "smoke.db").is_file()              # the one folder launch makes
    assert main(["study", "status", "smoke"]) == 0
    capsys.readouterr()
    assert main(["study", "launch", "no-such-study", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ships with ador" in err and "llama3-70b-8dev" in err


@pytest.mark.slow
def test_a_wheel_ships_the_studies_and_search_spaces(tmp_path):
    """Installed from a wheel (not a checkout), ador still has its study files and search spaces."""
    import subprocess
    import sys
    import zipfile
    src = tmp_path / "src"
    shutil.copytree(REPO / "ador", src / "ador", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "studies", src / "studies", ignore=shutil.ignore_patterns("*.db*", "*.sh"))
    shutil.copytree(REPO / "search_spaces", src / "search_spaces")
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist()
    for expected in ("ador/studies/llama3-70b-8dev.yaml", "ador/studies/smoke.yaml",
                     "ador/search_spaces/default.yaml", "ador/search_spaces/smoke.yaml",
                     "ador/data/serving-p99.csv", "ador/data/traces/lambda-1xh100-mistral-7b-tp1-len2000.csv"):
        assert expected in names, expected
