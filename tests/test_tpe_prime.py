"""A resumed TPE run reads the stored study as arrays (ador/explore/stored_columns.py) and primes
its sampler with them (``FlatTPESampler.prime``) instead of copying every trial into its in-memory
study: the arrays say what the trials say, on every storage, and the primed sampler proposes what
a sampler holding the trials proposes."""
import dataclasses
import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe import sampler as optuna_tpe
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import TrialState

from ador.explore import stored_columns
from ador.explore.flat_tpe import FlatTPESampler
from ador.explore.storage import open_storage
from ador.explore.stored import StoredTrials
from ador.explore.stored_columns import completed_columns

DIRECTIONS = ["minimize", "maximize"]
WIDE = {"x": IntDistribution(0, 19), "y": FloatDistribution(0.1, 2.0, log=True),
        "c": CategoricalDistribution((25e9, 5e10, 1e11))}
NARROW_X = IntDistribution(0, 9)                               # "x" under another distribution
INT_CHOICES = CategoricalDistribution((25_000_000_000, 50_000_000_000, 100_000_000_000))   # equal to WIDE["c"]


def _values(params: dict) -> list[float]:
    x, y = params["x"], params.get("y", 1.0)
    return [round(x * y, 2), round((x % 7) + math.log(y), 2)]


def _constraints(params: dict) -> dict[str, float]:
    return {"area": params["x"] - 12.0, "power": round(params.get("y", 1.0) - 1.5, 3)}


def _fill_everything(storage) -> int:
    """A study with every case the arrays must carry: trials of every state, constraints in
    Optuna's old list and its named form (and neither), infinite values, a parameter absent from
    some trials, one under two distributions, one under two texts of one distribution."""
    study = optuna.create_study(storage=storage, study_name="s", directions=DIRECTIONS)
    rng = np.random.default_rng(3)
    for i in range(40):
        dists = dict(WIDE)
        if i % 5 == 1:
            dists["x"] = NARROW_X
        if i % 3 == 0:
            dists["c"] = INT_CHOICES
        if i % 4 == 2:
            del dists["y"]
        t = study.ask(dists)
        state = [TrialState.COMPLETE] * 6 + [TrialState.FAIL, TrialState.RUNNING, TrialState.PRUNED]
        state = state[int(rng.integers(len(state)))] if i else TrialState.COMPLETE
        if i % 6 == 0:
            storage.set_trial_system_attr(t._trial_id, "constraints", [float(i % 3) - 1.0, 0.5 - i % 2])
        if i % 2 == 0:
            for key, value in _constraints(t.params).items():
                storage.set_trial_system_attr(t._trial_id, f"constraints:{key}", value)
        if i == 9:
            storage.set_trial_system_attr(t._trial_id, "constraints:area", float("inf"))
        if state == TrialState.COMPLETE:
            values = _values(t.params)
            if i == 12:
                values[1] = float("inf")
            study.tell(t, values)
        elif state != TrialState.RUNNING:
            study.tell(t, state=state)
    return study._study_id


def _check(storage, study_id: int) -> None:
    completed = completed_columns(StoredTrials(storage, study_id))
    trials = sorted(storage.get_all_trials(study_id, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    assert len(trials) > 10 and len(completed) == len(trials)
    assert completed.numbers.tolist() == [t.number for t in trials]
    assert completed.trial_ids.tolist() == [t._trial_id for t in trials]
    np.testing.assert_array_equal(completed.values, np.array([t.values for t in trials]))
    assert completed.infeasibility.tolist() == [optuna_tpe._get_infeasible_trial_score(t) for t in trials]
    assert completed.pruned == len(storage.get_all_trials(study_id, states=(TrialState.PRUNED,)))
    reordered = CategoricalDistribution((1e11, 25e9, 5e10))      # asked for under another distribution
    for name, d in [*WIDE.items(), ("x", NARROW_X), ("c", INT_CHOICES), ("c", reordered)]:
        want = [d.to_internal_repr(t.params[name]) if name in t.params else np.nan for t in trials]
        np.testing.assert_array_equal(completed.column(name, d), want, err_msg=name)
    study = optuna.load_study(study_name="s", storage=storage)
    assert completed.search_space() == IntersectionSearchSpace().calculate(study)
    assert len(completed.params["c"]) == 1 and len(completed.params["x"]) == 2     # equal texts merged
    # ... into the earliest trial's (trial 0 wrote the whole-number choices), as the sampler's space keeps it
    assert [type(c) for c in completed.search_space()["c"].choices] == [int] * 3


def test_a_trial_completed_during_the_read_is_left_for_a_later_pull(tmp_path, monkeypatch):
    """The read's queries see each commit as it lands: a trial another worker completes after the
    first query has values, attributes and parameters but no place in the arrays."""
    url = f"sqlite:///{tmp_path}/s.db"
    storage = open_storage(url, create=True)
    study_id = _fill_everything(storage)
    other = optuna.load_study(study_name="s", storage=open_storage(url))
    reader = StoredTrials(storage, study_id)
    assert reader.db is not None
    before = completed_columns(reader)
    session = type(reader.db).session
    queries = []

    def rows_then_a_trial(real_rows):
        def rows(sql, params=None):
            out = real_rows(sql, params)
            queries.append(sql)
            if len(queries) == 1:                  # after the trials' query: one more trial completes
                t = other.ask({**WIDE, "z": IntDistribution(0, 3)})
                for key, value in _constraints(t.params).items():
                    other._storage.set_trial_system_attr(t._trial_id, f"constraints:{key}", value)
                other.tell(t, _values(t.params))
            return out
        return rows

    def patched(self):
        import contextlib

        @contextlib.contextmanager
        def opened():
            with session(self) as s:
                s.rows = rows_then_a_trial(s.rows)
                yield s
        return opened()
    monkeypatch.setattr(type(reader.db), "session", patched)
    during = completed_columns(reader)
    assert len(queries) > 3 and len(during) == len(before)
    np.testing.assert_array_equal(during.values, before.values)
    assert during.infeasibility.tolist() == before.infeasibility.tolist()
    assert "z" not in during.params or np.isnan(during.params["z"][0].internal).all()
    assert len(completed_columns(StoredTrials(storage, study_id))) == len(before) + 1


@pytest.mark.parametrize("how", ["engine", "sqlite3", "rows", "journal"])
def test_arrays_say_what_the_trials_say(tmp_path, monkeypatch, how):
    """Through a SQLAlchemy engine (a run's storage), ``sqlite3`` (a reading command's), the
    row-by-row reads (a database without an aggregate) and a journal file (no tables)."""
    url = f"journal:{tmp_path}/s.log" if how == "journal" else f"sqlite:///{tmp_path}/s.db"
    study_id = _fill_everything(open_storage(url, create=True))
    if how == "rows":
        monkeypatch.setattr(stored_columns, "DIALECTS", {})
    _check(open_storage(url, reads_only=how == "sqlite3"), study_id)


@pytest.mark.postgres
def test_arrays_say_what_the_trials_say_on_postgresql(pg_db):
    storage = open_storage(pg_db.url, create=True)
    _check(storage, _fill_everything(storage))


def test_an_empty_study_gives_empty_arrays(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/e.db", create=True)
    study = optuna.create_study(storage=storage, study_name="s", directions=DIRECTIONS)
    completed = completed_columns(StoredTrials(storage, study._study_id))
    assert len(completed) == 0 and completed.search_space() is None and completed.values.shape[0] == 0


# --- the primed sampler -------------------------------------------------------------------------

def _stored_study(tmp_path, n: int):
    storage = open_storage(f"sqlite:///{tmp_path}/p.db", create=True)
    study = optuna.create_study(storage=storage, study_name="p", directions=DIRECTIONS)
    rng = np.random.default_rng(n)
    trials = []
    for i in range(n):
        dists = dict(WIDE) if i % 4 else {k: d for k, d in WIDE.items() if k != "y"}   # y: sampled independently
        params = {k: d.to_external_repr(float(rng.integers(len(d.choices))) if isinstance(d, CategoricalDistribution)
                                        else float(rng.integers(d.low, d.high + 1)) if isinstance(d, IntDistribution)
                                        else float(rng.uniform(d.low, d.high))) for k, d in dists.items()}
        failed = i % 17 == 5
        trials.append(optuna.trial.create_trial(
            params=params, distributions=dists, state=TrialState.FAIL if failed else TrialState.COMPLETE,
            values=None if failed else _values(params),
            system_attrs={f"constraints:{k}": v for k, v in _constraints(params).items()}))
    study.add_trials(trials)
    return storage, study


def _proposals(mem: optuna.Study, n: int, outstanding: int) -> list[dict]:
    """``n`` asks, ``outstanding`` of them running at a time (the constant liar's), each told."""
    out, running = [], []
    while len(out) < n:
        t = mem.ask(WIDE if len(out) % 3 else {k: d for k, d in WIDE.items() if k != "y"})
        out.append(t.params)
        running.append(t)
        if len(running) > outstanding:
            done = running.pop(0)
            for key, value in _constraints(done.params).items():
                mem._storage.set_trial_system_attr(done._trial_id, f"constraints:{key}", value)
            mem.tell(done, _values(done.params))
    return out


@pytest.mark.parametrize("n, below_limit, above_window, outstanding", [
    (5, 10, 60, 0),            # fewer than the startup trials: random, from the same stream
    (150, None, None, 0),      # Optuna's split over every trial
    (150, 10, 60, 0),          # capped: the below pool and the newest window, primed rows included
    (150, 10, 60, 2),          # the constant liar's running trials join "above"
])
def test_a_primed_sampler_proposes_what_one_holding_the_trials_does(tmp_path, n, below_limit, above_window,
                                                                   outstanding):
    storage, durable = _stored_study(tmp_path, n)

    def sampler():
        return FlatTPESampler(seed=11, multivariate=True, constant_liar=outstanding > 0, below_limit=below_limit,
                              above_window=above_window)
    holding = optuna.create_study(directions=DIRECTIONS, sampler=sampler())
    holding.add_trials(storage.get_all_trials(durable._study_id))
    primed = optuna.create_study(directions=DIRECTIONS, sampler=sampler())
    assert primed.sampler.prime(primed, completed_columns(StoredTrials(storage, durable._study_id)))
    assert primed.trials == []
    assert _proposals(primed, 40, outstanding) == _proposals(holding, 40, outstanding)


def test_a_primed_sampler_warns_of_independent_sampling_as_optunas_does(tmp_path, caplog):
    """A parameter outside the joint space (absent from some trials) is sampled on its own, with
    Optuna's warning, once a trial read has it: the primed trials count."""
    storage, durable = _stored_study(tmp_path, 40)
    warned = []
    optuna.logging.enable_propagation()
    try:
        for prime in (False, True):
            sampler = FlatTPESampler(seed=1, multivariate=True, warn_independent_sampling=True)
            mem = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
            if prime:
                mem.sampler.prime(mem, completed_columns(StoredTrials(storage, durable._study_id)))
            else:
                mem.add_trials(storage.get_all_trials(durable._study_id))
            caplog.clear()
            mem.ask(WIDE)
            warned.append({r.getMessage().replace(f"#{mem.trials[-1].number}", "#N") for r in caplog.records
                           if "sampled independently" in r.getMessage()})
    finally:
        optuna.logging.disable_propagation()
    assert len(warned[0]) == 1 and "`y`" in next(iter(warned[0])) and warned[1] == warned[0]


def test_prime_declines_where_the_sampler_reads_trials_and_refuses_a_started_study(tmp_path):
    storage, durable = _stored_study(tmp_path, 30)
    completed = completed_columns(StoredTrials(storage, durable._study_id))
    grouped = FlatTPESampler(seed=1, multivariate=True, group=True)
    assert grouped.prime(optuna.create_study(directions=DIRECTIONS, sampler=grouped), completed) is False
    pruned = dataclasses.replace(completed, pruned=1)
    plain = FlatTPESampler(seed=1)
    assert plain.prime(optuna.create_study(directions=DIRECTIONS, sampler=plain), pruned) is False
    started = optuna.create_study(directions=DIRECTIONS, sampler=FlatTPESampler(seed=1))
    started.enqueue_trial({"x": 1})
    with pytest.raises(ValueError, match="before any trial"):
        started.sampler.prime(started, completed)


def test_a_primed_sampler_given_another_study_forgets_the_stored_trials(tmp_path):
    """Optuna's samplers may be handed another study: the primed rows were the first one's."""
    storage, durable = _stored_study(tmp_path, 60)
    sampler = FlatTPESampler(seed=2, multivariate=True)
    first = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    sampler.prime(first, completed_columns(StoredTrials(storage, durable._study_id)))
    other = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    fresh = optuna.create_study(directions=DIRECTIONS, sampler=FlatTPESampler(seed=2, multivariate=True))
    assert _proposals(other, 15, 0) == _proposals(fresh, 15, 0)


# --- a resumed run ------------------------------------------------------------------------------

def _tpe_study(workdir, name):
    from tests.test_scale import _smoke
    from ador.explore.runner import run_trials
    study, durable, url = _smoke(workdir, name)
    run_trials(study, durable, 120, sampler="tpe", progress=False)
    return study, durable


def test_a_resumed_run_primes_its_sampler_and_runs_as_one_given_every_trial(workdir, monkeypatch):
    """``run_trials`` on a stored TPE study: the in-memory study holds only the run's trials, and
    the designs are those of the path that copies every stored trial into it."""
    from ador.explore import history as history_mod
    from ador.explore.runner import run_trials
    designs, held = [], []
    real_start = history_mod.History.start

    def start(self):
        n = real_start(self)
        held.append(len(self.mem.trials))
        return n
    monkeypatch.setattr(history_mod.History, "start", start)
    for prime in (True, False):
        if not prime:
            monkeypatch.setattr(FlatTPESampler, "prime", lambda self, study, completed: False)
        study, durable = _tpe_study(workdir, f"r{prime}")
        run_trials(study, durable, 30, sampler="tpe", seed=4, progress=False)
        designs.append([repr(t.params) for t in durable.get_trials()[120:]])     # (repr: 25e9 is not 25000000000)
    assert held[1] == 0 and held[3] == 120       # (held[0], held[2]: the first runs, on empty studies)
    assert len(designs[0]) == 30 and designs[0] == designs[1]


def test_trials_stored_while_the_run_starts_are_read_once_and_answer_repeats(workdir, monkeypatch):
    """Trials another worker stores after the run's watermark: one before the read of the arrays
    is in them, and a pull must not add it again; one after is pulled; both designs answer repeats."""
    from ador.explore import history as history_mod
    from ador.explore.history import History
    from ador.explore.samplers import build_sampler
    study, durable = _tpe_study(workdir, "race")
    real = history_mod.completed_columns

    from ador.explore.params import distributions
    dists = distributions(study.space)
    stored = []

    from ador.explore.design_id import params_key
    met = {params_key(t.params, dists, study.space) for t in durable.get_trials()}
    rng = np.random.default_rng(0)

    def store(design: int):
        while True:                 # a design not stored yet (else the repeat answers from the first)
            params = {k: d.choices[rng.integers(len(d.choices))] if isinstance(d, CategoricalDistribution)
                      else d.to_external_repr(d.low + d.step * rng.integers((d.high - d.low) // d.step + 1))
                      for k, d in dists.items()}
            if params_key(params, dists, study.space) not in met:
                break
        met.add(params_key(params, dists, study.space))
        durable.enqueue_trial(params)
        t = durable.ask(dists)
        durable.tell(t, [float(design), 2.0])
        stored.append(t.params)

    def read_late(reader):
        store(1)
        out = real(reader)
        store(2)
        return out
    monkeypatch.setattr(history_mod, "completed_columns", read_late)
    mem = optuna.create_study(directions=study.directions, sampler=build_sampler("tpe", {}, study.space, 1))
    history = History(durable, mem, space=study.space)
    history.start()
    assert mem.sampler._n_done() == 121
    assert history.pull() == 1 and mem.sampler._sync(mem) is None and mem.sampler._n_done() == 122
    for params, value in zip(stored, (1.0, 2.0)):
        answer = history.repeat_of(params, dists)
        assert answer is not None and answer[0] == [value, 2.0]


def test_a_run_on_optunas_path_does_not_read_the_arrays(workdir, monkeypatch):
    """A grouped TPE (Optuna's own path) cannot be primed: its run's start loads the trials and
    reads no arrays it would throw away."""
    from ador.explore import history as history_mod
    from ador.explore.history import History
    study, durable = _tpe_study(workdir, "grouped")
    reads = []
    real = history_mod.completed_columns
    monkeypatch.setattr(history_mod, "completed_columns", lambda reader: reads.append(1) or real(reader))
    for group, primed in ((True, False), (False, True)):
        sampler = FlatTPESampler(seed=1, multivariate=True, group=group)
        assert sampler.can_prime is primed
        mem = optuna.create_study(directions=study.directions, sampler=sampler)
        History(durable, mem, space=study.space).start()
        assert len(reads) == int(primed)
        assert len(mem.get_trials()) == (0 if primed else 120)     # primed: the sampler holds them, not the study
        reads.clear()
