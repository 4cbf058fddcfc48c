"""Every completed trial of a stored study as TPE reads it, as arrays (a resume without the trials).

ador's TPE (ador/explore/flat_tpe.py) reads of each completed trial its number, its objective
values, Optuna's infeasibility score (the sum of its positive constraint values) and its
parameters' internal values; Optuna's sampler would read them from ``FrozenTrial`` objects in the
run's in-memory study. Building those objects for a 20,000-trial study (every parameter,
attribute and distribution, then Optuna's deep copy into the in-memory storage) took most of a
resume's 6-22 s and 450 MB; ``completed_columns`` reads just those numbers, in a few queries
against Optuna's tables (the journal file: through its public API), and the sampler is primed
with them (``FlatTPESampler.prime``) before the run's own trials. A trial's constraints are merged
from their stored attributes by Optuna's own function (``_get_constraints_from_system_attrs``, of
optuna < 6 as pinned; tests/test_tpe_prime.py compares the scores with Optuna's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.study._constrained_optimization import _get_constraints_from_system_attrs as constraints_of
from optuna.trial import FrozenTrial, TrialState

from ador.explore.stored import COMPLETE_SQL, DONE_SQL, CONSTRAINTS_KEY
from ador.explore.stored_table import ANY_JSON, DIALECTS, FLOATS, decode_json, object_sql, stored_number

if TYPE_CHECKING:
    from ador.explore.stored import StoredTrials


@dataclass(frozen=True)
class ParamColumn:
    """One parameter's values under one distribution: internal values, nan in the rows whose
    trial lacks the parameter or holds it under another distribution."""
    distribution: BaseDistribution
    internal: np.ndarray


@dataclass(frozen=True)
class CompletedColumns:
    """The COMPLETE trials of a study in trial-number order (row i is the i-th)."""
    trial_ids: np.ndarray                   # int
    numbers: np.ndarray                     # int, ascending
    values: np.ndarray                      # (rows, objectives), as stored (not signed)
    infeasibility: np.ndarray               # Optuna's score: the sum of the positive constraint values
    params: dict[str, list[ParamColumn]]    # name -> one column per distinct distribution
    pruned: int                             # PRUNED trials in the study (TPE reads them as trials)

    def __len__(self) -> int:
        return len(self.numbers)

    def column(self, name: str, distribution: BaseDistribution) -> np.ndarray:
        """Every row's value of ``name`` in ``distribution``'s internal form (nan: absent), as
        ``distribution.to_internal_repr(trial.params[name])`` gives it for each trial."""
        out = np.full(len(self), np.nan)
        for held in self.params.get(name, ()):
            rows = np.flatnonzero(~np.isnan(held.internal))
            if held.distribution == distribution:
                out[rows] = held.internal[rows]
            else:                    # stored under another distribution: through the external value
                out[rows] = [distribution.to_internal_repr(held.distribution.to_external_repr(v))
                             for v in held.internal[rows]]
        return out

    def search_space(self) -> dict[str, BaseDistribution] | None:
        """The parameters every row holds under one distribution (Optuna's ``IntersectionSearchSpace``
        over these trials; None when there are none)."""
        if not len(self):
            return None
        return {name: held[0].distribution for name, held in self.params.items()
                if len(held) == 1 and not np.isnan(held[0].internal).any()}


def infeasibility(constraints: dict[str, float]) -> float:
    """Optuna's infeasibility score of a trial's constraints (``_get_infeasible_trial_score``)."""
    return sum(v for v in constraints.values() if v > 0)


def completed_columns(stored: StoredTrials) -> CompletedColumns:
    """The completed trials of ``stored``'s study, as arrays."""
    if stored.db is None:
        return _from_trials(stored.storage.get_all_trials(stored.study_id, deepcopy=False))
    head, pruned, values, attrs, kinds, params, folded = stored._run("reading completed trials", lambda: _read(stored))
    head = sorted(head, key=lambda r: r[1])
    # the trials completed when the read began: rows of a trial that completed during the read (the
    # queries see each commit as it lands) are left out, and a later pull brings that trial
    row_of = {int(trial_id): i for i, (trial_id, _) in enumerate(head)}
    n = len(head)
    width = 1 + max((int(r[1]) for r in values), default=-1)
    vals = np.full((n, width), np.nan)
    for trial_id, objective, value, kind in values:
        if trial_id in row_of:
            vals[row_of[trial_id], objective] = value if kind == "FINITE" else stored_number(value, kind)
    scores = np.zeros(n)
    for trial_id, held in attrs:
        if trial_id in row_of:
            scores[row_of[trial_id]] = infeasibility(constraints_of(held))     # Optuna's merge of the two forms
    dists, index = kinds
    columns = {name: [np.full(n, np.nan) for _ in listed] for name, listed in dists.items()}
    if folded:                       # one distribution per name: (trial id, JSON object name -> value)
        for trial_id, text in params:
            if trial_id in row_of:
                row = row_of[trial_id]
                for name, value in FLOATS.decode(text).items():
                    columns[name][0][row] = value
    else:
        for trial_id, name, value, text in params:
            if trial_id in row_of:
                columns[name][index[(name, text)]][row_of[trial_id]] = value
    return CompletedColumns(
        trial_ids=np.array([r[0] for r in head], dtype=np.int64),
        numbers=np.array([r[1] for r in head], dtype=np.int64), values=vals, infeasibility=scores, pruned=pruned,
        params={name: [ParamColumn(d, c) for d, c in zip(dists[name], columns[name])] for name in dists})


def _read(stored: StoredTrials) -> tuple:
    """The rows ``completed_columns`` reads, in one session: trials (id, number), the PRUNED count,
    values (id, objective, value, kind), constraint attributes (id, {key: value}), distributions
    (``_distributions``), parameters (id, name, internal value, its distribution's json; folded: id, JSON
    object name -> internal value) and whether they are folded. A trial's attributes and
    parameters come folded into one JSON text per trial where the database can and each name has
    one distribution (ador/explore/stored_table.py): 20,000 trials' 380,000 parameter rows held at
    once took 160 MB."""
    assert stored.db is not None
    fold = DIALECTS.get(stored.db.dialect)
    run = {"study": stored.study_id, "prefix": CONSTRAINTS_KEY + "%"}
    done = f"AND t.state = {COMPLETE_SQL}"
    with stored.db.session() as s:
        head = s.rows(f"SELECT trial_id, number FROM trials WHERE study_id = :study AND state = {COMPLETE_SQL}", run)
        pruned = s.rows("SELECT COUNT(*) FROM trials WHERE study_id = :study AND state = 'PRUNED'", run)[0][0]
        values = s.rows(f"SELECT a.trial_id, a.objective, a.value, a.value_type FROM trial_values a {DONE_SQL}", run)
        kinds = _distributions(s.rows(f"SELECT a.param_name, a.distribution_json, MIN(t.number) FROM trial_params a "
                                      f"{DONE_SQL} GROUP BY a.param_name, a.distribution_json", run))
        if fold is None:
            attrs = _grouped(s.rows(f"SELECT a.trial_id, a.key, a.value_json FROM trial_system_attributes a {DONE_SQL} "
                                    "AND a.key LIKE :prefix", run), decode_json)
        else:
            attrs = [(i, ANY_JSON.decode(text)) for i, text in s.rows(
                object_sql(fold, "trial_system_attributes", fold["key"].format(k="a.key"), "a.value_json",
                           f"{done} AND a.key LIKE :prefix"), run)]
        folded = fold is not None and all(len(listed) == 1 for listed in kinds[0].values())
        if fold is not None and folded:
            params = s.rows(object_sql(fold, "trial_params", fold["key"].format(k="a.param_name"),
                                       fold["num"].format(v="a.param_value"), done), run)
        else:
            params = s.rows(f"SELECT a.trial_id, a.param_name, a.param_value, a.distribution_json FROM trial_params a "
                            f"{DONE_SQL}", run)
    return head, int(pruned), values, attrs, kinds, params, folded


def _distributions(texts) -> tuple[dict[str, list[BaseDistribution]], dict[tuple[str, str], int]]:
    """Each parameter's distinct distributions, from its stored (name, json, first trial's number)
    texts, and each text's place among them: two texts can be one distribution (a categorical's
    choices 25000000000.0 and 25000000000, as a study opened from its file and from its stored
    settings wrote them before ``params.distribution`` gave both one form), which is then the earliest
    trial's (as the sampler's search space keeps it)."""
    dists: dict[str, list[BaseDistribution]] = {}
    index: dict[tuple[str, str], int] = {}
    for name, text, _ in sorted(texts, key=lambda r: r[2]):
        d = json_to_distribution(text)
        listed = dists.setdefault(name, [])
        if d not in listed:
            listed.append(d)
        index[(name, text)] = listed.index(d)
    return dists, index


def _grouped(rows, decode) -> list[tuple[int, dict[str, Any]]]:
    """(trial id, key, text) rows as (trial id, {key: decoded value})."""
    out: dict[int, dict[str, Any]] = {}
    for trial_id, key, text in rows:
        out.setdefault(trial_id, {})[key] = decode(text)
    return list(out.items())


def _from_trials(trials: list[FrozenTrial]) -> CompletedColumns:
    """The same arrays from trials (a storage without tables)."""
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    n = len(done)
    width = max((len(t.values) for t in done if t.values is not None), default=0)
    columns: dict[str, list[ParamColumn]] = {}
    for i, t in enumerate(done):
        for name, d in t.distributions.items():
            held = columns.setdefault(name, [])
            match = next((c for c in held if c.distribution == d), None)
            if match is None:
                match = ParamColumn(d, np.full(n, np.nan))
                held.append(match)
            match.internal[i] = d.to_internal_repr(t.params[name])
    return CompletedColumns(
        trial_ids=np.array([t._trial_id for t in done], dtype=np.int64),
        numbers=np.array([t.number for t in done], dtype=np.int64),
        values=np.array([list(t.values) for t in done], dtype=float).reshape(n, width),
        infeasibility=np.array([infeasibility(t.constraints) for t in done]),
        params=columns, pruned=sum(t.state == TrialState.PRUNED for t in trials))

