"""ador's TPE (ador/explore/flat_tpe.py) beyond one study in one thread: a sampler reused for another study
or pickled, threads of one study, and where it parts ways with Optuna's on purpose (xfail)."""
import pickle
import sys

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from ador.explore.flat_tpe import FlatTPESampler

DISTS = {"a": IntDistribution(0, 20), "b": FloatDistribution(0.0, 1.0)}


def _values(params: dict) -> list[float]:
    a, b = params["a"], params.get("b", 0.5)
    return [round(a * b, 1), round(a + b)]


def _fill(study: optuna.Study, n: int) -> None:
    for _ in range(n):
        t = study.ask(DISTS)
        study.tell(t, _values(t.params))


@pytest.mark.parametrize("first, second", [(40, 15), (12, 40)])
def test_one_sampler_for_two_studies(first, second):
    """Optuna's sampler may be handed to a second study (it reads each study afresh); ador's read the
    second study from where the first ended (a position past its end: IndexError; or the second
    study's first trials skipped and the first study's trials mixed in)."""
    designs = []
    for sampler in (FlatTPESampler(seed=3), optuna.samplers.TPESampler(seed=3)):
        runs = []
        for n in (first, second):
            study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
            _fill(study, n)
            runs.append([t.params for t in study.trials])
        designs.append(runs)
    assert designs[0] == designs[1]


def test_pickled_sampler_still_works():
    """A sampler pickled (Optuna's advice for a reproducible resume) and given a study again."""
    sampler = FlatTPESampler(seed=3)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    _fill(study, 15)
    again = pickle.loads(pickle.dumps(sampler))
    theirs = optuna.samplers.TPESampler(seed=3)
    _fill(optuna.create_study(directions=["minimize", "maximize"], sampler=theirs), 15)
    theirs = pickle.loads(pickle.dumps(theirs))
    studies = []
    for s in (again, theirs):
        fresh = optuna.create_study(directions=["minimize", "maximize"], sampler=s)
        _fill(fresh, 20)
        studies.append([t.params for t in fresh.trials])
    assert studies[0] == studies[1]


def test_threads_of_one_study():
    """``Study.optimize(n_jobs=...)`` runs the sampler from several threads: ador's incremental reading
    (TrialFeed's cursor, the arrays extended one after the other) raced and crashed (IndexError in
    the split: objective values and infeasibility of different lengths) or read a trial twice.
    Threads make the proposals nondeterministic, so this checks the bookkeeping, not Optuna's designs."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads often: the race shows within a few hundred trials
    try:
        for _ in range(2):
            sampler = FlatTPESampler(seed=3, n_startup_trials=5)
            study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
            study.optimize(lambda t: _values({"a": t.suggest_int("a", 0, 20), "b": t.suggest_float("b", 0, 1)}),
                           n_trials=250, n_jobs=8)
            assert all(t.state == TrialState.COMPLETE for t in study.trials)
            numbers = [int(n) for n in sampler._numbers.view]
            assert len(numbers) == len(set(numbers)) == len(sampler._done) == sampler._scores.n == sampler._lvals.n
    finally:
        sys.setswitchinterval(old)


@pytest.mark.xfail(strict=True, reason="Optuna's TPE reads a per-ask snapshot of the study (Study._get_trials "
                   "use_cache; cleared by ask and tell, not by add_trial) when constant_liar is off; ador's reads "
                   "the study as it is now. ador suggests every parameter inside ask(), so it never meets this.")
def test_trial_added_between_ask_and_a_later_suggest():
    """Define-by-run: ``ask()``, one parameter suggested, a finished trial added (``add_trial``), then
    another parameter suggested: Optuna's sampler does not see the added trial, ador's does."""
    designs = []
    for cls in (FlatTPESampler, optuna.samplers.TPESampler):
        sampler = cls(seed=3, constant_liar=False)
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
        for i in range(30):
            t = study.ask()
            t.suggest_int("a", 0, 20)
            if i % 3 == 0 and i > 2:
                old = study.trials[-2]
                study.add_trial(optuna.trial.create_trial(params=old.params, distributions=old.distributions,
                                                          values=[v + 0.5 for v in old.values]))
            t.suggest_float("b", 0, 1)
            study.tell(t, _values(t.params))
        designs.append([t.params for t in study.trials])
    assert designs[0] == designs[1]


def test_catch_up_reads_the_study_before_the_first_ask(monkeypatch):
    """A run's start reads the stored trials (``catch_up``, called by ador's History) so that its
    first ask reads only what arrived since; the designs are the same either way."""
    from optuna.samplers._tpe import sampler as optuna_tpe
    real = optuna_tpe._get_infeasible_trial_score
    reads: list = []
    designs = []
    for early in (False, True):
        sampler = FlatTPESampler(seed=4, multivariate=True, below_limit=5, above_window=20)
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
        for i in range(80):
            params = {"a": i % 21, "b": (i * 7 % 10) / 10}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=DISTS, values=_values(params)))
        if early:
            sampler.catch_up(study)
            monkeypatch.setattr(optuna_tpe, "_get_infeasible_trial_score", lambda t: reads.append(t) or real(t))
        _fill(study, 10)
        designs.append([t.params for t in study.trials])
    assert len(reads) == 9                           # the ten asked trials, less the last (never read)
    assert designs[0] == designs[1]
