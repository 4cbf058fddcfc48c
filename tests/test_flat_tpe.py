"""ador's TPE (ador/explore/flat_tpe.py) against Optuna's: the same designs, each trial read once."""
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from ador.explore.flat_tpe import FlatTPESampler

DISTS = {"a": IntDistribution(0, 30), "b": FloatDistribution(0.0, 1.0),
         "c": CategoricalDistribution(["x", "y", "z"]), "d": FloatDistribution(1e-3, 10.0, log=True)}


def _run(sampler, n: int, directions=("minimize", "maximize"), batch: int = 1, *, limit: int = 22,
         straggle: bool = False):
    """``n`` trials asked ``batch`` at a time (the constant liar sees the batch's running trials);
    designs with ``a`` over ``limit`` infeasible, some objective values tied. With ``straggle`` each
    batch's first trial is told after the next batch is asked (running trials older than finished
    ones, trials finishing out of order)."""
    study = optuna.create_study(directions=list(directions), sampler=sampler)
    late: list = []
    while len(study.trials) < n:
        asked = [study.ask(DISTS) for _ in range(min(batch, n - len(study.trials)))]
        if straggle:
            late, asked = asked[:1], late + asked[1:]
        if len(study.trials) >= n:
            asked += late
        for t in asked:
            a, b, d = t.params["a"], t.params["b"], t.params["d"]
            t.set_constraint("c0", a - limit)
            values = [round(a + b, 1), a * b + (t.params["c"] == "y") - d, round(d * (30 - a))][:len(directions)]
            study.tell(t, values)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    return study


@pytest.mark.parametrize("directions, batch, options, run", [
    (("minimize", "maximize"), 1, {}, {}),
    (("minimize", "maximize"), 16, {}, {}),                             # constant liar over a batch
    (("minimize", "maximize"), 16, {"constant_liar": False}, {}),
    (("minimize", "maximize"), 8, {}, {"straggle": True}),
    (("minimize", "maximize"), 8, {}, {"limit": -1}),                   # nothing feasible: the least infeasible below
    (("minimize", "maximize", "minimize"), 8, {}, {}),
    (("maximize",), 8, {}, {"straggle": True}),                         # single objective: multivariate
    (("minimize",), 4, {"multivariate": False, "n_startup_trials": 5}, {}),
    (("minimize", "maximize"), 32, {}, {"n": 300}),                     # a "below" of more than 25
    (("minimize", "maximize"), 8, {"multivariate": True}, {}),          # what ador's "tpe" builds
])
def test_same_designs_as_optunas_sampler(directions, batch, options, run):
    run = {"n": 160, **run}
    ours = _run(FlatTPESampler(seed=5, **options), run.pop("n"), directions, batch, **run)
    theirs = _run(optuna.samplers.TPESampler(seed=5, **options), len(ours.trials), directions, batch, **run)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]


def test_each_finished_trial_is_read_once(monkeypatch):
    """The work per ask does not rescan the study: a trial's infeasibility is read once, where
    Optuna's sampler reads every trial's for every parameter of every ask."""
    from optuna.samplers._tpe import sampler as optuna_tpe
    calls = []
    real = optuna_tpe._get_infeasible_trial_score
    monkeypatch.setattr(optuna_tpe, "_get_infeasible_trial_score", lambda t: calls.append(t.number) or real(t))
    _run(FlatTPESampler(seed=1), 120, batch=8)
    assert sorted(calls) == list(range(120 - 8))            # each told trial once (the last batch is never read)
    calls.clear()
    _run(optuna.samplers.TPESampler(seed=1), 40, batch=8)
    assert len(calls) > 4 * 40                              # the contrast: Optuna reads them over and over


@pytest.mark.parametrize("options, joint", [({}, True), ({"multivariate": False}, False)])
def test_ador_tpe_models_the_knobs_jointly_unless_told(options, joint, workdir):
    """A study naming ``tpe`` gets multivariate TPE (Optuna's default for several objectives is one
    estimator per knob); its own options still decide."""
    from ador.explore.config import load_study
    from ador.explore.samplers import build_sampler
    study = load_study("studies/smoke.yaml")
    sampler = build_sampler("tpe", options, study.space, 1)
    mem = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    assert sampler._is_multivariate(mem) is joint
