import dataclasses
import json
import subprocess
import sys

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from ador.explore.record import baselines_of, metrics_of
from ador.cli import main
from ador.errors import ConfigError
from ador.explore.config import load_study
from ador.explore.runner import load_stored, open_study, pareto_rows, run_trials, status
from ador.explore.samplers import SAMPLERS
from ador.explore.space import build_space, load_space
from tests.conftest import REPO


def _smoke(name="t", **changes):
    study = load_study("studies/smoke.yaml")
    spec = dataclasses.replace(study.spec, **changes) if changes else study.spec
    return dataclasses.replace(study, name=name, spec=spec)


def test_launch_interrupt_resume_counts(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "30", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Pareto-optimal" in out and "x vs" in out and "baseline a100-sxm-80gb" in out
    assert (workdir / "studies" / "smoke.db").exists()
    assert main(["study", "resume", "smoke", "--trials", "25", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["study", "status", "smoke", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["n_complete"] + st["n_failed"] == 55 and st["n_running"] == 0
    for key in ("n_complete", "n_failed", "n_running", "n_feasible", "n_pareto"):
        assert key in st
    # the stored trials are plain Optuna trials with unique numbers
    stored = optuna.load_study(study_name="smoke", storage="sqlite:///studies/smoke.db").get_trials()
    assert sorted(t.number for t in stored) == list(range(55))


def test_interrupted_process_loses_no_completed_trial(workdir):
    """Kill a launch mid-run with SIGKILL; every trial on disk is complete, and resume finishes."""
    cmd = [sys.executable, "-m", "ador.cli", "study", "launch", "studies/smoke.yaml", "--trials", "100000",
           "--quiet"]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    storage = "sqlite:///studies/smoke.db"
    import time
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if len(optuna.load_study(study_name="smoke", storage=storage).get_trials()) >= 40:
                break
        except Exception:
            continue
    proc.kill()
    proc.wait()
    trials = optuna.load_study(study_name="smoke", storage=storage).get_trials()
    assert len(trials) >= 40
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    before = len(trials)
    assert main(["study", "resume", "smoke", "--trials", "10", "--quiet"]) == 0
    assert len(optuna.load_study(study_name="smoke", storage=storage).get_trials()) == before + 10


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "gp"])
def test_every_sampler_runs_on_the_smoke_space(workdir, sampler):
    study = _smoke(name=f"s-{sampler}")
    durable, _ = open_study(study, f"sqlite:///studies/{sampler}.db", sampler=sampler)
    stats = run_trials(study, durable, 24, progress=False)
    assert stats.completed + stats.failed == 24
    st = status(durable)
    assert st["n_complete"] + st["n_failed"] == 24 and st["n_pareto"] >= 1
    assert st["sampler"]["name"] == sampler


def test_gp_sampler_runs_or_says_what_it_needs(workdir):
    study = _smoke(name="s-gp")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="PyTorch"):       # before the study is created
            open_study(study, "sqlite:///studies/gp.db", sampler="gp")
        assert not (workdir / "studies" / "gp.db").exists()
        return
    durable, _ = open_study(study, "sqlite:///studies/gp.db", sampler="gp")
    assert run_trials(study, durable, 12, progress=False).completed == 12


def test_pymoo_results_visible_through_optuna(workdir):
    study = _smoke(name="pm")
    durable, _ = open_study(study, "sqlite:///studies/pm.db", sampler="pymoo-nsga2")
    run_trials(study, durable, 45, progress=False)
    loaded = optuna.load_study(study_name="pm", storage="sqlite:///studies/pm.db")
    trials = loaded.get_trials()
    assert len(trials) == 45
    assert all(t.user_attrs.get("engine") == "pymoo-nsga2" for t in trials)
    assert set(trials[0].params) == {"systolic.count", "mactree.count", "hbm.stacks", "sram.capacity_bytes:log2",
                                     "node_nm"}
    assert loaded.best_trials
    # each generation was scored in one vectorised call: every stored trial as one design scores
    from ador.explore.params import knob_values
    from ador.explore.scoring import Scorer
    one = Scorer(study)
    for t in trials:
        alone = one(knob_values(study.space, t.params))
        assert (t.values is None) == (alone.values is None)
        assert t.values is None or t.values == pytest.approx(alone.values, rel=1e-9)
        assert t.user_attrs["feasible"] == alone.user_attrs["feasible"]
    # resume continues with pymoo, seeded from the stored front
    run_trials(study, durable, 10, progress=False)
    assert len(loaded.get_trials()) == 55


def test_constraints_mark_infeasible_and_keep_them_off_the_front(workdir):
    # an SLO no design can meet: every trial is recorded, infeasible, with the reason
    from ador.explore.config import ConstraintSpec
    study = _smoke(name="c", constraints=(ConstraintSpec("tbt_p99_ms", max=0.001),))
    durable, _ = open_study(study, "sqlite:///studies/c.db")
    run_trials(study, durable, 20, progress=False)
    trials = durable.get_trials()
    assert all(t.user_attrs["feasible"] is False for t in trials)
    assert all(any("tbt_p99_ms" in r for r in t.user_attrs["infeasible_reasons"]) for t in trials)
    assert durable.best_trials == [] and status(durable)["n_feasible"] == 0


def test_designs_that_cannot_hold_the_model_are_infeasible_not_crashes(workdir):
    study = _smoke(name="big", model="llama-3-70b")       # 140 GB of weights on one device
    durable, _ = open_study(study, "sqlite:///studies/big.db")
    run_trials(study, durable, 10, progress=False)
    trials = durable.get_trials()
    assert len(trials) == 10
    assert all(not t.user_attrs["feasible"] and "does not fit" in t.user_attrs["infeasible_reasons"][0]
               for t in trials)


def test_changed_study_file_is_refused(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet"]) == 0
    text = (workdir / "studies" / "smoke.yaml").read_text().replace("batch: 16", "batch: 32")
    (workdir / "studies" / "smoke.yaml").write_text(text)
    capsys.readouterr()
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different definition" in err and "workload" in err and err.count("\n") == 1


def test_export_gives_a_design_evaluate_accepts(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["study", "export", "smoke", "3", "--yaml"]) == 0
    (workdir / "d.yaml").write_text(capsys.readouterr().out)
    assert main(["evaluate", "--hardware", "d.yaml", "--model", "llama-3-8b", "--batch", "16", "--input-len", "512",
                 "--output-len", "128", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    study, durable, _ = load_stored("smoke", None)
    stored = metrics_of([t for t in durable.get_trials() if t.number == 3][0])
    assert evaluated["output_tok_s_per_mm2"] == pytest.approx(stored["output_tok_s_per_mm2"])
    assert main(["study", "best", "smoke", "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["pareto"] and "tbt_p99_ms_x_vs_a100-sxm-80gb" in best["pareto"][0]
    assert main(["study", "export", "smoke", "999"]) == 2


def test_pareto_rows_match_a_front_recomputed_from_stored_trials(workdir):
    from ador.explore.pareto import pareto_mask
    study = _smoke(name="pf")
    durable, _ = open_study(study, "sqlite:///studies/pf.db")
    run_trials(study, durable, 60, progress=False)
    feasible = [t for t in durable.get_trials() if t.state == TrialState.COMPLETE and t.user_attrs["feasible"]]
    mask = pareto_mask([t.values for t in feasible], study.directions)
    expected = {tuple(t.values) for t, m in zip(feasible, mask) if m}
    rows = pareto_rows(study, durable)
    got = {tuple(r[m] for m in study.metric_names) for r in rows}
    assert got == expected
    # one row per distinct design: a design sampled twice is listed once
    designs = {r["trial"]: tuple(sorted(t.params.items())) for t in durable.get_trials() for r in rows
               if r["trial"] == t.number}
    assert len(set(designs.values())) == len(rows)


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.update(model="gpt-9"), "model='gpt-9'"),
    (lambda s: s.update(objectives=[{"metric": "speed"}]), "objectives[0].metric='speed'"),
    (lambda s: s.update(sampler={"name": "annealing"}), "sampler.name='annealing'"),
    (lambda s: s.update(sampler={"name": "nsga2", "options": {"population": 5}}), "sampler.options.population"),
    (lambda s: s.update(search_space="nope.yaml"), "search_space='nope.yaml'"),
    (lambda s: s.update(tp=3), "tp=3"),
    (lambda s: s.update(trials=0), "trials=0"),
    (lambda s: s.update(bogus=1), "bogus"),
    (lambda s: s.update(constraints=[{"metric": "tdp_w"}]), "exactly one of max or min"),
])
def test_bad_study_files_are_one_line_errors(workdir, capsys, edit, needle):
    data = yaml.safe_load((workdir / "studies" / "smoke.yaml").read_text())
    edit(data)
    (workdir / "studies" / "bad.yaml").write_text(yaml.safe_dump(data))
    assert main(["study", "launch", "studies/bad.yaml", "--trials", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("knobs,needle", [
    ({"systolic.nope": {"type": "int", "low": 1, "high": 2}}, "not a field"),
    ({"systolic.count": {"type": "int", "low": 5, "high": 2}}, "must be >= low"),
    ({"systolic.rows": {"type": "pow2", "low": 3, "high": 64}}, "power of two"),
    ({"systolic.count": {"type": "categorical"}}, "needs choices"),
    ({"systolic.count": {"type": "spline", "low": 1, "high": 2}}, "expected one of"),
    ({"freq_hz": {"type": "log_float", "low": 0, "high": 2e9}}, "low > 0"),
])
def test_bad_search_spaces_name_the_knob(knobs, needle):
    with pytest.raises(ConfigError) as err:
        build_space({"base": "ador-example", "knobs": knobs})
    assert needle in str(err.value) and "knobs." in str(err.value)


def test_derived_fields_and_structural_constraints():
    space = load_space(REPO / "search_spaces" / "default.yaml")
    values = {name: knob.grid(name)[0] if knob.type not in ("float", "log_float") else knob.low
              for name, knob in space.knobs.items()}
    values["systolic.count"], values["mactree.count"] = 0, 0
    assert space.violated(values) == ["systolic.count + mactree.count >= 1"]
    values["systolic.count"] = 4
    chip = space.design(values)
    assert chip.noc.bw_bytes_per_s == chip.sram.bw_bytes_per_s
    assert chip.vector.sfu_per_cycle == chip.vector.lanes // 8
    with pytest.raises(ConfigError, match="may be called|unknown names"):
        build_space({"base": "ador-example", "knobs": {"systolic.count": {"type": "int", "low": 1, "high": 4}},
                     "derived": {"noc.bw_bytes_per_s": "__import__('os')"}})
    with pytest.raises(ConfigError, match="not allowed|only"):
        build_space({"base": "ador-example", "knobs": {"systolic.count": {"type": "int", "low": 1, "high": 4}},
                     "derived": {"noc.bw_bytes_per_s": "[x for x in systolic.count]"}})


def test_storage_errors_are_one_line(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "1", "--quiet",
                 "--storage", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert "storage=" in err and "cannot open" in err and err.count("\n") == 1
    assert main(["study", "status", "nosuch"]) == 2
    assert "no such study" in capsys.readouterr().err


def test_journal_storage(workdir):
    study = _smoke(name="j")
    durable, url = open_study(study, "journal:studies/j.log")
    run_trials(study, durable, 15, progress=False)
    _, again, _ = load_stored("j", "journal:studies/j.log")
    assert len(again.get_trials()) == 15


def test_every_committed_study_file_loads():
    import os
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        for path in sorted((REPO / "studies").glob("*.yaml")):
            study = load_study(path)
            assert study.name == path.stem
    finally:
        os.chdir(cwd)


def test_serving_objectives_from_an_arrival_rate(workdir):
    study = load_study("studies/smoke.yaml")
    spec = dataclasses.replace(study.spec, workload=dataclasses.replace(
        study.spec.workload, arrival_rate=3.0, requests=60, policy="concurrent", lengths="long-tailed"),
        objectives=(dataclasses.replace(study.spec.objectives[0], metric="serving_goodput_rps", direction=None),
                    study.spec.objectives[1]))
    from ador.explore.config import resolve
    served = resolve(spec, study.space, "served")
    durable, _ = open_study(served, "sqlite:///studies/served.db")
    base = baselines_of(durable)["a100-sxm-80gb"]
    assert base["serving_policy"] == "chunked" and "serving_goodput_rps" in base["metrics"]
    run_trials(served, durable, 12, progress=False)
    done = [t for t in durable.get_trials() if t.state == TrialState.COMPLETE]
    assert done and all("serving_tbt_p99_ms" in metrics_of(t) for t in done)
    for t in done:                            # every serving metric carries its repeat interval
        m = metrics_of(t)
        assert m["serving_tbt_p99_ms_ci"] >= 0 and m["serving_goodput_rps_ci"] >= 0
        assert m["serving_replications"] >= 3 and m["serving_requests"] >= 3 * 60
    assert served.directions[0] == "maximize"
    # the same metric without an arrival rate is refused with the field named
    with pytest.raises(ConfigError, match="workload.arrival_rate"):
        resolve(dataclasses.replace(spec, workload=study.spec.workload), study.space, "x")
    with pytest.raises(ConfigError, match="workload.policy"):
        resolve(dataclasses.replace(spec, workload=dataclasses.replace(spec.workload, policy="fifo")), study.space, "x")


def test_a_resumed_pymoo_run_does_not_store_its_seed_population_again(workdir):
    """A resume seeds pymoo with the stored front; those designs are told to pymoo with their
    stored outcome, not scored and written as new trials (they were, every one of them)."""
    study = _smoke(name="pr")
    url = "sqlite:///studies/pr.db"
    durable, _ = open_study(study, url, sampler="pymoo-nsga2")
    run_trials(study, durable, 100, progress=False)
    durable, _ = open_study(study, url)
    run_trials(study, durable, 40, progress=False)
    trials = optuna.load_study(study_name="pr", storage=url).get_trials()
    assert len(trials) == 140
    before = {tuple(sorted(t.params.items())) for t in trials[:100]}
    repeats = sum(tuple(sorted(t.params.items())) in before for t in trials[100:])
    assert repeats <= 4, repeats              # a one-piece run of 140 repeats about 1 of its last 40


def test_pymoo_ends_cleanly_when_a_small_space_is_taken_whole(workdir, capsys):
    """pymoo's NSGA-II ends its own run (ask() gives None) once its operators find no design it has
    not seen: a six-design space is taken whole, the run stops with a note, and a resume adds nothing."""
    space = build_space({"base": "ador-example", "knobs": {"hbm.stacks": {"type": "int", "low": 4, "high": 6},
                                                          "node_nm": {"type": "categorical", "choices": [7, 5]}}})
    study = dataclasses.replace(_smoke(name="tiny"), space=space)
    durable, _ = open_study(study, "sqlite:///studies/tiny.db", sampler="pymoo-nsga2")
    stats = run_trials(study, durable, 40, progress=False)
    assert stats.completed == 6 and "stopped after 6 of 40 trials" in stats.stopped
    again = run_trials(study, durable, 40, progress=False)
    assert again.completed == 0 and again.stopped
    assert len(durable.get_trials()) == 6
