"""ador's NSGA-II/III (ador/explore/flat_ga.py) against Optuna's: the same designs, flat cost."""
import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from ador.explore.flat_ga import FlatNSGAIIISampler, FlatNSGAIISampler, generation_key

DISTS = {"a": IntDistribution(0, 30), "b": FloatDistribution(0.0, 1.0), "c": CategoricalDistribution(["x", "y", "z"])}


def _run(sampler, n: int, study=None):
    study = study or optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    for _ in range(n):
        t = study.ask(DISTS)
        a, b = t.params["a"], t.params["b"]
        t.set_constraint("c0", a - 25)                 # some designs infeasible
        study.tell(t, [a + b, a * b + (t.params["c"] == "y")])
    return study


def _operators():
    """ador's NSGA-II operators (ador/explore/samplers.py): VSBX crossover, polynomial mutation."""
    return {"crossover": optuna.samplers.nsgaii.VSBXCrossover(),
            "mutation": optuna.samplers.nsgaii.PolynomialMutation(eta=20.0)}


@pytest.mark.parametrize("ours, theirs, operators", [(FlatNSGAIISampler, optuna.samplers.NSGAIISampler, False),
                                                     (FlatNSGAIISampler, optuna.samplers.NSGAIISampler, True),
                                                     (FlatNSGAIIISampler, optuna.samplers.NSGAIIISampler, False)])
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_same_designs_as_optunas_sampler(ours, theirs, operators):
    a = _run(ours(seed=3, population_size=10, **(_operators() if operators else {})), 250)
    b = _run(theirs(seed=3, population_size=10, **(_operators() if operators else {})), 250)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    key = theirs._GENERATION_KEY
    assert [t.system_attrs[key] for t in a.trials] == [t.system_attrs[key] for t in b.trials]
    assert generation_key(ours(seed=0)) == key                  # stored under Optuna's own key


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_repeated_child_is_bred_again_with_uniform_redraws_after_the_local_tries():
    """Polynomial mutation rarely moves a knob of few values, so a child that repeats a known design is
    bred LOCAL_TRIES times with it and then with uniform redraws (Optuna's); the sampler keeps its own."""
    from ador.explore.flat_ga import DUPLICATE_TRIES, LOCAL_TRIES
    sampler = FlatNSGAIISampler(seed=1, population_size=10, **_operators())
    study = _run(sampler, 20)                                       # generation 0 and 1 told
    strategy = sampler._child_generation_strategy
    own, seen, real = strategy._mutation, [], type(strategy).__call__
    strategy.__class__ = type("Recording", (type(strategy),), {
        "__call__": lambda self, *a: seen.append(self._mutation) or real(self, *a)})
    sampler.is_known = lambda key: True                             # every child a repeat
    study.ask(DISTS)
    assert len(seen) == DUPLICATE_TRIES and 0 < LOCAL_TRIES < DUPLICATE_TRIES
    assert seen[:LOCAL_TRIES] == [own] * LOCAL_TRIES and seen[LOCAL_TRIES:] == [None] * (DUPLICATE_TRIES - LOCAL_TRIES)
    assert strategy._mutation is own


def test_resume_of_many_generations_needs_no_recursion():
    """A study of 1,200 generations replayed into a fresh sampler: Optuna's rebuilds the parents
    recursively (RecursionError at this depth); ours walks forward."""
    old = _run(FlatNSGAIISampler(seed=1, population_size=2), 2400)
    fresh = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=FlatNSGAIISampler(seed=2, population_size=2))
    fresh.add_trials(old.trials)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        _run(None, 5, fresh)
    finally:
        sys.setrecursionlimit(limit)
    assert len(fresh.trials) == 2405


def test_each_trial_is_looked_at_once_and_each_generation_selected_once(monkeypatch):
    """The work per ask does not grow with the study: over 3,000 trials every trial enters the
    bookkeeping once (Optuna's sampler rescans all of them on every ask), and parents are chosen
    once per generation. (Time per trial as a study grows is measured in benchmarks/study_scale.py,
    not here: a timed test fails on a loaded machine.)"""
    sampler = FlatNSGAIISampler(seed=0, population_size=20)
    added, selected = [], []
    real_add, real_select = FlatNSGAIISampler._add, FlatNSGAIISampler.select_parent
    monkeypatch.setattr(FlatNSGAIISampler, "_add", lambda self, t: added.append(t.number) or real_add(self, t))
    monkeypatch.setattr(FlatNSGAIISampler, "select_parent",
                        lambda self, study, g: selected.append(g) or real_select(self, study, g))
    study = _run(sampler, 3000)
    sampler.get_population(study, 0)                       # takes in the last trial told
    complete = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(added) == complete                       # each completed trial once
    generations = max(t.system_attrs[FlatNSGAIISampler._GENERATION_KEY] for t in study.trials)
    assert selected == list(range(1, generations + 1))     # each generation's parents once, in order


def test_the_grid_samplers_last_tell_outside_optimize_does_not_raise():
    """ador asks and tells its trials; Optuna's GridSampler calls study.stop() when a trial completes
    the grid, which raises outside Study.optimize, so the grid's last batch was never stored."""
    import optuna
    from ador.explore.samplers import GridToTheEnd
    dist = optuna.distributions.IntDistribution(0, 1)
    for sampler, raises in ((optuna.samplers.GridSampler({"x": [0, 1]}, seed=0), True),
                            (GridToTheEnd({"x": [0, 1]}, seed=0), False)):
        study = optuna.create_study(sampler=sampler)
        trials = [study.ask({"x": dist}) for _ in range(2)]
        study.tell(trials[0], 1.0)
        if raises:
            with pytest.raises(RuntimeError):
                study.tell(trials[1], 2.0)
        else:
            study.tell(trials[1], 2.0)
            assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    from ador.explore.config import load_study
    from ador.explore.samplers import build_sampler
    from tests.conftest import REPO
    space = load_study(REPO / "studies" / "smoke.yaml").space
    assert isinstance(build_sampler("grid", {}, space, 0), GridToTheEnd)      # what a grid study runs


@pytest.mark.parametrize("first, second", [(40, 15), (12, 40)])
def test_one_sampler_for_two_studies_reads_each_afresh(first, second):
    """Optuna's sampler may be handed to a second study, or pickled and used again; ador's read the
    second study from where the first ended (IndexError, or two studies' trials mixed)."""
    import pickle
    designs = []
    for cls in (FlatNSGAIISampler, optuna.samplers.NSGAIISampler):
        sampler, runs = cls(seed=3, population_size=4), []
        for n in (first, second):
            runs.append([t.params for t in _run(sampler, n).trials])
        runs.append([t.params for t in _run(pickle.loads(pickle.dumps(sampler)), 12).trials])
        designs.append(runs)
    assert designs[0] == designs[1]


def test_parents_primed_on_an_unpickled_sampler_stay():
    """A sampler unpickled after it read a study starts its bookkeeping afresh; parents primed after
    the unpickling (a resume giving it the last parent population) are the study's and must stay
    through its first read, as they do on a sampler built afresh."""
    import pickle
    study = _run(FlatNSGAIISampler(seed=3, population_size=4), 30)
    primed = study.trials[:4][::-1]                               # not what a selection would choose
    used = FlatNSGAIISampler(seed=3, population_size=4)
    used.get_population(study, 1)                                 # it has read the study
    for sampler in (FlatNSGAIISampler(seed=3, population_size=4), pickle.loads(pickle.dumps(used))):
        sampler.prime(5, primed)
        sampler.get_population(study, 4)                          # its first read in this process
        assert [t.number for t in sampler.get_parent_population(study, 5)] == [0, 1, 2, 3]
