import dataclasses
import json
import shutil

import pytest

from ador.cli import main
from ador.explore.config import load_study
from ador.explore.pareto import pareto_mask
from ador.explore.record import baselines_of, metrics_of
from ador.explore.runner import open_study, pareto_rows, run_trials
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
    front = D.pareto_front_data(durable, "tbt_p99_ms", "cost_usd", study)
    pts = [(p.x, p.y) for p in front.feasible]
    mask = pareto_mask(pts, ["minimize", "minimize"])
    # the non-dominated feasible points, one per distinct design (a design sampled twice counts once)
    assert sorted((p.x, p.y) for p in front.pareto) == sorted({p for p, m in zip(pts, mask) if m})
    assert len(front.pareto) == len({p.trial for p in front.pareto})
    for p in front.pareto:          # nothing feasible dominates a front point
        assert not any(q.x <= p.x and q.y <= p.y and (q.x < p.x or q.y < p.y) for q in front.feasible)
    assert set(front.baselines) == {"a100-sxm-80gb", "h100-sxm-80gb"}
    # any two metrics, not only the objectives
    other = D.pareto_front_data(durable, "ttft_ms", "output_tok_s_per_mm2")
    assert other.y_direction == "maximize" and other.pareto


def test_hypervolume_is_one_number_everywhere(stored, capsys, monkeypatch):
    """The progress history, `status` and `best --json` give the same hypervolume for a study, by
    one definition: objectives as ratios to the reference GPU, reference point 0."""
    root, study, durable, _, _, dt = stored
    histories = D.hypervolume_history([("nsga2", durable), ("tpe", dt)])
    for h in histories:
        assert h.hypervolume == sorted(h.hypervolume)
        assert h.trials[-1] in (80, 40)
    feas = [t.values for t in durable.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["feasible"]]
    a100 = baselines_of(durable)["a100-sxm-80gb"]["metrics"]
    # by hand: the union of boxes [0, r] over the designs' ratio vectors (A100 / design: both minimised)
    r = [(a100["tbt_p99_ms"] / x, a100["cost_usd"] / y) for x, y in feas]
    front = sorted(p for p, m in zip(r, pareto_mask(r, ["maximize", "maximize"])) if m)
    by_hand, prev = 0.0, 0.0
    for x, y in reversed(front):            # sweep from the largest first ratio down
        by_hand += x * (y - prev) if y > prev else 0.0
        prev = max(prev, y)
    assert histories[0].hypervolume[-1] == pytest.approx(by_hand)
    monkeypatch.chdir(root)
    assert main(["study", "status", "smoke", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hypervolume"] == pytest.approx(by_hand)
    assert main(["study", "best", "smoke", "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["hypervolume"] == pytest.approx(by_hand)
    assert best["hypervolume_reference"]["tbt_p99_ms"] == {"gpu": "a100-sxm-80gb", "value": a100["tbt_p99_ms"]}


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


def test_recommended_designs_are_the_knee_and_the_corners(stored):
    _, study, durable, *_ = stored
    rec = D.recommended(study, durable)
    assert list(rec) == ["knee", "lowest tbt_p99_ms", "lowest cost_usd"]
    feasible = [t for t in durable.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["feasible"]]
    cheapest = min(metrics_of(t)["cost_usd"] for t in feasible)
    fastest = min(metrics_of(t)["tbt_p99_ms"] for t in feasible)
    assert rec["lowest cost_usd"]["metrics"]["cost_usd"] == cheapest
    assert rec["lowest tbt_p99_ms"]["metrics"]["tbt_p99_ms"] == fastest
    assert "a100-sxm-80gb" in rec["lowest cost_usd"]["x_vs"]
    # no pick is dominated by a feasible trial
    for pick in rec.values():
        m = pick["metrics"]
        assert not any(metrics_of(t)["tbt_p99_ms"] <= m["tbt_p99_ms"] and metrics_of(t)["cost_usd"] <= m["cost_usd"]
                       and (metrics_of(t)["tbt_p99_ms"], metrics_of(t)["cost_usd"]) != (m["tbt_p99_ms"], m["cost_usd"])
                       for t in feasible)
    # the knee is the front's point nearest the ideal point once each objective spans [0, 1]
    front = [(r["tbt_p99_ms"], r["cost_usd"]) for r in pareto_rows(study, durable)]
    lo = [min(p[i] for p in front) for i in (0, 1)]
    hi = [max(p[i] for p in front) for i in (0, 1)]
    dist = [sum(((p[i] - lo[i]) / (hi[i] - lo[i])) ** 2 for i in (0, 1)) for p in front]
    knee = rec["knee"]["metrics"]
    assert (knee["tbt_p99_ms"], knee["cost_usd"]) == front[dist.index(min(dist))]


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


# --- the knee, the corners, the hypervolume: properties -------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ador.explore import pareto as PA  # noqa: E402

POINTS = st.lists(st.tuples(*(st.floats(0.1, 100, allow_nan=False),) * 3), min_size=1, max_size=40)
DIRS = st.lists(st.sampled_from(["minimize", "maximize"]), min_size=3, max_size=3)


def _dominates(a, b, dirs):
    s = [1 if d == "minimize" else -1 for d in dirs]
    return all(x * k <= y * k for x, y, k in zip(a, b, s)) and any(x * k < y * k for x, y, k in zip(a, b, s))


@settings(max_examples=200, deadline=None)
@given(POINTS, DIRS)
def test_the_knee_is_the_front_point_nearest_the_ideal_and_never_dominated(points, dirs):
    front = [p for p, m in zip(points, PA.pareto_mask(points, dirs)) if m]
    k = PA.knee_index(front, dirs)
    assert not any(_dominates(q, front[k], dirs) for q in points)
    # by hand: each objective scaled over the front to [0, 1], 0 at its best
    def scaled(p, i):
        vals = [q[i] for q in front]
        lo, hi = min(vals), max(vals)
        x = (p[i] - lo) / (hi - lo) if hi > lo else 0.0
        return x if dirs[i] == "minimize" else (1 - x if hi > lo else 0.0)
    dist = [sum(scaled(p, i) ** 2 for i in range(3)) for p in front]
    assert dist[k] == pytest.approx(min(dist))
    for i in range(3):
        c = PA.corner_index(front, dirs, i)
        best = (min if dirs[i] == "minimize" else max)(p[i] for p in front)
        assert front[c][i] == best and not any(_dominates(q, front[c], dirs) for q in points)


@settings(max_examples=200, deadline=None)
@given(POINTS, DIRS, st.tuples(*(st.floats(0.5, 50),) * 3))
def test_the_hypervolume_grows_with_the_front_and_one_design_scores_its_ratios(points, dirs, ref):
    hv = PA.ratio_hypervolume(points, dirs, ref)
    assert hv >= PA.ratio_hypervolume(points[:-1], dirs, ref) - 1e-9 * max(hv, 1)     # adding never lowers it
    r = PA.ratios(points[:1], dirs, ref)[0]
    assert PA.ratio_hypervolume(points[:1], dirs, ref) == pytest.approx(r[0] * r[1] * r[2])
    front = [p for p, m in zip(points, PA.pareto_mask(points, dirs)) if m]
    assert PA.ratio_hypervolume(front, dirs, ref) == pytest.approx(hv)                 # dominated designs add nothing


def test_plots_keep_colours_per_operator_and_per_system(monkeypatch, tmp_path):
    """An operator has one colour in both panels of the breakdown; each system its own colour and
    marker; GPUs the same ones in every plot."""
    from ador.report import style
    figures = []
    monkeypatch.setattr(P, "_save", lambda plt, fig, path, *a, **k: figures.append(fig) or path)
    model, p = get_model("llama-3-8b"), get_precision("fp16")
    evals = [(label, evaluate(System(device=PRESETS[name]), model, p, batch=8, input_len=512, output_len=32))
             for label, name in (("ador", "ador-example"), ("A100", "a100-sxm-80gb"), ("H100", "h100-sxm-80gb"))]
    P.plot_breakdown(D.breakdown_data(evals), tmp_path / "b.png")
    colours = {}
    for ax in figures[0].axes:
        for container in ax.containers:
            label = container.get_label()
            face = tuple(container.patches[0].get_facecolor())
            colours.setdefault(label, set()).add(face)
    assert "attention" in colours and "qkv_proj" in colours
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)      # and no two share one
    styles = style.system_styles(["design", "a100-sxm-80gb", "h100-sxm-80gb", "8 x A100, chunked", "h200"])
    assert len(set(styles.values())) == 5
    assert styles["a100-sxm-80gb"] == style.GPU_STYLES["a100"] == style.system_styles(["A100"])["A100"]
