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
    (("minimize", "maximize"), 8, {"multivariate": True}, {}),          # ador's "tpe" below its caps
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


def _optunas_split_capped(monkeypatch, below_limit: int, above_window: int) -> optuna.samplers.TPESampler:
    """Optuna's TPESampler made to split as ador's capped sampler is specified to: at most
    ``below_limit`` below (Optuna's gamma, capped) and the newest ``above_window`` finished trials
    of the rest above (with the constant liar's running trials)."""
    from optuna.samplers._tpe import sampler as optuna_tpe
    real = optuna_tpe._split_trials

    def windowed(study, trials, n_below):
        below, above = real(study, trials, n_below)
        running = optuna.trial.TrialState.RUNNING
        finished = [t for t in above if t.state != running][-above_window:]
        return below, sorted(finished + [t for t in above if t.state == running], key=lambda t: t.number)
    monkeypatch.setattr(optuna_tpe, "_split_trials", windowed)
    import warnings
    with warnings.catch_warnings():          # Optuna deprecates `gamma` (its default is what we cap)
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(
            seed=3, multivariate=True, gamma=lambda n: min(optuna_tpe.default_gamma_multiobjective(n), below_limit))


@pytest.mark.parametrize("directions, batch, run", [
    (("minimize", "maximize"), 8, {}),
    (("minimize", "maximize", "minimize"), 4, {"straggle": True}),     # trials out of order: no pool
    (("minimize", "maximize"), 16, {"limit": 8}),                        # mostly infeasible
])
def test_bounded_estimators_propose_what_optunas_split_capped_would(monkeypatch, directions, batch, run):
    """ador's ``below_limit`` / ``above_window`` (the best few below, found from a pool of
    candidates rather than by ranking every trial; the newest others above) give the designs
    Optuna's own sampler gives when its split is capped the same way."""
    ours = _run(FlatTPESampler(seed=3, multivariate=True, below_limit=6, above_window=40), 220, directions, batch,
                **run)
    theirs = _run(_optunas_split_capped(monkeypatch, 6, 40), len(ours.trials), directions, batch, **run)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    uncapped = _run(FlatTPESampler(seed=3, multivariate=True), len(ours.trials), directions, batch, **run)
    assert [t.params for t in ours.trials] != [t.params for t in uncapped.trials]     # the caps do act


def test_bounded_estimators_hold_at_most_their_caps(monkeypatch):
    """However long the study, an ask's estimators hold at most ``below_limit`` and
    ``above_window`` kernels (one trial asked at a time: no running trials join), so its cost does
    not grow with the study."""
    sizes = []
    sampler = FlatTPESampler(seed=2, multivariate=True, below_limit=5, above_window=30)
    real = sampler._parzen_estimator_cls
    monkeypatch.setattr(sampler, "_parzen_estimator_cls",
                        lambda observed, *a, **k: sizes.append(len(next(iter(observed.values())))) or
                        real(observed, *a, **k))
    _run(sampler, 200, batch=1)
    assert max(sizes[0::2]) == 5 and max(sizes[1::2]) == 30      # (below, above) per ask


def test_search_space_is_optunas_intersection():
    """The relative search space kept as trials arrive is Optuna's IntersectionSearchSpace: a
    parameter whose range changed, or that a finished trial lacks, leaves it; failed trials do not
    count, and single-valued parameters are not sampled."""
    from optuna.trial import TrialState, create_trial
    full = {**DISTS, "e": IntDistribution(3, 3)}                     # single-valued: never sampled
    without = {k: {n: d for n, d in full.items() if n != k} for k in "bcd"}
    narrow = {**full, "a": IntDistribution(0, 20)}
    complete, fail = TrialState.COMPLETE, TrialState.FAIL
    told = [(full, complete), (without["c"], fail), (full, complete), (without["b"], complete),
            (without["d"], fail), (full, complete), (narrow, complete), (full, complete)]
    ours = FlatTPESampler(seed=1, multivariate=True)
    theirs = optuna.samplers.TPESampler(seed=1, multivariate=True)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=ours)
    params = {"a": 3, "b": 0.5, "c": "x", "d": 1.0, "e": 3}
    seen = []
    for i, (space, state) in enumerate(told):
        study.add_trial(create_trial(params={k: params[k] for k in space}, distributions=space, state=state,
                                     values=[i, -i] if state == complete else None))
        trial = study._storage.get_trial(study.ask()._trial_id)
        seen.append((ours.infer_relative_search_space(study, trial), theirs.infer_relative_search_space(study, trial)))
        study.tell(trial.number, state=fail)
    assert all(a == b for a, b in seen)
    assert [len(a) for a, _ in seen] == [4, 4, 4, 3, 3, 3, 2, 2]       # failed trials leave it as it is
    assert all("e" not in a for a, _ in seen)


def test_a_study_stored_before_the_caps_resumes_without_them(monkeypatch, tmp_path, workdir):
    """A stored study keeps the operators it ran with: one stored before ``below_limit`` /
    ``above_window`` existed (its options lack them) resumes with Optuna's split; a new one
    records ador's caps."""
    from ador.explore import runner, samplers
    from ador.explore.config import load_study
    from ador.explore.record import settings, write_setting
    study = load_study("studies/smoke.yaml")
    built = []
    real = runner.build_sampler
    monkeypatch.setattr(runner, "build_sampler",
                        lambda name, options, *a: built.append(options) or real(name, options, *a))
    durable, _ = runner.open_study(study, f"sqlite:///{tmp_path / 'new.db'}", sampler="tpe")
    assert settings(durable)["ador_sampler"]["options"]["below_limit"] == samplers.TPE_BELOW_LIMIT
    runner.run_trials(study, durable, 2, progress=False)
    old, _ = runner.open_study(study, f"sqlite:///{tmp_path / 'old.db'}", sampler="tpe")
    write_setting(old, "ador_sampler", {**settings(old)["ador_sampler"], "options": {"multivariate": True}})
    runner.run_trials(study, old, 2, progress=False)
    assert built[0]["below_limit"] == samplers.TPE_BELOW_LIMIT and built[0]["above_window"] == samplers.TPE_ABOVE_WINDOW
    assert built[1]["below_limit"] is None and built[1]["above_window"] is None


def test_caps_are_checked_before_a_study_is_stored(workdir):
    from ador.errors import ConfigError
    from ador.explore.config import SamplerSpec, load_study
    from ador.explore.samplers import check_sampler
    space = load_study("studies/smoke.yaml").space
    for bad in (0, -3, 2.5, True, "50"):
        with pytest.raises(ConfigError, match="sampler.options.below_limit"):
            check_sampler(SamplerSpec("tpe", {"below_limit": bad}), space)
    check_sampler(SamplerSpec("tpe", {"below_limit": None, "above_window": 100}), space)


def test_group_with_caps_is_refused(workdir):
    """``group=True`` takes Optuna's own split, which the caps do not reach: refused, not ignored."""
    from ador.errors import ConfigError
    from ador.explore.config import SamplerSpec, load_study
    from ador.explore.samplers import check_sampler
    space = load_study("studies/smoke.yaml").space
    with pytest.raises(ConfigError, match="sampler.options.group"):
        check_sampler(SamplerSpec("tpe", {"group": True}), space)
    with pytest.raises(ValueError, match="group=True"):
        FlatTPESampler(group=True, multivariate=True, above_window=10)
    check_sampler(SamplerSpec("tpe", {"group": True, "below_limit": None, "above_window": None}), space)


def test_another_sampler_than_the_stored_one_gets_its_own_defaults(monkeypatch, tmp_path, workdir):
    """``--sampler tpe`` on a study made with NSGA-II: TPE gets ador's TPE defaults (caps
    included), not the study file's NSGA-II options (a ``population_size`` TPE has no use for)."""
    from ador.explore import runner
    from ador.explore.config import load_study
    study = load_study("studies/smoke.yaml")
    built = []
    real = runner.build_sampler
    monkeypatch.setattr(runner, "build_sampler", lambda name, options, *a: built.append(real(name, options, *a))
                        or built[-1])
    durable, _ = runner.open_study(study, f"sqlite:///{tmp_path / 's.db'}")
    runner.run_trials(study, durable, 3, sampler="tpe", progress=False)
    assert isinstance(built[-1], FlatTPESampler) and built[-1]._below_limit == 50
