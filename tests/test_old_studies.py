"""A study stored by ador before issue 18 still opens: every trial kept its whole design and a
metrics dict as user attributes, the settings were user attributes, the SLO was `tbt_ms`.

tests/data/study-before-issue-18.db.gz was made by main at e44e392 (the smoke study with
`slo: {tbt_ms: 16}`, named "old", 40 trials: `ador study launch studies/old.yaml --trials 40
--storage sqlite:///old.db`), then vacuumed and gzipped."""
import gzip
import json
import shutil

import pytest

from ador.cli import main
from ador.explore.record import design_of, is_feasible, metrics_of, settings
from ador.explore.runner import load_stored, pareto_rows
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "data" / "study-before-issue-18.db.gz"


@pytest.fixture
def old(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    with gzip.open(FIXTURE) as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    monkeypatch.chdir(tmp_path)
    return path


ADDED_SINCE = {"dies": 1, "die_to_die_bw_bytes_per_s": 2.0e12}      # AdorChip fields the old study predates


def test_an_old_study_is_read_as_it_was_stored(old):
    study, durable, _ = load_stored("old", f"sqlite:///{old}")
    assert "ador_config" in durable.user_attrs and "ador_config" in settings(durable)   # the old place
    assert study.spec.slo.tbt_p99_ms == 16 and study.spec.slo.tbt_mean_ms is None     # tbt_ms, static batch
    trials = durable.get_trials()
    assert all("design" in t.user_attrs and "metrics" in t.user_attrs for t in trials)
    feasible = [t for t in trials if is_feasible(t)]
    assert feasible and len(feasible) < len(trials)
    assert all(t.user_attrs["feasible"] == is_feasible(t) for t in trials)
    t = feasible[0]
    assert metrics_of(t) == t.user_attrs["metrics"]
    # the stored design is the one read back, and it is the one the knobs rebuild
    from ador.hardware import device_to_mapping
    # (fields added since the study was written read as their defaults)
    stored = {**ADDED_SINCE, **t.user_attrs["design"]}
    assert device_to_mapping(design_of(study, t)) == stored
    t.user_attrs.pop("design")
    rebuilt = device_to_mapping(design_of(study, t))
    assert {k: v for k, v in rebuilt.items() if k != "name"} == {k: v for k, v in stored.items() if k != "name"}
    assert pareto_rows(study, durable)


def test_every_reading_command_works_on_an_old_study(old, capsys, tmp_path):
    url = f"sqlite:///{old}"
    assert main(["study", "status", "old", "--storage", url, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["n_trials"] == 40 and 0 < st["n_feasible"] < 40 and st["n_pareto"] >= 1 and st["hypervolume"] > 0
    assert main(["study", "best", "old", "--storage", url]) == 0
    assert "Pareto-optimal feasible designs of old" in capsys.readouterr().out
    assert main(["study", "export", "old", "3", "--storage", url]) == 0
    assert "kind: ador" in capsys.readouterr().out
    assert main(["study", "export", "old", "--storage", url, "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 41
    assert main(["study", "plot", "old", "--storage", url, "--out", str(tmp_path / "plots")]) == 0
    assert main(["study", "report", "old", "--storage", url, "--out", str(tmp_path / "report")]) == 0
    assert "## Recommended designs" in (tmp_path / "report" / "report.md").read_text()
    assert main(["study", "status", "old"]) == 0                  # found as ./old.db
