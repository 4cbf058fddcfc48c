"""Reliability: orphaned trials, database trouble, unwritable storage, absurd designs (kills, full disks
and outages per storage are in test_faults.py, hostile input in test_hostile.py)."""
import os
import stat

import optuna
import pytest
from optuna.trial import TrialState

from ador.cli import main
from ador.explore import recorder as recorder_mod
from ador.explore import storage as storage_mod
from ador.explore.config import load_study
from ador.explore.runner import Scorer
from tests.conftest import REPO

STORAGE = "sqlite:///studies/smoke.db"


def _count(storage=STORAGE, name="smoke"):
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def test_orphaned_running_trials_are_failed_on_resume(workdir):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet"]) == 0
    plain = optuna.load_study(study_name="smoke", storage=STORAGE)
    plain.ask()                                   # a client that "dies" holding a RUNNING trial
    assert any(t.state == TrialState.RUNNING for t in _count())
    assert main(["study", "resume", "smoke", "--trials", "3", "--quiet"]) == 0
    trials = _count()
    assert not any(t.state == TrialState.RUNNING for t in trials)
    dead = [t for t in trials if t.state == TrialState.FAIL]
    assert len(dead) == 1 and "worker died" in dead[0].user_attrs["infeasible_reasons"][0]
    assert len(trials) == 9


def test_lost_database_stops_cleanly_and_resume_completes(workdir, monkeypatch, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet"]) == 0
    capsys.readouterr()
    real = recorder_mod.TrialRecorder.write_many
    calls = {"n": 0, "written": 0}

    def flaky(self, trials, **kw):    # the first write (a generation, one transaction) works, then the disk fails
        calls["n"] += 1
        if calls["n"] > 1:
            import sqlite3
            raise sqlite3.OperationalError("disk I/O error")
        calls["written"] += len(trials)
        return real(self, trials, **kw)

    monkeypatch.setattr(recorder_mod.TrialRecorder, "write_many", flaky)
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01))
    assert main(["study", "resume", "smoke", "--trials", "60", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "failed after 2 retries" in err and "resume" in err and err.count("\n") == 1
    assert 0 < calls["written"] < 55
    assert len(_count()) == 5 + calls["written"]      # what was written before the trouble is kept
    monkeypatch.setattr(recorder_mod.TrialRecorder, "write_many", real)
    assert main(["study", "resume", "smoke", "--trials", str(55 - calls["written"]), "--quiet"]) == 0
    assert len(_count()) == 60


def test_transient_database_errors_are_retried(workdir, monkeypatch):
    real = recorder_mod.TrialRecorder.write_many
    calls = {"n": 0}

    def hiccup(self, trials, **kw):
        calls["n"] += 1
        if calls["n"] in (2, 3):
            import sqlite3
            raise sqlite3.OperationalError("database is locked")
        return real(self, trials, **kw)

    monkeypatch.setattr(recorder_mod.TrialRecorder, "write_many", hiccup)
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "60", "--quiet"]) == 0     # 3 generations
    assert calls["n"] > 3 and len(_count()) == 60


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_storage_is_a_clear_error(workdir, capsys):
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "1", "--quiet", "--storage",
                 f"sqlite:///{ro}/s.db"]) == 2
    assert "not writable" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a read-only /sys mount")
def test_read_only_mount_is_a_clear_error_even_for_root(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "1", "--quiet", "--storage",
                 "sqlite:////sys/ador-study.db"]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and err.count("\n") == 1


def test_unwritable_storage_path_is_a_clear_error(workdir, capsys):
    (workdir / "afile").write_text("x")
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "1", "--quiet", "--storage",
                 f"sqlite:///{workdir}/afile/s.db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ador: error: storage=") and err.count("\n") == 1


def test_postgresql_unreachable_at_start(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--quiet", "--storage",
                 "postgresql://postgres@127.0.0.1:9/none"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the database" in err and err.count("\n") == 1


# --- absurd but well-formed designs -------------------------------------------------------------

@pytest.mark.parametrize("values,needle", [
    ({"systolic.count": 1, "systolic.rows": 32, "systolic.cols": 32, "mactree.count": 0}, None),
    ({"sram.capacity_bytes": 2 ** 40}, "reticle"),
    ({"links.count": 0}, "links.count"),
    ({"hbm.stacks": 1, "hbm.generation": "hbm2e"}, "does not fit"),
])
def test_absurd_designs_are_infeasible_with_a_reason_not_nan(values, needle):
    spec = load_study(REPO / "studies" / "llama3-70b-8dev.yaml")
    space = spec.space
    base = {name: (knob.grid(name)[len(knob.grid(name)) // 2] if knob.type not in ("float", "log_float")
                   else knob.low) for name, knob in space.knobs.items()}
    base.update(values)
    scorer = Scorer(spec)
    import dataclasses
    spec_space = dataclasses.replace(space, spec=dataclasses.replace(space.spec, knobs={
        **space.spec.knobs, **({"sram.capacity_bytes": dataclasses.replace(space.spec.knobs["sram.capacity_bytes"],
                                                                            high=2 ** 40)}
                               if "sram.capacity_bytes" in values else {}),
        **({"links.count": dataclasses.replace(space.spec.knobs["links.count"], low=0)}
           if "links.count" in values else {})}))
    scorer.study = dataclasses.replace(spec, space=spec_space)
    outcome = scorer(base)
    if needle is None:        # one tiny array: slow but valid, finite
        assert outcome.values is not None and all(v == v and v < float("inf") for v in outcome.values)
        return
    reasons = " ".join(outcome.user_attrs["infeasible_reasons"])
    assert needle in reasons
    if outcome.values is not None:
        assert all(v == v for v in outcome.values)
