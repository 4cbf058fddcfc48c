"""Reliability: kill and resume, orphaned trials, database trouble, hostile input, absurd designs."""
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from optuna.trial import TrialState

from ador.cli import main
from ador.errors import AdorError
from ador.explore import storage as storage_mod
from ador.explore.config import load_study
from ador.explore.runner import Scorer
from ador.explore.space import build_space
from ador.hardware import PRESETS, device_from_mapping, device_to_mapping
from ador.workload.models import spec_from_hf_dict
from tests.conftest import REPO
from tests.test_workers import PG_URL, _pg_available

STORAGE = "sqlite:///studies/smoke.db"


def _count(storage=STORAGE, name="smoke"):
    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.slow
def test_killed_at_random_moments_then_resumed_loses_nothing(workdir):
    rng = random.Random(11)
    cmd = [sys.executable, "-m", "ador.cli", "study", "launch", "studies/smoke.yaml", "--trials", "100000", "--quiet"]
    seen = 0
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 4.0))       # includes start-up: some kills land early, some mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        try:
            trials = _count()
        except Exception:
            continue                              # killed before the study existed
        assert len(trials) >= seen, "a completed trial disappeared"
        assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
        assert sorted(t.number for t in trials) == list(range(len(trials)))
        seen = len(trials)
    assert kills == 4 and seen > 0
    assert main(["study", "resume", "smoke", "--trials", "20", "--quiet"]) == 0
    assert len(_count()) == seen + 20


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
    from ador.explore import runner
    real = runner.TrialRecorder.write
    calls = {"n": 0}

    def flaky(self, trial):
        calls["n"] += 1
        if calls["n"] > 3:
            import sqlite3
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, trial)

    monkeypatch.setattr(runner.TrialRecorder, "write", flaky)
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01))
    assert main(["study", "resume", "smoke", "--trials", "20", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "failed after 2 retries" in err and "resume" in err and err.count("\n") == 1
    assert len(_count()) == 8                     # 5 + the 3 written before the trouble
    monkeypatch.setattr(runner.TrialRecorder, "write", real)
    assert main(["study", "resume", "smoke", "--trials", "12", "--quiet"]) == 0
    assert len(_count()) == 20


def test_transient_database_errors_are_retried(workdir, monkeypatch):
    from ador.explore import runner
    real = runner.TrialRecorder.write
    calls = {"n": 0}

    def hiccup(self, trial):
        calls["n"] += 1
        if calls["n"] in (2, 3):
            import sqlite3
            raise sqlite3.OperationalError("database is locked")
        return real(self, trial)

    monkeypatch.setattr(runner.TrialRecorder, "write", hiccup)
    monkeypatch.setattr(storage_mod, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "10", "--quiet"]) == 0
    assert len(_count()) == 10


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


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_connections_dropped_mid_study(workdir):
    reason = _pg_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    import psycopg
    tag = f"ador{uuid.uuid4().hex[:8]}"
    url = f"{PG_URL}?application_name={tag}"
    name = f"drop-{tag}"
    proc = subprocess.Popen([sys.executable, "-m", "ador.cli", "study", "launch", "studies/smoke.yaml", "--name", name,
                             "--storage", url, "--trials", "400", "--quiet"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for _ in range(3):
            time.sleep(1.0)
            rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = %s", (tag,)).fetchall()
            killed += len(rows)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert killed >= 1
    study = optuna.load_study(study_name=name, storage=PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    trials = study.get_trials()
    assert len(trials) == 400 and sorted(t.number for t in trials) == list(range(400))
    optuna.delete_study(study_name=name, storage=PG_URL.replace("postgresql://", "postgresql+psycopg://"))


def test_postgresql_unreachable_at_start(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--quiet", "--storage",
                 "postgresql://postgres@127.0.0.1:9/none"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the database" in err and err.count("\n") == 1


# --- hostile input ----------------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _mutations(document):
    """Strategy: the document with one leaf (at any depth) replaced by an arbitrary value, or removed."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
    walk(document, ())

    @st.composite
    def mutate(draw):
        doc = json.loads(json.dumps(document))
        path = draw(st.sampled_from(paths))
        node = doc
        for key in path[:-1]:
            node = node[key]
        if draw(st.booleans()):
            node[path[-1]] = draw(JSONISH)
        else:
            del node[path[-1]]
        return doc
    return mutate()


def _one_line_or_valid(fn, data):
    try:
        fn(data)
    except AdorError as err:
        assert "\n" not in str(err) and str(err)


HW = device_to_mapping(PRESETS["ador-example"])
GPU = device_to_mapping(PRESETS["h100-sxm-80gb"])
SPACE = yaml.safe_load((REPO / "search_spaces" / "default.yaml").read_text())
STUDY = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
HF = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
      "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192}

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.one_of(JSONISH, _mutations(HW), _mutations(GPU)))
def test_fuzz_hardware_loader(data):
    _one_line_or_valid(device_from_mapping, data)


@FUZZ
@given(data=st.one_of(JSONISH, _mutations(SPACE)))
def test_fuzz_search_space_loader(data):
    _one_line_or_valid(build_space, data)


@FUZZ
@given(data=st.one_of(JSONISH, _mutations(STUDY)))
def test_fuzz_study_loader(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "search_spaces").mkdir()
    shutil.copy(REPO / "search_spaces" / "smoke.yaml", d / "search_spaces" / "smoke.yaml")
    (d / "studies").mkdir()
    (d / "studies" / "f.yaml").write_text(yaml.safe_dump(data))
    _one_line_or_valid(lambda _: load_study(d / "studies" / "f.yaml"), data)


@FUZZ
@given(data=st.one_of(st.dictionaries(st.text(max_size=10), JSONISH, max_size=6), _mutations(HF)))
def test_fuzz_hf_config_loader(data):
    _one_line_or_valid(lambda d: spec_from_hf_dict(d, "fuzz"), data)


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "x.yaml"
    path.write_text(text)
    from ador.hardware import load_device
    _one_line_or_valid(load_device, path)


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
