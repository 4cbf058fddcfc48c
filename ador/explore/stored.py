"""Targeted reads of a stored study: counts, new trials since the last look, chosen trials.

Optuna's ``get_all_trials`` on a database loads every trial with every parameter and attribute
through its ORM (about 10 s for 4,000 trials with ador's metrics), and its trial cache keeps them
all in memory. The commands that read a study, a resume and the workers need much less: a count
by state, the objective values and feasibility of completed trials, a few whole trials (the
front, the last generations). ``StoredTrials`` issues those queries against Optuna's own tables
(the schema of optuna < 6, pinned in setup.cfg, declared in ador/explore/optuna_tables.py;
tests/test_writer_contract.py and tests/test_read_storage.py tie it to Optuna) and builds
``FrozenTrial`` objects equal to Optuna's own, through Optuna's storage or, for a command that
only reads, without it (ador/explore/read_storage.py). A storage without tables (the journal
file) is read through the public API instead, with the same results.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ador.explore.design_id import DESIGN_KEY, key_hash, design_hash, design_key
from ador.explore.read_storage import ReadOnlyStorage
from ador.explore.storage import RetryingStorage, with_retries
from ador.explore.stored_table import decode_json, local_time, rdb_tables, stored_number, trial_state

FINISHED = (TrialState.COMPLETE, TrialState.FAIL)
CONSTRAINTS_KEY = "constraints"          # Optuna's trial system attribute (and "constraints:<name>")
FEASIBLE_ATTR = "feasible"                # ador's user attribute (trials stored without constraints)
_CHUNK = 500                              # ids per IN (...) list


@dataclass(frozen=True)
class Point:
    """A completed trial as the front needs it: ids, objective values, feasibility."""
    trial_id: int
    number: int
    values: tuple[float, ...]
    feasible: bool


class StoredTrials:
    """Reads of one study in one storage (SQL on a database, the public API otherwise)."""

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self.storage = storage
        self.study_id = study_id
        self.engine = storage.engine if isinstance(storage, (RetryingStorage, ReadOnlyStorage)) else None
        self._watermark = -1                  # finished trials with ids up to it were seen (journal ids from 0)
        self._open: set[int] = set()          # ids at or below the watermark not finished when seen
        self._dists: dict[str, BaseDistribution] = {}

    def _run(self, what: str, action):
        reset = getattr(self.storage, "remove_session", None)
        return with_retries(action, what, reset=reset)

    # --- counts ---------------------------------------------------------------------------------

    def counts(self) -> dict[TrialState, int]:
        """Trials by state (one GROUP BY)."""
        if self.engine is None:
            out: dict[TrialState, int] = {}
            for t in self.storage.get_all_trials(self.study_id, deepcopy=False):
                out[t.state] = out.get(t.state, 0) + 1
            return out
        from sqlalchemy import func, select
        T = rdb_tables()["trials"]

        def read() -> dict[TrialState, int]:
            assert self.engine is not None
            with self.engine.connect() as conn:
                rows = conn.execute(select(T.c.state, func.count()).where(T.c.study_id == self.study_id)
                                    .group_by(T.c.state)).all()
            return {trial_state(s): int(n) for s, n in rows}
        return self._run("counting trials", read)

    def finished(self) -> int:
        c = self.counts()
        return sum(c.get(s, 0) for s in FINISHED)

    # --- new trials -----------------------------------------------------------------------------

    def new_finished(self, skip: set[int] | frozenset[int] = frozenset()) -> list[FrozenTrial]:
        """Finished trials not returned by an earlier call, whole (those in ``skip``, ids the caller
        has, are not read). ador's writers number and
        commit a study's trials in id order (under the study's lock), so a watermark finds
        them; trials another client left unfinished below it are looked at again each time."""
        if self.engine is None:          # as the query below: unfinished trials passed are looked at again
            new = []
            for t in self.storage.get_all_trials(self.study_id, deepcopy=False):
                tid = t._trial_id
                if tid <= self._watermark and tid not in self._open:
                    continue
                if t.state in FINISHED:
                    self._open.discard(tid)
                    if tid not in skip:
                        new.append(t)
                else:
                    self._open.add(tid)
                self._watermark = max(self._watermark, tid)
            return new
        from sqlalchemy import or_, select
        T = rdb_tables()["trials"]
        recheck = sorted(self._open)[:_CHUNK]

        def read() -> list[tuple[int, Any]]:
            assert self.engine is not None
            cond = T.c.trial_id > self._watermark
            if recheck:
                cond = or_(cond, T.c.trial_id.in_(recheck))
            with self.engine.connect() as conn:
                return [tuple(r) for r in conn.execute(select(T.c.trial_id, T.c.state).where(
                    T.c.study_id == self.study_id, cond).order_by(T.c.trial_id)).all()]
        rows = self._run("reading new trials", read)
        ready = []
        for trial_id, state in rows:
            if trial_state(state) in FINISHED:
                ready.append(trial_id)
                self._open.discard(trial_id)
            else:
                self._open.add(trial_id)
            self._watermark = max(self._watermark, trial_id)
        return self.load([i for i in ready if i not in skip])

    def skip_to_now(self) -> None:
        """Take every trial stored so far as seen (its data read some other way)."""
        if self.engine is None:
            self.new_finished()
            return
        from sqlalchemy import func, select
        T = rdb_tables()["trials"]

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                top = conn.execute(select(func.max(T.c.trial_id)).where(T.c.study_id == self.study_id)).scalar()
                unfinished = conn.execute(select(T.c.trial_id).where(
                    T.c.study_id == self.study_id,
                    T.c.state.notin_(list(FINISHED)))).scalars().all()
            return top, unfinished
        top, unfinished = self._run("reading trial ids", read)
        self._watermark = max(self._watermark, int(top or 0))
        self._open.update(int(i) for i in unfinished)

    # --- completed trials, lightly --------------------------------------------------------------

    def points(self) -> list[Point]:
        """Every completed trial's values and feasibility (Optuna's rule on its constraints; a
        trial stored without constraints falls back on its ``feasible`` attribute)."""
        if self.engine is None:
            from ador.explore.record import is_feasible
            return [Point(t._trial_id, t.number, tuple(t.values), is_feasible(t))
                    for t in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.values is not None]
        from sqlalchemy import Float, String, case, cast, func, select, type_coerce
        tb = rdb_tables()
        T, V, S, U = tb["trials"], tb["trial_values"], tb["trial_system_attributes"], tb["trial_user_attributes"]
        done = (T.c.study_id == self.study_id) & (T.c.state == TrialState.COMPLETE)
        named = S.c.key.startswith(CONSTRAINTS_KEY + ":")
        # the worst named constraint per trial, in SQL (a JSON number casts to a float; the texts
        # that do not cast everywhere, Infinity and NaN, are flagged: both are infeasible)
        bad = case((S.c.value_json.in_(["Infinity", "NaN"]), 1), else_=0)

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                values = conn.execute(select(T.c.trial_id, T.c.number, V.c.objective, V.c.value,
                                             type_coerce(V.c.value_type, String))     # its name, as stored
                                      .join(V, T.c.trial_id == V.c.trial_id).where(done)).all()
                worst = conn.execute(select(S.c.trial_id, func.max(cast(S.c.value_json, Float)), func.max(bad))
                                     .join(T, T.c.trial_id == S.c.trial_id).where(done, named)
                                     .group_by(S.c.trial_id)).all()
                lists = conn.execute(select(S.c.trial_id, S.c.value_json).join(T, T.c.trial_id == S.c.trial_id)
                                     .where(done, S.c.key == CONSTRAINTS_KEY)).all()     # Optuna's older format
                flags = conn.execute(select(U.c.trial_id, U.c.value_json).join(T, T.c.trial_id == U.c.trial_id)
                                     .where(done, U.c.key == FEASIBLE_ATTR)).all() \
                    if len({r[0] for r in values}) > len(worst) else []
            return values, worst, lists, flags
        values, worst_rows, lists, flags = self._run("reading completed trials", read)
        vals: dict[int, dict[int, float]] = {}
        numbers: dict[int, int] = {}
        for trial_id, number, objective, value, kind in values:
            numbers[trial_id] = number
            vals.setdefault(trial_id, {})[objective] = value if kind == "FINITE" else stored_number(value, kind)
        worst = {trial_id: (float("inf") if flagged else float(top)) for trial_id, top, flagged in worst_rows}
        for trial_id, text in lists:
            v = json.loads(text)
            if isinstance(v, list) and v:       # an empty list states no constraint: the flag decides
                worst[trial_id] = max(worst.get(trial_id, float("-inf")), max(v))
        flag = {trial_id: bool(json.loads(text)) for trial_id, text in flags}
        out = []
        for trial_id, number in sorted(numbers.items(), key=lambda kv: kv[1]):
            v = vals[trial_id]
            feasible = worst[trial_id] <= 0 if trial_id in worst else flag.get(trial_id, False)
            out.append(Point(trial_id, number, tuple(v[i] for i in range(len(v))), feasible))
        return out

    def system_attr(self, key: str) -> dict[int, Any]:
        """trial id -> one system attribute (e.g. a genetic sampler's generation) of completed trials."""
        if self.engine is None:
            return {t._trial_id: t.system_attrs[key] for t in self.storage.get_all_trials(
                self.study_id, deepcopy=False, states=(TrialState.COMPLETE,)) if key in t.system_attrs}
        from sqlalchemy import select
        tb = rdb_tables()
        T, S = tb["trials"], tb["trial_system_attributes"]

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                return conn.execute(select(S.c.trial_id, S.c.value_json).join(T, T.c.trial_id == S.c.trial_id).where(
                    T.c.study_id == self.study_id, T.c.state == TrialState.COMPLETE, S.c.key == key)).all()
        return {int(i): json.loads(text) for i, text in self._run("reading trial attributes", read)}

    def param_keys(self, ids: list[int]) -> dict[int, tuple]:
        """trial id -> its parameters as (name, internal value) pairs, sorted (the design's identity)."""
        if self.engine is None:
            wanted = set(ids)
            return {t._trial_id: design_key(t) for t in self.storage.get_all_trials(self.study_id, deepcopy=False)
                    if t._trial_id in wanted}
        from sqlalchemy import select
        P = rdb_tables()["trial_params"]

        def read(chunk):
            assert self.engine is not None
            with self.engine.connect() as conn:
                return conn.execute(select(P.c.trial_id, P.c.param_name, P.c.param_value).where(
                    P.c.trial_id.in_(chunk))).all()
        out: dict[int, list] = {i: [] for i in ids}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for trial_id, name, value in self._run("reading parameters", lambda c=chunk: read(c)):
                out[trial_id].append((name, float(value)))
        return {i: tuple(sorted(p)) for i, p in out.items()}

    def designs(self) -> dict[str, tuple[int, int]]:
        """Every finished trial's design (``design_hash``) -> (trial id, number) of its first trial.
        ador's writer stores the hash with each trial (``ador_design``): one short row per trial
        to read; trials stored without it (older ador, other clients) are hashed from their
        parameters."""
        if self.engine is None:
            out: dict[str, tuple[int, int]] = {}
            for t in self.storage.get_all_trials(self.study_id, deepcopy=False, states=FINISHED):
                out.setdefault(t.system_attrs.get(DESIGN_KEY) or design_hash(t), (t._trial_id, t.number))
            return out
        from sqlalchemy import select
        tb = rdb_tables()
        T, S, P = tb["trials"], tb["trial_system_attributes"], tb["trial_params"]
        finished = (T.c.study_id == self.study_id) & T.c.state.in_(list(FINISHED))

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                head = conn.execute(select(T.c.trial_id, T.c.number).where(finished)).all()
                hashes = conn.execute(select(S.c.trial_id, S.c.value_json).join(T, T.c.trial_id == S.c.trial_id)
                                      .where(finished, S.c.key == DESIGN_KEY)).all()
                params: Sequence[Any] = []
                if len(hashes) < len(head):             # some trials without the hash: their parameters
                    params = conn.execute(select(P.c.trial_id, P.c.param_name, P.c.param_value).join(
                        T, T.c.trial_id == P.c.trial_id).where(finished)).all()
            return head, hashes, params
        head, hashes, params = self._run("reading designs", read)
        known = {trial_id: json.loads(text) for trial_id, text in hashes}
        pairs: dict[int, list] = {}
        for trial_id, name, value in params:
            if trial_id not in known:
                pairs.setdefault(trial_id, []).append((name, float(value)))
        for trial_id, p in pairs.items():
            known[trial_id] = key_hash(tuple(sorted(p)))
        found: dict[str, tuple[int, int]] = {}
        for trial_id, number in sorted(head, key=lambda r: r[1]):
            if trial_id in known:
                found.setdefault(known[trial_id], (trial_id, number))
        return found

    # --- whole trials ---------------------------------------------------------------------------

    def number_of(self, trial_id: int) -> int | None:
        """A trial's number (None: no such trial of this study)."""
        try:
            return int(self.storage.get_trial_number_from_id(trial_id))
        except KeyError:
            return None

    def id_of_number(self, number: int) -> int | None:
        if self.engine is None:
            found = [t for t in self.storage.get_all_trials(self.study_id, deepcopy=False) if t.number == number]
            return found[0]._trial_id if found else None
        from sqlalchemy import select
        T = rdb_tables()["trials"]

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                return conn.execute(select(T.c.trial_id).where(T.c.study_id == self.study_id,
                                                              T.c.number == number)).scalar()
        found = self._run("finding a trial", read)
        return None if found is None else int(found)

    def load(self, ids: Iterable[int] | None = None, *, user_attrs: bool = True,
             states: Sequence[TrialState] | None = None, table: bool = False) -> list[FrozenTrial]:
        """Whole trials (``ids``, or every trial of the study in ``states``), in trial-number order,
        equal to what Optuna's storage returns (``user_attrs=False`` leaves those out; ``table``:
        what a table of trials shows, i.e. of the system attributes only the constraints, and no
        intermediate values)."""
        if self.engine is None:
            wanted = None if ids is None else set(ids)
            trials = self.storage.get_all_trials(self.study_id, deepcopy=False, states=states)
            return [t for t in trials if wanted is None or t._trial_id in wanted]
        if table and ids is None and states is None:
            trials = self._run("reading trials", self._load_table)
            if trials is not None:
                return trials
        if ids is not None:
            ids = list(ids)
            out: list[FrozenTrial] = []
            for i in range(0, len(ids), _CHUNK):
                out += self._load(ids[i:i + _CHUNK], user_attrs, states, table)
            return sorted(out, key=lambda t: t.number)
        return self._load(None, user_attrs, states, table)

    def _load_table(self) -> list[FrozenTrial] | None:
        """Every trial, as ``load(table=True)`` reads it, in a few aggregated queries (None: not on
        this database; ador/explore/stored_table.py)."""
        from sqlalchemy import select

        from ador.explore.stored_table import load_table
        T = rdb_tables()["trials"]
        head = select(T.c.trial_id, T.c.number, T.c.state, T.c.datetime_start,
                      T.c.datetime_complete).where(T.c.study_id == self.study_id)
        return load_table(self.engine, self.study_id, head, self._dist, constraints_key=CONSTRAINTS_KEY)

    def _load(self, ids: list[int] | None, user_attrs: bool, states, table: bool) -> list[FrozenTrial]:
        from sqlalchemy import select
        tb = rdb_tables()
        T = tb["trials"]
        where = [T.c.study_id == self.study_id]
        if ids is not None:
            if not ids:
                return []
            where.append(T.c.trial_id.in_(ids))
        if states is not None:
            where.append(T.c.state.in_(list(states)))

        def rows(conn, source, *cols, extra=()):
            return conn.execute(select(source.c.trial_id, *[source.c[c] for c in cols]).join(
                T, T.c.trial_id == source.c.trial_id).where(*where, *extra)).all()
        S = tb["trial_system_attributes"]

        def read():
            assert self.engine is not None
            with self.engine.connect() as conn:
                head = conn.execute(select(T.c.trial_id, T.c.number, T.c.state, T.c.datetime_start,
                                           T.c.datetime_complete).where(*where)).all()
                values = rows(conn, tb["trial_values"], "objective", "value", "value_type")
                params = rows(conn, tb["trial_params"], "param_id", "param_name", "param_value", "distribution_json")
                system = rows(conn, S, "key", "value_json",
                              extra=[S.c.key.startswith(CONSTRAINTS_KEY)] if table else [])
                user = rows(conn, tb["trial_user_attributes"], "key", "value_json") if user_attrs else []
                inter = [] if table else rows(conn, tb["trial_intermediate_values"], "step", "intermediate_value",
                                              "intermediate_value_type")
            return head, values, params, system, user, inter
        head, values, params, system, user, inter = self._run("reading trials", read)
        vals: dict[int, dict[int, float]] = {}
        for trial_id, objective, value, kind in values:
            vals.setdefault(trial_id, {})[objective] = stored_number(value, kind)
        ps: dict[int, list] = {}
        for row in params:
            ps.setdefault(row[0], []).append(row[1:])
        attrs: dict[str, dict[int, dict[str, Any]]] = {"system": {}, "user": {}}
        for which, found in (("system", system), ("user", user)):
            for trial_id, key, text in found:
                attrs[which].setdefault(trial_id, {})[key] = decode_json(text)
        steps: dict[int, dict[int, float]] = {}
        for trial_id, step, value, kind in inter:
            steps.setdefault(trial_id, {})[step] = stored_number(value, kind)
        out = []
        for trial_id, number, state, start, complete in head:
            p_params, p_dists = {}, {}
            for _, name, internal, text in sorted(ps.get(trial_id, ()), key=lambda r: r[0]):
                dist = self._dist(text)
                p_dists[name] = dist
                p_params[name] = dist.to_external_repr(internal)
            v = vals.get(trial_id)
            out.append(FrozenTrial(number=number, state=trial_state(state), value=None,
                                   values=[v[i] for i in range(len(v))] if v else None,
                                   datetime_start=local_time(start), datetime_complete=local_time(complete),
                                   params=p_params,
                                   distributions=p_dists, user_attrs=attrs["user"].get(trial_id, {}),
                                   system_attrs=attrs["system"].get(trial_id, {}),
                                   intermediate_values=steps.get(trial_id, {}), trial_id=trial_id))
        return sorted(out, key=lambda t: t.number)

    def _dist(self, text: str) -> BaseDistribution:
        dist = self._dists.get(text)
        if dist is None:
            dist = self._dists[text] = json_to_distribution(text)
        return dist
