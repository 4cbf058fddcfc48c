"""Optuna's NSGA-II and NSGA-III with bookkeeping whose cost does not grow with the study.

Optuna's genetic samplers (``BaseGASampler``, Optuna 5) find a trial's generation, a
generation's population and a parent population by scanning every trial of the study on every
``ask``, and rebuild a missing parent population recursively (generation g from g - 1, ...), so
a study slows as it grows and a resumed study of 1,000 generations overflows the stack. These
subclasses keep the same algorithm, the same random streams and the same stored attributes
(``NSGAIISampler:generation``, so studies stay readable by Optuna and older ador), and replace
the three lookups:

- the trials of the study are read incrementally: each ``ask`` looks only at trials added since
  the last one (and at the few that were still running then);
- generation membership, the highest generation and its size are kept as the trials arrive;
- parent populations are cached per generation and a missing one is rebuilt forward from the
  nearest cached generation (a loop, never a recursion);
- the relative search space (the intersection of the completed trials' distributions) is
  recomputed only when a trial has completed since the last ``ask``.

Unlike Optuna's, a child that is a design the study has already met (stored, or proposed earlier
in this run) is bred again, up to ``DUPLICATE_TRIES`` times, as pymoo's ``eliminate_duplicates``
does: a repeat costs a trial of the budget and teaches the search nothing (on the quality space a
third of 5,000 NSGA-II trials were repeats, half of the last thousand); after ``LOCAL_TRIES`` children
the retries redraw mutated parameters uniformly, whatever the sampler's mutation. The run says which designs
are stored (``is_known``, set by ador/explore/history.py); without it, or with the sampler option
``eliminate_duplicates: false``, the proposals are Optuna's exactly (for the same operators: ador's
NSGA-II crosses numbers with VSBX and mutates them polynomially by default, ador/explore/samplers.py).

A resume may give the parent population of a recent generation (``prime``) so that nothing
older needs to be read at all (ador/explore/resume.py). Relies on the documented ``BaseGASampler``
methods (``get_trial_generation``, ``get_population``, ``get_parent_population``,
``select_parent``) and its generation key; pinned by setup.cfg (optuna < 6) and checked against
Optuna's own samplers by tests/test_flat_ga.py.
"""
from __future__ import annotations

import bisect
import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

import optuna
from optuna.samplers import NSGAIIISampler, NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from ador.explore.trial_feed import TrialFeed

if TYPE_CHECKING:
    from optuna.study import Study


DUPLICATE_TRIES = 20       # children bred for one trial before a repeat is let through
# Children bred with the sampler's own mutation before the retries redraw mutated parameters
# uniformly (Optuna's mutation). A local mutation (ador's NSGA-II mutates polynomially) cannot leave
# a neighbourhood the population has exhausted, where a knob of three or four values almost never
# moves: on the 1,728-design smoke space (population 20) 11-32 of 300 trials were repeats with every
# retry local, 0-1 with 5 local tries then uniform redraws, as with Optuna's mutation throughout.
LOCAL_TRIES = DUPLICATE_TRIES // 4


class FlatGenerations:
    """Mixin over a ``BaseGASampler`` subclass (placed first in the bases)."""

    _GENERATION_KEY: str
    _population_size: int | None
    _random_sampler: optuna.samplers.RandomSampler

    def __init__(self, *args: Any, eliminate_duplicates: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eliminate_duplicates = eliminate_duplicates
        # design digest (ador.explore.design_id.key_hash) -> already stored? Set by the run.
        self.is_known: Callable[[str], bool] | None = None
        # parameters, distributions -> the design's digest (ador.explore.design_id); set by the run
        self.design_of: Callable[[dict[str, Any], dict[str, Any]], str] | None = None
        # called with (generation, parents) when a parent population is chosen (a resume point)
        self.on_parents: Callable[[int, list[FrozenTrial]], None] | None = None
        self._forget()

    def _forget(self) -> None:
        """Read the study afresh (Optuna's sampler may be given another study, or unpickled)."""
        self._proposed: set[str] = set()                      # designs this sampler proposed
        self._members: dict[int, list[FrozenTrial]] = {}     # generation -> its COMPLETE trials, by number
        self._feed = TrialFeed()                              # the study's trials, read incrementally
        self._max_generation, self._max_count = 0, 0
        self._n_complete = 0                                  # COMPLETE trials looked at so far
        self._space: tuple[int, dict[str, Any]] | None = None  # (_n_complete, search space) last inferred
        self._parents: dict[int, list[FrozenTrial]] = {}     # generation -> parents, by number
        self._fresh: dict[int, list[FrozenTrial]] = {}       # ... in selection order, until first read

    def __setstate__(self, state: dict[str, Any]) -> None:
        # the feed keeps no study through a pickle: what it read is dropped now, so that parents
        # primed after the unpickling survive the first read (those primed before any read stay)
        self.__dict__.update(state)
        if self._feed.started:
            self._forget()

    # --- the incremental view of the study ------------------------------------------------

    def _sync(self, study: Study) -> None:
        if self._feed.read_another(study):
            self._forget()          # (parents primed before the first read are this study's: kept)
        for t in self._feed.sync(study)[0]:
            if t.state == TrialState.COMPLETE:
                self._n_complete += 1
                self._add(t)

    def _add(self, trial: FrozenTrial) -> None:
        generation = trial.system_attrs.get(self._GENERATION_KEY)
        if generation is None:
            return
        members = self._members.setdefault(generation, [])
        if not members or members[-1].number < trial.number:
            members.append(trial)
        else:
            bisect.insort(members, trial, key=lambda t: t.number)
        if generation > self._max_generation:
            self._max_generation, self._max_count = generation, 1
        elif generation == self._max_generation:
            self._max_count += 1

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        # Optuna's is the intersection of the COMPLETE trials' distributions, recomputed and deep-copied
        # on every ask (a third of an in-memory ask); it changes only when a trial completes
        self._sync(study)
        if self._space is None or self._space[0] != self._n_complete:
            self._space = (self._n_complete, super().infer_relative_search_space(study, trial))  # type: ignore[misc]
        return dict(self._space[1])

    # --- children that are new designs -----------------------------------------------------

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        child = super().sample_relative(study, trial, search_space)    # type: ignore[misc]
        if not child or self.is_known is None or not self.eliminate_duplicates:
            return child
        from ador.explore.design_id import key_hash, params_key
        design_of = self.design_of or (lambda params, dists: key_hash(params_key(params, dists)))
        for attempt in range(DUPLICATE_TRIES):
            # the parameters the child leaves out are mutated: drawn as the trial would draw them
            full = {name: child[name] if name in child else
                    self._random_sampler.sample_independent(study, trial, name, dist)
                    for name, dist in search_space.items()}
            key = design_of(full, search_space)
            if key not in self._proposed and not self.is_known(key):
                break
            if attempt < DUPLICATE_TRIES - 1:
                with self._mutating_uniformly(attempt + 1 >= LOCAL_TRIES):
                    child = super().sample_relative(study, trial, search_space)    # type: ignore[misc]
        self._proposed.add(key)
        return full

    @contextlib.contextmanager
    def _mutating_uniformly(self, on: bool) -> Iterator[None]:
        """While ``on``, a mutated parameter is redrawn uniformly (Optuna's mutation) whatever the
        sampler's own mutation (ador's NSGA-II: polynomial, which moves a value a step or two)."""
        strategy = getattr(self, "_child_generation_strategy", None)
        own = getattr(strategy, "_mutation", None)
        if not on or own is None:
            yield
            return
        strategy._mutation = None                    # type: ignore[union-attr]
        try:
            yield
        finally:
            strategy._mutation = own                 # type: ignore[union-attr]

    # --- BaseGASampler's lookups ------------------------------------------------------------

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        generation = trial.system_attrs.get(self._GENERATION_KEY)
        if generation is not None:
            return generation
        self._sync(study)
        assert self._population_size is not None, "Population size must be set."
        generation = self._max_generation + (self._max_count >= self._population_size)
        study._storage.set_trial_system_attr(trial._trial_id, self._GENERATION_KEY, generation)
        return generation

    def open_slots(self, study: Study) -> int:
        """Trials to ask next so that the current generation ends with a population of COMPLETE
        trials: what it lacks (a failed trial leaves a slot open), or a whole population once it is
        complete. Optuna asking one at a time tops a generation up the same way; a batch of a whole
        population asked into a generation that lacks a few would fill it with twice as many."""
        self._sync(study)
        size = self._population_size
        assert size is not None, "Population size must be set."
        return size - self._max_count if 0 < self._max_count < size else size

    def get_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        self._sync(study)
        return list(self._members.get(generation, ()))

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        if generation <= 0:
            return []
        if generation not in self._parents:
            start = max((g for g in self._parents if g < generation), default=0)
            for g in range(start + 1, generation + 1):
                # select_parent reads generation g - 1 and its parents, cached by now
                chosen = self.select_parent(study, g)   # type: ignore[attr-defined]
                self._parents[g] = sorted(chosen, key=lambda t: t.number)
                if g == generation:
                    # an earlier generation's parents are read in trial order, as they were by the
                    # time the run that made them moved on: a rebuild chooses what that run chose
                    self._fresh[g] = chosen
                if self.on_parents is not None:
                    self.on_parents(g, self._parents[g])
        # as Optuna: the selection's own order when just made, trial order once cached
        return self._fresh.pop(generation, None) or self._parents[generation]

    def prime(self, generation: int, parents: list[FrozenTrial]) -> None:
        """Take ``parents`` as the parent population of ``generation`` (trials of the study
        this sampler runs on), so that nothing older is needed to go on."""
        self._parents[generation] = sorted(parents, key=lambda t: t.number)


class FlatNSGAIISampler(FlatGenerations, NSGAIISampler):
    """NSGA-II (Optuna's) with flat per-trial bookkeeping."""


class FlatNSGAIIISampler(FlatGenerations, NSGAIIISampler):
    """NSGA-III (Optuna's) with flat per-trial bookkeeping."""


# BaseGASampler names its keys after the class; keep Optuna's names so stored studies agree
for _flat, _optuna in ((FlatNSGAIISampler, NSGAIISampler), (FlatNSGAIIISampler, NSGAIIISampler)):
    _flat._GENERATION_KEY = _optuna._GENERATION_KEY
    _flat._PARENT_CACHE_KEY_PREFIX = _optuna._PARENT_CACHE_KEY_PREFIX


def generation_key(sampler: optuna.samplers.BaseSampler) -> str | None:
    """The trial system attribute holding a genetic sampler's generation (None for others)."""
    return getattr(sampler, "_GENERATION_KEY", None) if isinstance(sampler, FlatGenerations) else None
