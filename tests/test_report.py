import dataclasses
import shutil

import pytest

from ador.cli import main
from ador.explore.config import load_study
from ador.explore.pareto import hypervolume, normaliser, pareto_mask
from ador.explore.runner import open_study, run_trials
from ador.hardware import PRESETS, System
from ador.perf import evaluate
from ador.report import data as D
from ador.report import plots as P
from ador.workload import get_model, get_precision
from tests.conftest import REPO


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(REPO / "search_spaces", root / "search_spaces")
    shutil.copytree(REPO / "studies", root / "studies", ignore=shutil.ignore_patterns("*.db*"))
    import os
    cwd = os.getcwd()
    os.chdir(root)
    try:
        study = load_study("studies/smoke.yaml")
        durable, url = open_study(study, "sqlite:///studies/smoke.db")
        run_trials(study, durable, 80, progress=False)
        three = dataclasses.replace(study, name="three", spec=dataclasses.replace(
            study.spec, objectives=study.spec.objectives + (dataclasses.replace(study.spec.objectives[0],
                                                                                metric="ttft_ms"),)))
        d3, _ = open_study(three, "sqlite:///studies/smoke.db")
        run_trials(three, d3, 40, progress=False)
        tpe = dataclasses.replace(study, name="smoke-tpe")
        dt, _ = open_study(tpe, "sqlite:///studies/smoke.db", sampler="tpe")
        run_trials(tpe, dt, 40, progress=False)
    finally:
        os.chdir(cwd)
    return root, study, durable, three, d3, dt


def test_front_data_is_the_non_dominated_feasible_set(stored):
    _, study, durable, *_ = stored
    front = D.pareto_front_data(durable, "tbt_p99_ms", "cost_usd")
    pts = [(p.x, p.y) for p in front.feasible]
    mask = pareto_mask(pts, ["minimize", "minimize"])
    assert sorted((p.x, p.y) for p in front.pareto) == sorted(p for p, m in zip(pts, mask) if m)
    for p in front.pareto:          # nothing feasible dominates a front point
        assert not any(q.x <= p.x and q.y <= p.y and (q.x < p.x or q.y < p.y) for q in front.feasible)
    assert set(front.baselines) == {"a100-sxm-80gb", "h100-sxm-80gb"}
    # any two metrics, not only the objectives
    other = D.pareto_front_data(durable, "ttft_ms", "output_tok_s_per_mm2")
    assert other.y_direction == "maximize" and other.pareto


def test_hypervolume_history_is_monotone_and_ends_at_the_studys_hv(stored):
    _, study, durable, _, _, dt = stored
    histories = D.hypervolume_history([("nsga2", durable), ("tpe", dt)])
    for h in histories:
        assert h.hypervolume == sorted(h.hypervolume)
        assert h.trials[-1] in (80, 40)
    # the last value equals the hypervolume of all feasible trials on the common scale
    feas = lambda d: [t.values for t in d.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["feasible"]]  # noqa: E731
    scale = normaliser(feas(durable) + feas(dt), study.directions)
    assert histories[0].hypervolume[-1] == pytest.approx(hypervolume(feas(durable), study.directions, scale=scale))


def test_projections_of_three_objectives(stored):
    *_, three, d3, _ = stored
    fronts = D.projections(d3)
    assert [(f.x_metric, f.y_metric) for f in fronts] == [("tbt_p99_ms", "cost_usd"), ("tbt_p99_ms", "ttft_ms"),
                                                           ("cost_usd", "ttft_ms")]


def test_breakdown_and_roofline_data():
    model, p = get_model("llama-3-8b"), get_precision("fp16")
    r = evaluate(System(device=PRESETS["a100-sxm-80gb"]), model, p, batch=8, input_len=512, output_len=32)
    bars = D.breakdown_data([("A100", r)])
    assert [b.stage for b in bars] == ["prefill", "decode"]
    assert sum(bars[0].parts_ms.values()) == pytest.approx(sum(t.time_s for t in r.prefill.breakdown) * 1e3)
    roof = D.roofline_data("A100", PRESETS["a100-sxm-80gb"], r)
    assert roof.peak_flops == 312e12 and roof.ops
    for o in roof.ops:    # nothing beats the roof
        assert o["flops_per_s"] <= min(roof.peak_flops, o["intensity"] * roof.bandwidth) * 1.0001


def test_recommended_designs(stored):
    _, study, durable, *_ = stored
    rec = D.recommended(durable)
    assert len(rec) == 3
    feasible = [t for t in durable.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["feasible"]]
    cheapest = min(t.user_attrs["metrics"]["cost_usd"] for t in feasible)
    assert rec["lowest cost"]["metrics"]["cost_usd"] == cheapest
    assert "a100-sxm-80gb" in rec["lowest cost"]["x_vs"]


def test_every_plot_writes_a_non_empty_image(stored, tmp_path):
    root, study, durable, three, d3, dt = stored
    model, p = get_model("llama-3-8b"), get_precision("fp16")
    r = evaluate(System(device=PRESETS["ador-example"]), model, p, batch=8, input_len=512, output_len=32)
    files = [
        P.plot_pareto(D.pareto_front_data(durable, "tbt_p99_ms", "cost_usd"), tmp_path / "p.png"),
        P.plot_projections(D.projections(d3), tmp_path / "proj.png"),
        P.plot_hypervolume(D.hypervolume_history([("nsga2", durable), ("tpe", dt)]), tmp_path / "hv.png"),
        P.plot_breakdown(D.breakdown_data([("ador", r)]), tmp_path / "b.png"),
        P.plot_roofline([D.roofline_data("ador", PRESETS["ador-example"], r)], tmp_path / "r.svg"),
        P.plot_importances(D.importances(durable), tmp_path / "i.png"),
    ]
    for f in files:
        assert f.stat().st_size > 5000, f


def test_study_plot_and_report_commands(stored, tmp_path, capsys, monkeypatch):
    root, *_ = stored
    monkeypatch.chdir(root)
    assert main(["study", "plot", "smoke", "--out", str(tmp_path / "plots")]) == 0
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"pareto.png", "pareto.svg", "hypervolume.png", "breakdown.png", "roofline.png"} <= names
    assert main(["study", "report", "smoke", "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    for needle in ("## Settings", "x vs A100", "x vs H100", "![pareto](pareto.png)", "## Recommended designs",
                   "```yaml", "kind: ador"):
        assert needle in text
