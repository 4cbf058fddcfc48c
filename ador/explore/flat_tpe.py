"""Optuna's TPE with bookkeeping that reads each trial once.

Optuna's ``TPESampler`` (Optuna 5) samples a multi-objective study's parameters one at a time
(independent TPE), and for every parameter of every ``ask`` it lists every trial, parses each
one's constraints from its system attributes, splits the trials into "below" and "above" by
non-dominated sorting, and converts every trial's parameter to its internal form in a Python
loop. On the llama3 study (19 parameters) an ``ask`` took 0.6 s at 1,000 trials, 95% of it that
bookkeeping, so TPE fell from 68.7 trials/s at 200 trials to 4.9 at 2,000.

This subclass keeps Optuna's algorithm, random stream and proposals (tests/test_flat_tpe.py runs
both side by side) and changes where the numbers come from:

- a finished trial is read once (``TrialFeed``): its objective values (signed for minimisation),
  its infeasibility (Optuna's score) and its parameters' internal values go into arrays;
- the split is made once per ``ask``, on those arrays, with Optuna's own functions
  (``_fast_non_domination_rank``, the hypervolume subset selection on the boundary front);
- each parameter's estimators index the arrays; only running trials (the constant liar's) are
  converted on each ``ask``.

- the 24 candidates are scored against each estimator's distinct kernels (``tpe_kernels.merged``: a discrete
  knob's value repeats across trials, and equal kernels are one kernel of summed weight), not one
  kernel per trial; where another design ties the best within rounding, Optuna's own sums decide.

With Optuna's split, what still grows with the study is the algorithm itself: MOTPE's "below" set
is a tenth of the trials (``default_gamma_multiobjective``), the non-dominated sort ranks every
trial, and both estimators hold a kernel per trial. Two options of this class (not Optuna's) bound
that, and ador's ``tpe`` sets them (ador/explore/samplers.py; a study may set them to null):

- ``below_limit``: at most this many trials below, chosen as Optuna's split chooses them (the best
  by non-dominated rank, the boundary front cut by hypervolume subset selection), from a pool of
  candidates that is provably enough (ador/explore/tpe_split.py) instead of a ranking of every
  trial;
- ``above_window``: of the other finished trials, the newest this many above (the constant liar's
  running trials join them, as in Optuna's).

Up to the study size at which Optuna's split reaches the caps the proposals are Optuna's; beyond
it they are those of Optuna's sampler with its split capped the same way (tests/test_flat_tpe.py
runs both). The relative search space (Optuna's ``IntersectionSearchSpace``, which walks back over
the trials on every ask and over all of them on a run's first) is kept as trials arrive.

A resumed run need not copy the stored trials into its in-memory study at all: ``prime`` reads
them as arrays (ador/explore/stored_columns.py: numbers, values, infeasibility, parameters), as
trials that come before the study's own, and the proposals are those of a sampler given every
trial (tests/test_tpe_prime.py). A 20,000-trial study's resume went from 6-22 s and 450 MB to
1.1-1.3 s and 140-190 MB (docs/performance.md).

Studies with pruned trials, and ``group=True``, take Optuna's own path (ador prunes nothing), where
the caps do not apply: ``group=True`` with a cap is refused, and a pruned trial lifts them (the
estimators then hold every trial again).
A sampler given another study (or unpickled) reads it afresh, and one study's threads
(``Study.optimize(n_jobs=...)``) sample one at a time (tests/test_flat_tpe_lifecycle.py).
Relies on ``TPESampler._sample``, the module's split helpers and the Parzen estimator's mixture
(``_mixture_distribution``, its batched distributions, ``_unique_inverse_2d``), pinned by setup.cfg
(optuna < 6) and checked against Optuna's sampler by the tests.
"""
from __future__ import annotations

import copy
import functools
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.samplers import TPESampler
from optuna.samplers._tpe import sampler as optuna_tpe
from optuna.study import StudyDirection
from optuna.trial import TrialState

from ador.explore.tpe_kernels import merged, near_tie
from ador.explore.tpe_split import BelowPool, best
from ador.explore.trial_feed import TrialFeed

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial

    from ador.explore.stored_columns import CompletedColumns


def _locked(method):
    """``method`` under the sampler's lock: its bookkeeping is read and extended by one thread at a time."""
    @functools.wraps(method)
    def run(self: FlatTPESampler, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return run


class _Rows:
    """A growing float array (rows appended, capacity doubled)."""

    def __init__(self, width: int = 0) -> None:
        self._shape = (width,) if width else ()
        self._data = np.empty((64, *self._shape))
        self.n = 0

    def extend(self, rows: list | np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)), *self._shape))
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        if len(rows):
            self._data[self.n:need] = rows
        self.n = need

    @property
    def view(self) -> np.ndarray:
        return self._data[:self.n]


class FlatTPESampler(TPESampler):
    """TPE (Optuna's) whose per-ask bookkeeping reads each trial once."""

    def __init__(self, *args: Any, below_limit: int | None = None, above_window: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wrong = caps_error(below_limit, above_window, self._group)
        if wrong is not None:
            raise ValueError(f"{wrong[0]}={wrong[1]!r}: {wrong[2]}")
        self._below_limit = below_limit          # None: Optuna's split (every trial in one estimator)
        self._above_window = above_window
        self._lock = threading.RLock()           # Study.optimize(n_jobs=...) samples from several threads
        self._forget()

    def _forget(self) -> None:
        """Read the study afresh (Optuna's sampler may be given another study, or unpickled)."""
        self._feed = TrialFeed()
        self._primed: CompletedColumns | None = None   # a stored study's COMPLETE trials, before the study's (prime)
        self._done: list[FrozenTrial] = []       # the study's COMPLETE trials, in the order looked at
        self._numbers = _Rows()                  # their numbers
        self._in_order = True                    # ... ascending (a trial finishing late breaks it)
        self._scores = _Rows()                   # Optuna's infeasibility score (0: feasible)
        self._lvals: _Rows | None = None         # objective values, each to be minimised
        self._columns: dict[str, tuple[BaseDistribution, _Rows]] = {}   # internal values (nan: absent)
        self._running: list[FrozenTrial] = []
        self._pruned = False                     # a PRUNED trial seen: Optuna's own path from then on
        self._split: tuple[tuple, np.ndarray, np.ndarray] | None = None   # (key, below, above positions)
        self._pool: BelowPool | None = None      # the capped below set's candidates (tpe_split.py)
        self._space: dict[str, BaseDistribution] | None = None   # intersection of COMPLETE trials' spaces
        self._synced_for: tuple | None = None   # the study and trial whose ask has just read the study

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()             # the lock does not pickle (nor the feed's study: TrialFeed)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # --- the incremental view -----------------------------------------------------------------

    def _sync(self, study: Study) -> None:
        if self._feed.read_another(study):
            self._forget()
        finished, unfinished = self._feed.sync(study)
        self._running = [t for t in unfinished if t.state == TrialState.RUNNING]
        done = [t for t in finished if t.state == TrialState.COMPLETE]
        self._pruned = self._pruned or any(t.state == TrialState.PRUNED for t in finished)
        if self._pruned and self._n_primed():
            raise RuntimeError("a trial was pruned in a study whose sampler was primed with stored trials: "
                               "Optuna's path for pruned trials reads trials, not the primed arrays")
        if not done:
            return
        if self._lvals is None:
            self._lvals = _Rows(len(study.directions))
        signs = _signs(study)
        numbers = [t.number for t in done]
        if self._numbers.n and numbers[0] < self._numbers.view[-1] or numbers != sorted(numbers):
            self._in_order = False
        self._done.extend(done)
        space = self._space if self._space is not None else dict(done[0].distributions)
        for t in done:                           # what Optuna's IntersectionSearchSpace keeps, kept as trials arrive
            dists = t.distributions
            if any(dists.get(name) != d for name, d in space.items()):
                space = {name: d for name, d in space.items() if dists.get(name) == d}
        self._space = space
        self._numbers.extend(numbers)
        self._scores.extend([optuna_tpe._get_infeasible_trial_score(t) for t in done])
        self._lvals.extend([[v * s for v, s in zip(t.values, signs)] for t in done])

    def _column(self, name: str, distribution: BaseDistribution) -> np.ndarray:
        held = self._columns.get(name)
        if held is None or held[0] != distribution:
            held = self._columns[name] = (distribution, _Rows())
        rows = held[1]
        if rows.n == 0 and self._primed is not None:
            rows.extend(self._primed.column(name, distribution))
        read = rows.n - self._n_primed()
        if read < len(self._done):
            rows.extend([_internal(t.params, name, distribution) for t in self._done[read:]])
        return rows.view

    def _n_primed(self) -> int:
        return len(self._primed) if self._primed is not None else 0

    def _n_done(self) -> int:
        """COMPLETE trials read: a stored study's (``prime``), then the study's own."""
        return self._n_primed() + len(self._done)

    def _fast(self) -> bool:
        return not (self._group or self._pruned)

    @property
    def can_prime(self) -> bool:
        """Whether ``prime`` may take stored rows (not on Optuna's own path: ``group=True``, or after a
        pruned trial), so a caller reads them only when they will be used."""
        return self._fast()

    @_locked
    def prime(self, study: Study, completed: CompletedColumns) -> bool:
        """Read a stored study's COMPLETE trials from arrays (ador/explore/stored_columns.py), as
        trials that come before ``study``'s own: a resumed run (ador/explore/history.py) then holds
        only its new trials in its in-memory ``study``, and builds no trial object for the stored
        ones. ``study`` must hold no trial yet. False (nothing read) where the sampler would read
        them as trials, on Optuna's own path (``group=True``, a pruned trial): the caller then adds
        them to ``study``. The rows belong to ``study``: given another study, or unpickled (its
        study is not pickled), the sampler forgets them with the rest of its bookkeeping, as it
        reads any study afresh."""
        if not self._fast() or completed.pruned:
            return False
        if self._feed.started or self._primed is not None or study._storage.get_all_trials(study._study_id,
                                                                                              deepcopy=False):
            raise ValueError("prime() reads a stored study before any trial of the study it samples for")
        self._feed.start(study)              # the primed rows belong to this study: another one forgets them
        self._primed = completed
        if not len(completed):
            return True
        self._lvals = _Rows(len(study.directions))
        self._lvals.extend(completed.values * np.array(_signs(study)))
        self._numbers.extend(completed.numbers - (completed.numbers[-1] + 1))   # negative: before the study's
        self._scores.extend(completed.infeasibility)
        self._space = completed.search_space()
        return True

    @_locked
    def catch_up(self, study: Study) -> None:
        """Read ``study``'s finished trials now (a run's start: ador/explore/history.py) rather than on
        the first ask: what a resumed run reads once, counted with its start."""
        self._sync(study)
        if self._fast():
            for name, distribution in (self._space or {}).items():
                self._column(name, distribution)

    # --- TPESampler's reads of the study ----------------------------------------------------------

    @_locked
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        # Optuna's walks back over the trials on each ask (all of them on a run's first): the
        # intersection is kept as trials arrive instead, over the same COMPLETE trials
        self._sync(study)
        self._synced_for = _ask_key(study, trial)   # the ask's sampling reads this view (Optuna's: its snapshot)
        if not self._fast() or not self._is_multivariate(study):
            return super().infer_relative_search_space(study, trial)
        return {name: copy.deepcopy(d) for name, d in sorted((self._space or {}).items()) if not d.single()}

    @_locked
    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        self._sync(study)
        if not self._fast():
            return super().sample_independent(study, trial, param_name, param_distribution)
        if self._n_done() < self._n_startup_trials:
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        if self._warn_independent_sampling and self._is_multivariate(study) and self._seen(param_name):
            optuna_tpe._logger.warning(optuna_tpe._INDEPENDENT_SAMPLING_WARNING_TEMPLATE.format(   # Optuna's warning
                param_name=param_name, trial_number=trial.number,
                independent_sampler_name=self._random_sampler.__class__.__name__, sampler_name=type(self).__name__,
                fallback_reason="`multivariate=True,group=False` does not support dynamic search space (but "
                                "`multivariate=True,group=True` works)"))
        return self._sample(study, trial, {param_name: param_distribution})[param_name]

    def _seen(self, name: str) -> bool:
        """Whether a COMPLETE trial read has parameter ``name``."""
        held = self._primed.params.get(name, ()) if self._primed is not None else ()
        return any(not np.isnan(c.internal).all() for c in held) or any(name in t.params for t in self._done)

    @_locked
    def _sample_relative(self, study: Study, trial: FrozenTrial,
                         search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if self._synced_for != _ask_key(study, trial):
            self._sync(study)
        self._synced_for = None
        if not search_space or not self._fast():
            return super()._sample_relative(study, trial, search_space)
        if self._n_done() < self._n_startup_trials:
            return {}
        return self._sample(study, trial, search_space)

    def _sample(self, study: Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        # reached only through the two entry points above (Optuna's own paths included), which hold
        # the lock and have read the study
        if not self._fast():
            return super()._sample(study, trial, search_space)
        below, above = self._positions(study, trial)
        running = [t for t in self._running if t.number != trial.number] if self._constant_liar else []
        ordered = self._order_above(above, running)
        observed_below = _observed({name: self._column(name, d)[below] for name, d in search_space.items()})
        observed_above = {name: self._column(name, d)[above] for name, d in search_space.items()}
        if running:      # the constant liar's: read as Optuna reads them, on every ask
            params = [self._get_params(t, study) for t in running]
            for name, d in search_space.items():
                values = np.concatenate([observed_above[name], [_internal(p, name, d) for p in params]])
                observed_above[name] = values[ordered]
        observed_above = _observed(observed_above)
        weights = np.ones(len(next(iter(observed_below.values())))) if study._is_multi_objective() else None
        params_ = self._parzen_estimator_parameters
        mpe_below = self._parzen_estimator_cls(observed_below, search_space, params_, weights)
        mpe_above = self._parzen_estimator_cls(observed_above, search_space, params_)
        samples_below = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acquisition = self._compute_acquisition_func(samples_below, merged(mpe_below), merged(mpe_above))
        if near_tie(samples_below, acquisition):       # Optuna's tie-break needs its own sums' rounding
            acquisition = self._compute_acquisition_func(samples_below, mpe_below, mpe_above)
        chosen = TPESampler._compare(samples_below, acquisition)
        return {name: d.to_external_repr(chosen[name]) for name, d in search_space.items()}

    # --- the split, once per ask --------------------------------------------------------------------

    def _positions(self, study: Study, trial: FrozenTrial) -> tuple[np.ndarray, np.ndarray]:
        """Positions among the COMPLETE trials read (primed, then ``_done``) of the "below" and
        "above" trials, each in trial-number order, as Optuna's ``_split_trials`` divides the
        COMPLETE trials (running ones join "above"), with the below set capped at ``below_limit``
        and the above set at the newest ``above_window``."""
        key = (trial.number, self._n_done())
        if self._split is not None and self._split[0] == key:
            return self._split[1], self._split[2]
        if self._gamma is None:
            self._gamma = (optuna_tpe.default_gamma_multiobjective if study._is_multi_objective()
                           else optuna_tpe.default_gamma)
        n = self._n_done()
        n_below = self._gamma(n)
        if self._below_limit is not None:
            n_below = min(n_below, self._below_limit)
        scores = self._scores.view
        positions = np.flatnonzero(scores <= 0)
        feasible = self._by_number(positions)                          # ties are broken in trial order
        infeasible = self._by_number(np.flatnonzero(scores > 0))
        lvals = self._lvals.view if self._lvals is not None else np.empty((0, 1))
        if n_below == self._below_limit and lvals.shape[1] > 1:
            if self._pool is None:
                self._pool = BelowPool(n_below)
            chosen = self._pool.best(lvals, positions, None if self._in_order else self._numbers.view)
        else:
            chosen = best(lvals[feasible], n_below, feasible)
        left = max(0, n_below - len(chosen))
        if left:
            chosen = np.concatenate([chosen, infeasible[np.argsort(scores[infeasible], kind="stable")[:left]]])
        mask = np.zeros(n, dtype=bool)
        mask[chosen] = True
        below, above = self._by_number(np.flatnonzero(mask)), self._by_number(np.flatnonzero(~mask))
        if self._above_window is not None:
            above = above[-self._above_window:]          # the newest: older trials weigh least anyway
        self._split = (key, below, above)
        return below, above

    def _by_number(self, positions: np.ndarray) -> np.ndarray:
        if self._in_order:
            return positions
        return positions[np.argsort(self._numbers.view[positions], kind="stable")]

    def _order_above(self, above: np.ndarray, running: list[FrozenTrial]) -> np.ndarray:
        """The order of "above" followed by the running trials that sorts them all by number."""
        numbers = np.concatenate([self._numbers.view[above], [t.number for t in running]])
        return np.argsort(numbers, kind="stable")


def caps_error(below_limit: Any, above_window: Any, group: Any) -> tuple[str, Any, str] | None:
    """What is wrong with these options of ``FlatTPESampler`` (option, value, why), or None."""
    for name, value in (("below_limit", below_limit), ("above_window", above_window)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return name, value, "must be a positive whole number of trials (or null: every trial)"
    if group and (below_limit is not None or above_window is not None):
        return "group", group, ("group takes Optuna's own split, which below_limit and above_window do not "
                                "reach: set both to null")
    return None


def _signs(study: Study) -> list[float]:
    """Each objective's sign that makes it one to minimise (the sampler's loss values)."""
    return [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions]


def _ask_key(study: Study, trial: FrozenTrial) -> tuple:
    return id(study._storage), study._study_id, trial.number


def _internal(params: dict[str, Any], name: str, distribution: BaseDistribution) -> float:
    return distribution.to_internal_repr(params[name]) if name in params else np.nan


def _observed(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows that have every parameter (Optuna leaves out a trial lacking one)."""
    present = np.logical_and.reduce([~np.isnan(v) for v in columns.values()])
    return columns if present.all() else {name: v[present] for name, v in columns.items()}
