"""What Optuna and optuna-dashboard see of an ador study: the same feasible front as ador, compact
trials, usable DataFrames."""
import gzip
import json
import threading
import urllib.request

import optuna
import pytest

from ador.cli import main
from ador.explore.pareto import pareto_mask
from ador.explore.record import is_feasible, settings
from ador.explore.runner import load_stored, pareto_rows
from ador.explore.storage import open_storage
from tests.conftest import record

TIGHT = "slo: {tbt_p99_ms: 16}\n"       # a smoke study where fast-but-slow designs are infeasible


def _design(t):
    return tuple(sorted(t.params.items()))


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """The smoke study with a p99 TBT SLO that many non-dominated designs miss."""
    from tests.conftest import REPO
    root = tmp_path_factory.mktemp("view")
    (root / "tight.yaml").write_text((REPO / "studies" / "smoke.yaml").read_text() + TIGHT)
    assert main(["study", "launch", str(root / "tight.yaml"), "--trials", "150", "--quiet"]) == 0
    return root, f"sqlite:///{root / 'tight.db'}"


def test_optuna_best_trials_are_adors_front(tight):
    root, url = tight
    study = optuna.load_study(study_name="tight", storage=url)        # plain Optuna, no ador
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    # the test means something: without constraints, infeasible designs would be on the front
    mask = pareto_mask([t.values for t in complete], ["minimize", "minimize"])
    assert any(not is_feasible(t) for t, m in zip(complete, mask) if m)
    best = study.best_trials
    assert best and all(all(v <= 0 for v in t.constraints.values()) for t in best)
    ador_study, durable, _ = load_stored("tight", url)
    front = {_design(t) for t in durable.get_trials() if t.number in {r["trial"] for r in pareto_rows(ador_study,
                                                                                                         durable)}}
    assert {_design(t) for t in best} == front
    # named constraints through Optuna's public API, and a compact record per trial
    assert set(best[0].constraints) >= {"fits_memory", "within_reticle", "tbt_p99_ms<=16"}
    assert "design" not in best[0].user_attrs and "metrics" not in best[0].user_attrs
    frame = study.trials_dataframe()
    assert len(frame) == len(trials)
    for column in ("values_tbt_p99_ms", "user_attrs_tbt_p99_ms", "user_attrs_feasible", "params_systolic.count"):
        assert column in frame.columns, column
    assert frame["user_attrs_tbt_p99_ms"].dtype.kind == "f"


def test_optuna_studies_rows_are_short(tight):
    """`optuna studies` prints each study's user attributes: only the compact baseline summaries."""
    import subprocess
    import sys
    from pathlib import Path
    root, url = tight
    out = subprocess.run([str(Path(sys.executable).with_name("optuna")), "studies", "--storage", url, "-f", "json"],
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out)[0]
    assert set(row["user_attrs"]) == {"baseline:a100-sxm-80gb", "baseline:h100-sxm-80gb"}
    assert len(json.dumps(row)) < 600, row
    assert "ador_config" in settings(optuna.load_study(study_name="tight", storage=url))


def _get(port, path, gzip_ok=True):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Accept-Encoding": "gzip"} if gzip_ok else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        wire = len(body)
        if r.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return wire, json.loads(body)


def _serving(storage):
    from ador.report.dashboard import server
    running = server(storage, "127.0.0.1", 0)
    threading.Thread(target=running.serve_forever, daemon=True).start()
    return running


def test_dashboard_best_trials_are_the_feasible_front(tight):
    root, url = tight
    running = _serving(open_storage(url))
    try:
        _, studies = _get(running.server_port, "/api/studies")
        sid = studies["study_summaries"][0]["study_id"]
        _, detail = _get(running.server_port, f"/api/studies/{sid}")
    finally:
        running.shutdown()
    by_number = {t.number: t for t in optuna.load_study(study_name="tight", storage=url).get_trials()}
    best = detail["best_trials"]
    assert best and not [t["number"] for t in best if not is_feasible(by_number[t["number"]])]
    ador_study, durable, _ = load_stored("tight", url)
    assert sorted(t["number"] for t in best) == sorted(r["trial"] for r in pareto_rows(ador_study, durable))
    # its plots read constraints from a list: every infeasible trial shows as infeasible there
    for t in detail["trials"]:
        assert any(c > 0 for c in t["constraints"]) == (not is_feasible(by_number[t["number"]])) or \
            t["state"] != "Complete"


@pytest.mark.slow
def test_dashboard_study_payload_for_4000_trials(tmp_path):
    """The dashboard's study endpoint for a 4,000-trial study of the full template (19 knobs) stays
    under 3 MB on the wire. The trials are 400 scored ones, each stored 10 times."""
    from tests.conftest import REPO
    (tmp_path / "big.yaml").write_text((REPO / "studies" / "llama3-8b-1dev.yaml").read_text())
    assert main(["study", "launch", str(tmp_path / "big.yaml"), "--trials", "400", "--quiet"]) == 0
    src = optuna.load_study(study_name="big", storage=f"sqlite:///{tmp_path / 'big.db'}")
    scored = src.get_trials()
    from ador.explore.recorder import TrialRecorder
    storage = open_storage(f"sqlite:///{tmp_path / 'big.db'}")
    sid = storage.get_study_id_from_name("big")
    recorder = TrialRecorder(storage, sid)
    import copy
    import uuid
    for _ in range(9):
        for t in scored:
            again = copy.copy(t)                 # another trial of the same design: its own write id
            again.system_attrs = {**t.system_attrs, "ador_uid": uuid.uuid4().hex}
            recorder.write(again)
    assert len(storage.get_all_trials(sid)) == 4000
    running = _serving(storage)
    try:
        wire, detail = _get(running.server_port, f"/api/studies/{sid}")
    finally:
        running.shutdown()
    raw = len(json.dumps(detail))
    record("dashboard payload", trials=4000, wire_bytes=wire, json_bytes=raw,
           per_trial_params_bytes=len(json.dumps(detail["trials"][0]["params"])),
           per_trial_user_attrs_bytes=len(json.dumps(detail["trials"][0]["user_attrs"])))
    assert len(detail["trials"]) == 4000
    assert wire < 3_000_000, f"{wire / 1e6:.1f} MB on the wire ({raw / 1e6:.1f} MB of JSON)"
    assert all(is_feasible(t) for t in src.get_trials() if t.number in {b["number"] for b in detail["best_trials"]})
