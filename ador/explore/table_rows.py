"""A trial's row of its study's table (`ador study export`), stored with the trial.

Optuna keeps a trial as one database row per parameter and per attribute: about 35 rows per
trial of ador's studies, 700,000 for a 20,000-trial study, which take the database alone most of
a second to hand over before any Python runs. So ador's writer also stores, in the same
transaction as the trial, the trial's row of the table as one compact JSON array (the trial
system attribute ``ador_table_row``): its objective values, feasibility, parameters, metrics
and infeasibility reasons, in the column order of its study's ``TableLayout``. A whole-table read
is then one query of one row per trial. The row is made by the one function the table uses for
any trial read whole (``TableLayout.row_of``), and a trial without a row of its study's layout
(written by another client, by an older ador, or still running) is read whole and given one the
same way; tests hold a table read from stored rows equal to the same table read from whole trials.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Sequence

from optuna.trial import FrozenTrial, TrialState

from ador.explore.pareto import front_firsts
from ador.explore.record import is_feasible, metrics_of, reasons_of, stored_metrics

if TYPE_CHECKING:
    from ador.explore.config import Study
    from ador.explore.database import Database
    from ador.explore.space import SearchSpace

TABLE_ROW_KEY = "ador_table_row"     # trial system attribute: the trial's row (JSON array)
ROW_FORMAT = 1                       # part of the layout signature: bump when the row's fields change
_SIG, _VALUES, _FEASIBLE, _KNOBS, _METRICS, _REASONS = range(6)


@dataclass(frozen=True)
class TableLayout:
    """The columns of a study's table and where each comes from in a stored row."""

    metric_names: tuple[str, ...]              # metric columns: objectives first, then stored metrics
    param_names: tuple[str, ...]               # the search space's Optuna parameters, sorted
    knob_names: tuple[str, ...]                # knob columns, in the search space's order
    knob_params: tuple[tuple[int, bool], ...]  # per knob: index into param_names, power of two
    signature: str                             # digest of the above and ROW_FORMAT
    # the study's space: a design on the front is its knob values less those it finds inert
    space: SearchSpace | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, study: Study) -> TableLayout:
        from ador.explore.params import param_name
        metrics = tuple(dict.fromkeys([*study.metric_names, *stored_metrics(study)]))
        knobs = study.space.knobs
        by_knob = {name: param_name(name, knob) for name, knob in knobs.items()}
        params = tuple(sorted(by_knob.values()))
        index = {p: i for i, p in enumerate(params)}
        knob_params = tuple((index[by_knob[name]], knob.type == "pow2") for name, knob in knobs.items())
        sig = hashlib.blake2b(repr((ROW_FORMAT, metrics, params, tuple(knobs), knob_params)).encode(),
                              digest_size=6).hexdigest()
        return cls(metric_names=metrics, param_names=params, knob_names=tuple(knobs), knob_params=knob_params,
                   signature=sig, space=study.space)

    @property
    def columns(self) -> list[str]:
        """Column names, each once: a knob named like a metric (a system study's ``dies``) is
        ``knob:<name>``."""
        metrics = set(self.metric_names)
        knobs = [f"knob:{k}" if k in metrics else k for k in self.knob_names]
        return ["trial", "state", "feasible", "on_front", *self.metric_names, *knobs, "infeasible_reasons"]

    def key_of(self, trial: FrozenTrial) -> tuple | None:
        """A trial read whole: its design key where it differs from its stored row's (a trial of
        another client whose parameters are not exactly the search space's: ``front_trials``'s own
        key, all its parameters), else None (the row's knob values identify the design)."""
        if set(trial.params) == set(self.param_names):
            return None
        return ("params", tuple(sorted((k, repr(v)) for k, v in trial.params.items())))

    # --- one trial -----------------------------------------------------------------------------

    @cached_property
    def _sources(self) -> tuple[tuple[str, bool], ...]:
        """Per knob: its Optuna parameter and whether it is a power of two."""
        return tuple((self.param_names[i], pow2) for i, pow2 in self.knob_params)

    def row_of(self, trial: FrozenTrial) -> list[Any]:
        """``trial``'s stored row: [signature, values, feasible, knob values (powers of two
        expanded; None when the trial lacks one of the space's parameters), metrics, reasons]."""
        metrics = metrics_of(trial)
        params = trial.params
        knobs: list[Any] | None
        try:
            knobs = [2 ** int(params[p]) if pow2 else params[p] for p, pow2 in self._sources]
        except KeyError:
            knobs = None
        return [self.signature, list(trial.values) if trial.values is not None else None, is_feasible(trial),
                knobs, [metrics.get(m) for m in self.metric_names], "; ".join(reasons_of(trial))]

    def _design(self, knobs: list[Any]) -> tuple:
        """A stored row's knob values, those of inert knobs (``SearchSpace.inert_knobs``) as None."""
        if self.space is None:
            return tuple(knobs)
        from ador.errors import AdorError
        try:
            return self.space.design_values(dict(zip(self.knob_names, knobs)))
        except (AdorError, KeyError):
            return tuple(knobs)

    def fits(self, row: Any) -> bool:
        return isinstance(row, list) and len(row) == 6 and row[_SIG] == self.signature

    # --- the table -----------------------------------------------------------------------------

    def table(self, trials: Sequence[tuple[int, TrialState, list[Any], tuple | None]],
              directions: Sequence[str]) -> list[Sequence[Any]]:
        """The table's columns (in the order of ``columns``; rows in trial-number order), from
        (number, state, stored row, design key or None) of every trial: ``on_front`` marks the
        study's front as ``front_trials`` counts it (feasible trials no other dominates, then the
        first of each distinct design)."""
        trials = sorted(trials, key=lambda t: t[0])
        done = [(number, row, key) for number, state, row, key in trials
                if state == TrialState.COMPLETE and row[_FEASIBLE] and row[_VALUES] is not None]

        def keys_of(indices: list[int]) -> list[tuple]:
            keys = []
            for i in indices:
                number, row, key = done[i]
                keys.append(key if key is not None else ("knobs", self._design(row[_KNOBS])) if row[_KNOBS] is not None
                            else ("trial", number))
            return keys
        front = {done[i][0] for i in front_firsts([row[_VALUES] for _, row, _ in done], directions, keys_of)}
        unknown = [None] * len(self.knob_names)
        names = {s: s.name.lower() for s in TrialState}
        complete = TrialState.COMPLETE
        numbers = [t[0] for t in trials]

        def spread(lists: list[Any], width: int) -> list[Sequence[Any]]:     # rows of lists -> columns
            return list(zip(*lists)) if lists else [()] * width
        return [numbers, [names[t[1]] for t in trials],
                [bool(row[_FEASIBLE]) and state == complete for _, state, row, _ in trials],
                [number in front for number in numbers],
                *spread([t[2][_METRICS] for t in trials], len(self.metric_names)),
                *spread([t[2][_KNOBS] or unknown for t in trials], len(self.knob_names)),
                [t[2][_REASONS] for t in trials]]


FOLD_TRIALS = 50_000     # trials folded into one text per query (a database's text has a size limit)


def stored_rows(database: Database | None, study_id: int) -> list[tuple[int, int, TrialState, Any]] | None:
    """(trial id, number, state, stored row or None) of every trial of the study: on SQLite and
    PostgreSQL folded into one JSON text per ``FOLD_TRIALS`` trial ids (one decode each, where
    20,000 small decodes cost twice the time); None without a database."""
    if database is None:
        return None
    from ador.explore.stored_table import trial_state
    dialect = database.dialect
    join = ("FROM trials t LEFT JOIN trial_system_attributes a ON a.trial_id = t.trial_id AND a.key = :key "
            "WHERE t.study_id = :study")
    args = {"key": TABLE_ROW_KEY, "study": study_id}
    rows: list[tuple] = []
    with database.session() as s:
        if dialect in ("sqlite", "postgresql"):
            cast = "" if dialect == "sqlite" else "::text"
            agg = "group_concat({x}, ',')" if dialect == "sqlite" else "string_agg({x}, ',')"
            item = (f"t.trial_id{cast} || ',' || t.number{cast} || ',\"' || t.state{cast} || '\",' || "
                    "COALESCE(a.value_json, 'null')")
            (low, high), = s.rows("SELECT MIN(trial_id), MAX(trial_id) FROM trials WHERE study_id = :study", args)
            fold = f"SELECT {agg.format(x=item)} {join} AND t.trial_id >= :low AND t.trial_id < :high"
            for start in range(low or 0, (high or -1) + 1, FOLD_TRIALS):
                (folded,), = s.rows(fold, {**args, "low": start, "high": start + FOLD_TRIALS})
                flat = json.loads(f"[{folded}]") if folded else []
                rows += zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4])
        else:
            rows = [(tid, number, state, None if value is None else json.loads(value)) for tid, number, state, value
                    in s.rows(f"SELECT t.trial_id, t.number, t.state, a.value_json {join}", args)]
    states = {s.name: s for s in TrialState}
    return [(int(tid), int(number), states[state] if isinstance(state, str) else trial_state(state), row)
            for tid, number, state, row in rows]
