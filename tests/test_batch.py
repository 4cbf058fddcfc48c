"""Batch scoring equals scoring one design at a time, and studies run through it stay durable."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ador.errors import AdorError
from ador.explore.batch import BatchScorer, batch_size
from ador.explore.columns import design_arrays
from ador.explore.config import load_study
from ador.explore.runner import Scorer, open_study, run_trials
from ador.explore.space import build_space, load_space
from ador.ops import Labels
from ador.perf.population import chip_arrays
from tests.conftest import REPO

DEFAULT = load_space(REPO / "search_spaces" / "default.yaml")
LLAMA = load_study(REPO / "studies" / "llama3-70b-8dev.yaml")


def knob_values(space):
    return st.fixed_dictionaries({k: st.sampled_from(kn.choices if kn.type == "categorical" else kn.grid(k))
                                  for k, kn in space.knobs.items()})


def _leaves(ns, prefix=""):
    for key, value in vars(ns).items():
        if isinstance(value, (np.ndarray, Labels)):
            yield prefix + key, np.asarray(value)
        elif hasattr(value, "__dict__"):
            yield from _leaves(value, prefix + key + ".")


# a space whose rules reject some designs: a derived field can be invalid, a constraint can fail
PICKY = build_space({"base": "ador-example",
                     "knobs": {"systolic.count": {"type": "int", "low": 0, "high": 4},
                               "mactree.count": {"type": "int", "low": 0, "high": 64, "step": 32},
                               "freq_hz": {"type": "float", "low": 0.5e9, "high": 2e9, "step": 0.5e9}},
                     "derived": {"vector.lanes": "(systolic.count - 2) * (systolic.count - 2) * 64"},
                     "constraints": ["freq_hz * systolic.count <= 6e9"]})


@settings(max_examples=20, deadline=None)
@given(data=st.data(), which=st.sampled_from(["default", "picky"]))
def test_design_arrays_equal_the_designs_built_one_by_one(data, which):
    space = DEFAULT if which == "default" else PICKY
    rows = data.draw(st.lists(knob_values(space), min_size=1, max_size=12))
    got = design_arrays(space, {k: np.array([r[k] for r in rows]) for k in space.knobs})
    chips, valid = [], []
    for r in rows:
        try:
            changes, broken = space.resolve(r)
            chips.append(None if broken else space.apply(changes))
        except AdorError:
            chips.append(None)
        valid.append(chips[-1] is not None)
    assert got.valid.tolist() == valid
    built = [c for c in chips if c is not None]
    if built:
        want = dict(_leaves(chip_arrays(built)))
        for key, value in _leaves(got.arrays):
            assert np.array_equal(value, want[key]), key


@settings(max_examples=10, deadline=None)
@given(rows=st.lists(knob_values(LLAMA.space), min_size=1, max_size=10))
def test_batch_outcomes_equal_one_design_outcomes(rows):
    scorer = Scorer(LLAMA)
    batch = BatchScorer(scorer)
    designs = design_arrays(LLAMA.space, {k: np.array([r[k] for r in rows]) for k in LLAMA.space.knobs})
    if designs.arrays.n:
        feasible = batch.system_ok(designs.arrays) & batch.feasible(batch.metrics(designs.arrays))
        judged = [o.values is not None and o.user_attrs["feasible"]
                  for o, v in zip([scorer(r) for r in rows], designs.valid) if v]
        assert feasible.tolist() == judged
    for got, want in zip(batch(rows), [scorer(r) for r in rows], strict=True):
        assert got.user_attrs.keys() == want.user_attrs.keys()
        for key, value in want.user_attrs.items():
            if isinstance(value, float):
                assert got.user_attrs[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
            else:
                assert got.user_attrs[key] == value, key
        if want.values is None:
            assert got.values is None
        else:
            assert got.values == pytest.approx(want.values, rel=1e-9)
            assert got.constraints == pytest.approx(want.constraints, rel=1e-9, abs=1e-12)


def test_batch_is_used_when_every_metric_has_a_population_formula():
    assert batch_size(LLAMA, "nsga2", {"population_size": 100}) == 100
    assert batch_size(LLAMA, "tpe", {}) == 64
    assert batch_size(LLAMA, "gp", {}) == 0
    serving = load_study(REPO / "studies" / "llama3-70b-8dev-serving.yaml")
    assert batch_size(serving, "nsga2", {}) == 0


def test_a_batched_study_commits_every_trial_and_resumes(tmp_path, monkeypatch):
    calls = []
    real = BatchScorer.__call__
    monkeypatch.setattr(BatchScorer, "__call__", lambda self, rows: calls.append(len(rows)) or real(self, rows))
    study = dataclasses.replace(LLAMA, name="batched")
    url = f"sqlite:///{tmp_path / 'b.db'}"
    durable, _ = open_study(study, url, sampler="nsga2")
    first = run_trials(study, durable, 130, progress=False)
    first_calls = len(calls)
    durable, _ = open_study(study, url)
    run_trials(study, durable, 20, progress=False)
    # a generation (topped up where a trial failed), the rest of the first run, the resumed run
    # (designs met before are not scored again)
    assert 0 < calls[0] <= 100 and sum(calls[:first_calls]) <= 130 and 0 < sum(calls[first_calls:]) <= 20
    trials = durable.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(150))
    assert first.completed + first.failed == 130
    assert sum(1 for t in trials if t.user_attrs.get("feasible")) >= first.feasible


def test_a_generation_asked_in_batches_ends_with_one_population_of_complete_trials(tmp_path):
    """A failed trial leaves its generation a slot short; the next batch asks only what it lacks (as
    Optuna asking one at a time does), not a whole population bred again from the same parents."""
    import collections
    from optuna.trial import TrialState
    study = dataclasses.replace(LLAMA, name="generations")
    durable, _ = open_study(study, f"sqlite:///{tmp_path / 'g.db'}", sampler="nsga2")
    stats = run_trials(study, durable, 1500, progress=False)
    assert stats.failed > 0                                   # the llama3 space has designs that fail
    size = 100                                                # the study file's population_size
    key = "NSGAIISampler:generation"
    trials = durable.get_trials(deepcopy=False)
    complete = collections.Counter(t.system_attrs[key] for t in trials if t.state == TrialState.COMPLETE)
    last = max(complete)
    assert all(complete[g] == size for g in range(last)), complete
    assert last >= 1500 // (size + stats.failed)
