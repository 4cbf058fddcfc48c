"""Exact fronts: every design of a space scored by the population path, in bounded chunks."""
import dataclasses
import json

import numpy as np
import pytest

from ador.cli import main
from ador.errors import ConfigError
from ador.explore.config import load_study
from ador.explore.enumerate import ExactFront, enumerate_front, space_designs
from ador.explore.pareto import pareto_mask
from ador.explore.runner import Scorer
from tests.conftest import REPO

SMOKE = load_study(REPO / "studies" / "smoke.yaml")


def _scalar_front(study):
    scorer = Scorer(study)
    names = list(study.space.knobs)
    grids = [study.space.knobs[n].grid(n) for n in names]
    import itertools
    points = []
    for combo in itertools.product(*grids):
        out = scorer(dict(zip(names, combo)))
        if out.values is not None and out.user_attrs["feasible"]:
            points.append(out.values)
    return points, [p for p, m in zip(points, pareto_mask(points, study.directions)) if m]


def test_the_exact_front_is_the_front_of_every_design_scored_one_by_one():
    points, front = _scalar_front(SMOKE)
    got = enumerate_front(SMOKE)
    assert got.designs == space_designs(SMOKE) == 1728
    assert got.feasible == len(points)
    assert np.allclose(sorted(map(tuple, front)), sorted(got.points), rtol=1e-9)
    p = np.array(points)
    assert np.allclose(got.low, [p[:, 0].min(), p[:, 1].min()]) and np.allclose(got.high, [p[:, 0].max(),
                                                                                           p[:, 1].max()])
    # the stored knob values rebuild each front design
    scorer = Scorer(SMOKE)
    for values, params in zip(got.points, got.params):
        assert scorer(params).values == pytest.approx(list(values), rel=1e-9)
    assert got.fraction(got.points) == pytest.approx(1.0)
    assert got.fraction(points[:5]) < 1.0


def test_chunks_do_not_change_the_front():
    whole, chunked = enumerate_front(SMOKE), enumerate_front(SMOKE, chunk=97)
    assert chunked.points == whole.points and chunked.low == whole.low and chunked.feasible == whole.feasible


def test_a_space_above_the_limit_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="1,728 designs.*too many to enumerate \\(at most 1,000\\)") as err:
        enumerate_front(SMOKE, limit=1000)
    assert "\n" not in str(err.value)


def test_a_study_that_needs_the_serving_simulator_is_refused():
    served = load_study(REPO / "studies" / "llama3-70b-8dev-serving.yaml")
    with pytest.raises(ConfigError, match="cannot be enumerated"):
        enumerate_front(served)


def test_enumerate_writes_the_front_beside_the_study_and_report_compares_with_it(workdir, capsys):
    assert main(["study", "enumerate", "studies/smoke.yaml", "--quiet"]) == 0
    path = workdir / "studies" / "smoke.front.json"
    front = ExactFront.load(path)
    n = len(front.points)       # the size depends on the model's figures; the count must agree everywhere
    assert front.designs == 1728 and 10 <= n < 1728
    out = capsys.readouterr().out
    assert f"exact front of {n} distinct designs written to" in out
    assert "1,728 distinct designs (" in out and front.distinct_designs == 1728     # the smoke space has no inert knob
    assert json.loads(path.read_text())["objectives"] == ["tbt_p99_ms", "cost_usd"]
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "40", "--quiet"]) == 0
    assert main(["study", "report", "studies/smoke.yaml", "--out", "rep"]) == 0
    text = (workdir / "rep" / "report.md").read_text()
    assert f"exact front (`ador study enumerate`): {n} distinct designs of the space's 1,728 distinct designs (" in text
    # a front of another definition is not compared with
    path.write_text(json.dumps({**json.loads(path.read_text()), "config_hash": "other"}))
    assert main(["study", "report", "studies/smoke.yaml", "--out", "rep"]) == 0
    assert "exact front" not in (workdir / "rep" / "report.md").read_text()


def test_a_damaged_front_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "x.front.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not an exact front"):
        ExactFront.load(bad)


def test_invalid_designs_are_counted_and_never_on_the_front():
    space = dataclasses.replace(SMOKE.space.spec, constraints=("systolic.count <= 8",))
    study = dataclasses.replace(SMOKE, space=dataclasses.replace(SMOKE.space, spec=space))
    got = enumerate_front(study)
    assert got.valid == 1728 * 4 // 8
    assert all(p["systolic.count"] <= 8 for p in got.params)
