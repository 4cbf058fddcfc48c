"""What a running study's in-memory sampler sees of the stored study, at a cost that does not grow.

A run keeps the sampler's study in memory (ador/explore/runner.py) and writes each finished trial
to the durable storage (``TrialWriter``). ``History`` decides what the in-memory study holds:

- at the start (a resume, a worker): for NSGA-II/III only the generations the sampler still
  reads, found from the resume point the last run stored (``ador_parents:<key>``: a generation
  and the durable ids of its parent population) and each trial's generation (one query); for
  the random sampler nothing; for ador's TPE nothing either: the sampler is primed with the
  completed trials' numbers as arrays (``FlatTPESampler.prime``, ador/explore/stored_columns.py);
  for the others (GP, grid, TPE on Optuna's own path) every finished trial, without its user
  attributes (samplers do not read them);
- every ``SYNC_EVERY_S``: other workers' trials stored since the last look (ids above a
  watermark; ador's writers commit a study's trials in id order), never a full copy;
- every design of the study (read at the start: the digest ador stores with each trial,
  ``ador_design``), of this run and pulled from others, so a design sampled again is answered
  from its first stored trial instead of being scored again (``repeat_of``: its number).
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from ador.explore.flat_ga import FlatGenerations, generation_key
from ador.explore.flat_tpe import FlatTPESampler
from ador.explore.recorder import UID_KEY, TrialRecorder
from ador.explore.storage import with_retries
from ador.explore.design_id import DESIGN_KEY, key_hash, design_hash, params_key
from ador.explore.stored import FINISHED, StoredTrials
from ador.explore.stored_columns import completed_columns
from ador.explore.table_rows import TABLE_ROW_KEY

if TYPE_CHECKING:
    from ador.explore.space import SearchSpace

PARENTS_KEY = "ador_parents:"      # + the sampler's generation key: {"generation": g, "ids": [durable ids]}
REPEAT_ATTR = "repeat_of"          # user attribute of a trial answered from an earlier trial of its design


@dataclass
class RunStats:
    completed: int = 0
    failed: int = 0
    feasible: int = 0
    repeats: int = 0                  # trials of a design met before: answered from it, not scored
    seconds: float = 0.0
    stopped: str = ""                 # why the run ended before its trial budget ("": it did not)


class TrialWriter:
    """Writes finished trials to the durable storage, one transaction per call (with each its
    row of the study's table, ``table_row``, where given: ador/explore/table_rows.py)."""

    def __init__(self, durable: optuna.Study, *, table_row: Callable[[FrozenTrial], list] | None = None,
                 space: SearchSpace | None = None) -> None:
        self.durable = durable
        self.space = space                   # designs identified without their inert knobs (design_id)
        self.table_row = table_row
        self.storage = durable._storage
        self.study_id = durable._study_id
        self.recorder = TrialRecorder(self.storage, self.study_id)

    def write(self, trial: FrozenTrial) -> int:
        return self.write_many([trial])[0]

    def write_many(self, trials: list[FrozenTrial]) -> list[int]:
        """Store finished trials exactly once, in one transaction (on an RDB): each carries a random
        id, and a retry after an error first looks for those ids under the study's lock (a commit
        whose acknowledgement was lost did happen, or is still finishing) and writes only the
        trials it does not find."""
        trials = [_stamped(t, self.space) for t in trials]
        if self.table_row is not None:
            for t in trials:
                t.system_attrs.setdefault(TABLE_ROW_KEY, self.table_row(t))
        attempts = 0

        def attempt() -> list[int]:
            nonlocal attempts
            attempts += 1
            return self.recorder.write_many(trials, skip_stored=attempts > 1)
        return with_retries(attempt, "writing a trial", reset=self.storage.remove_session)


def _stamped(trial: FrozenTrial, space: SearchSpace | None) -> FrozenTrial:
    """``trial`` (a shallow copy) with its write id and its design's digest."""
    trial = copy.copy(trial)
    trial.system_attrs = {**trial.system_attrs, UID_KEY: trial.system_attrs.get(UID_KEY) or uuid.uuid4().hex,
                          DESIGN_KEY: trial.system_attrs.get(DESIGN_KEY) or _design(trial, space)}
    return trial


class History:
    def __init__(self, durable: optuna.Study, mem: optuna.Study, *,
                 table_row: Callable[[FrozenTrial], list] | None = None, space: SearchSpace | None = None) -> None:
        self.durable, self.mem = durable, mem
        self.space = space
        self.writer = TrialWriter(durable, table_row=table_row, space=space)
        self.stored = StoredTrials(durable._storage, durable._study_id)
        self.sampler = mem.sampler
        self.key = generation_key(self.sampler)
        self.ga = self.sampler if isinstance(self.sampler, FlatGenerations) else None
        self.durable_id: dict[int, int] = {}          # in-memory trial id -> durable trial id
        self.known: set[int] = set()                   # durable ids the sampler has read (in ``mem`` or primed)
        # design (its digest) -> (durable id, durable number if known, its trial or None when not read whole)
        self.designs: dict[str, tuple[int, int | None, FrozenTrial | None]] = {}
        self.replayed = 0
        if self.ga is not None:
            self.ga.on_parents = self._record_parents
            self.ga.is_known = self.designs.__contains__
            self.ga.design_of = lambda params, dists: key_hash(params_key(params, dists, space))

    # --- the start ------------------------------------------------------------------------------

    def start(self) -> int:
        """Fill the in-memory study for the sampler; returns the finished trials stored so far."""
        self.stored.skip_to_now()
        n = self.stored.finished()
        if n == 0:
            return n
        # ador's TPE reads the completed trials as arrays; read before the designs, so that each
        # trial it reads is among them (a trial stored meanwhile by another worker is in both)
        tpe = self.sampler if isinstance(self.sampler, FlatTPESampler) else None
        completed = completed_columns(self.stored) if tpe is not None and tpe.can_prime else None
        for key, (durable_id, number) in self.stored.designs().items():      # answers for repeats
            self.designs[key] = (durable_id, number, None)
        if isinstance(self.sampler, optuna.samplers.RandomSampler):
            return n
        if self.key is None or self.ga is None:
            if tpe is not None and completed is not None and tpe.prime(self.mem, completed):
                self.known.update(completed.trial_ids.tolist())
                return n
            trials = self.stored.load(states=FINISHED, user_attrs=False)
            self._add(trials, whole=False)
            if tpe is not None:                  # (on Optuna's own path) it reads them now, not on its first ask
                tpe.catch_up(self.mem)
            return n
        gens = self.stored.system_attr(self.key)
        if not gens:
            return n
        top = max(gens.values())
        mark = self.durable._storage.get_study_system_attrs(self.durable._study_id).get(PARENTS_KEY + self.key)
        start, parent_ids = 0, []
        if isinstance(mark, dict) and 0 < mark.get("generation", 0) <= top + 1:   # top + 1: its first trial was cut
            start, parent_ids = int(mark["generation"]), [int(i) for i in mark.get("ids", [])]
        want = set(parent_ids) | {i for i, g in gens.items() if g >= max(start - 1, 0)}
        trials = self.stored.load(sorted(want))
        self._add(trials, whole=True)
        if start > 0:
            mem_of = {d: m for m, d in self.durable_id.items()}
            by_id = {t._trial_id: t for t in self.mem.get_trials(deepcopy=False)}
            if all(i in mem_of for i in parent_ids):
                self.ga.prime(start, [by_id[mem_of[i]] for i in parent_ids])
        return n

    def _add(self, trials: list[FrozenTrial], *, whole: bool) -> None:
        trials = [t for t in trials if t.state in FINISHED and t._trial_id not in self.known]
        if not trials:
            return
        before = len(self.mem.get_trials(deepcopy=False))
        self.mem.add_trials(trials)
        added = self.mem.get_trials(deepcopy=False)[before:]
        for durable, mem in zip(trials, added, strict=True):
            self.durable_id[mem._trial_id] = durable._trial_id
            self.known.add(durable._trial_id)
            key = _key(durable, self.space)
            if key not in self.designs or (whole and self.designs[key][0] == durable._trial_id):
                self.designs[key] = (durable._trial_id, durable.number, durable if whole else None)
        self.replayed += len(trials)

    # --- during the run -------------------------------------------------------------------------

    def pull(self) -> int:
        """Add other workers' trials stored since the last look; returns how many."""
        new = self.stored.new_finished(skip=self.known)
        self._add(new, whole=True)
        return len(new)

    def write(self, trial: FrozenTrial) -> int:
        """Store a finished in-memory trial; returns its durable id."""
        return self.write_many([trial])[0]

    def write_many(self, trials: list[FrozenTrial]) -> list[int]:
        """Store finished in-memory trials in one transaction; returns their durable ids."""
        stamped = [_stamped(t, self.space) for t in trials]       # their design digests, hashed once
        ids = self.writer.write_many(stamped)
        for trial, durable_id in zip(stamped, ids):
            self.durable_id[trial._trial_id] = durable_id
            self.known.add(durable_id)
            key = trial.system_attrs[DESIGN_KEY]
            if key not in self.designs:
                self.designs[key] = (durable_id, self.writer.recorder.number_of(durable_id), trial)
        return ids

    def repeat_of(self, params: dict[str, Any], dists) -> tuple[list[float] | None, dict[str, float],
                                                                dict[str, Any]] | None:
        """The answer of an earlier trial of this design, if one has been met: its values (None:
        it failed), constraints and user attributes (with ``repeat_of``: its durable number)."""
        key = key_hash(params_key(params, dists, self.space))
        found = self.designs.get(key)
        if found is None:
            return None
        durable_id, number, trial = found
        if number is None:                             # written here by a writer that did not say
            number = self.stored.number_of(durable_id)
            if number is None:
                return None
            self.designs[key] = (durable_id, number, trial)
        if trial is None:                              # replayed without its attributes: read it
            loaded = self.stored.load([durable_id])
            if not loaded:
                return None
            trial = loaded[0]
            self.designs[key] = (durable_id, number, trial)
        return answer_of(trial, number)

    def _record_parents(self, generation: int, parents: list[FrozenTrial]) -> None:
        """Store the resume point: this generation's parents by durable id (one small write per
        generation)."""
        ids = [self.durable_id.get(t._trial_id) for t in parents]
        if generation > 0 and parents and all(i is not None for i in ids):
            storage = self.durable._storage
            with_retries(lambda: storage.set_study_system_attr(self.durable._study_id, PARENTS_KEY + str(self.key),
                                                               {"generation": generation, "ids": ids}),
                         "storing the resume point", reset=getattr(storage, "remove_session", None))


def answer_of(trial: FrozenTrial, number: int) -> tuple[list[float] | None, dict[str, float], dict[str, Any]]:
    """What a repeat of ``trial``'s design (the study's trial ``number``) is answered with: its values
    (None: it failed), constraints and user attributes, ``repeat_of`` naming it."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k != REPEAT_ATTR}
    attrs[REPEAT_ATTR] = number
    values = list(trial.values) if trial.state == TrialState.COMPLETE and trial.values is not None else None
    return values, dict(trial.constraints), attrs


def _key(trial: FrozenTrial, space: SearchSpace | None) -> str:
    return trial.system_attrs.get(DESIGN_KEY) or _design(trial, space)


def _design(trial: FrozenTrial, space: SearchSpace | None) -> str:
    try:
        return design_hash(trial, space)
    except (KeyError, ValueError):
        return f"trial-{trial._trial_id}"


def tell(mem: optuna.Study, trial: optuna.Trial, values: list[float] | None, constraints: dict[str, float],
         attrs: dict[str, Any], stats: RunStats) -> bool:
    """Tell the sampler's study a trial's answer (its attributes, named constraints and values, or
    a failure), count it in ``stats``; True when the trial is feasible."""
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if values is None:
        mem.tell(trial, state=TrialState.FAIL)
        stats.failed += 1
        return False
    for key, value in constraints.items():
        trial.set_constraint(key, value)
    mem.tell(trial, values)
    stats.completed += 1
    if attrs.get("feasible"):
        stats.feasible += 1
        return True
    return False

