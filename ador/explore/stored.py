"""Targeted reads of a stored study: counts, new trials since the last look, chosen trials.

Optuna's ``get_all_trials`` on a database loads every trial with every parameter and attribute
through its ORM (about 10 s for 4,000 trials with ador's metrics), and its trial cache keeps them
all in memory. The commands that read a study, a resume and the workers need much less: a count
by state, the objective values and feasibility of completed trials, a few whole trials (the
front, the last generations). ``StoredTrials`` issues those queries against Optuna's own tables
(the schema of optuna < 6, pinned in setup.cfg, declared in ador/explore/optuna_tables.py;
tests/test_writer_contract.py and tests/test_read_storage.py tie it to Optuna), as SQL texts that
SQLAlchemy and ``sqlite3`` both run (ador/explore/database.py), and builds
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

from ador.explore.database import Database, marks
from ador.explore.design_id import DESIGN_KEY, key_hash, design_hash, design_key
from ador.explore.storage import database_of, with_retries
from ador.explore.stored_table import TRIAL_HEAD, decode_json, local_time, stored_number, trial_state

FINISHED = (TrialState.COMPLETE, TrialState.FAIL)
CONSTRAINTS_KEY = "constraints"          # Optuna's trial system attribute (and "constraints:<name>")
FEASIBLE_ATTR = "feasible"                # ador's user attribute (trials stored without constraints)
_CHUNK = 500                              # ids per IN (...) list


def _states_sql(states: Iterable[TrialState]) -> str:
    """Trial states as the SQL literals they are stored as (their names), for ``IN (...)``; NULL,
    which matches no state, for none."""
    return ", ".join(f"'{s.name}'" for s in states) or "NULL"


COMPLETE_SQL = _states_sql((TrialState.COMPLETE,))
_FINISHED = _states_sql(FINISHED)
# the completed trials of the study, joined to an attribute or value table ``a``
DONE_SQL = f"JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = :study AND t.state = {COMPLETE_SQL}"


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
        self.db: Database | None = database_of(storage)      # None: no tables (a journal file)
        self._watermark = -1                  # finished trials with ids up to it were seen (journal ids from 0)
        self._open: set[int] = set()          # ids at or below the watermark not finished when seen
        self._dists: dict[str, BaseDistribution] = {}

    def _run(self, what: str, action):
        reset = getattr(self.storage, "remove_session", None)
        return with_retries(action, what, reset=reset)

    def _query(self, what: str, *queries: tuple[str, dict[str, Any]]) -> list[Sequence[Any]]:
        """The rows of each (SQL, parameters) of ``queries``, on one connection, retried together;
        ``:study`` is this study's id."""
        def read() -> list[Sequence[Any]]:
            assert self.db is not None
            with self.db.session() as s:
                return [s.rows(sql, {"study": self.study_id, **params}) for sql, params in queries]
        return self._run(what, read)

    # --- counts ---------------------------------------------------------------------------------

    def counts(self) -> dict[TrialState, int]:
        """Trials by state (one GROUP BY)."""
        if self.db is None:
            out: dict[TrialState, int] = {}
            for t in self.storage.get_all_trials(self.study_id, deepcopy=False):
                out[t.state] = out.get(t.state, 0) + 1
            return out
        rows, = self._query("counting trials",
                            ("SELECT state, COUNT(*) FROM trials WHERE study_id = :study GROUP BY state", {}))
        return {trial_state(s): int(n) for s, n in rows}

    def finished(self) -> int:
        c = self.counts()
        return sum(c.get(s, 0) for s in FINISHED)

    # --- new trials -----------------------------------------------------------------------------

    def new_finished(self, skip: set[int] | frozenset[int] = frozenset()) -> list[FrozenTrial]:
        """Finished trials not returned by an earlier call, whole (those in ``skip``, ids the caller
        has, are not read). ador's writers number and
        commit a study's trials in id order (under the study's lock), so a watermark finds
        them; trials another client left unfinished below it are looked at again each time."""
        if self.db is None:          # as the query below: unfinished trials passed are looked at again
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
        recheck = sorted(self._open)[:_CHUNK]
        listed, params = marks("id", recheck)
        cond = f"(trial_id > :mark OR trial_id IN ({listed}))" if recheck else "trial_id > :mark"
        rows, = self._query("reading new trials", (f"SELECT trial_id, state FROM trials WHERE study_id = :study AND "
                                                   f"{cond} ORDER BY trial_id", {"mark": self._watermark, **params}))
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
        if self.db is None:
            self.new_finished()
            return
        top, unfinished = self._query(
            "reading trial ids", ("SELECT MAX(trial_id) FROM trials WHERE study_id = :study", {}),
            (f"SELECT trial_id FROM trials WHERE study_id = :study AND state NOT IN ({_FINISHED})", {}))
        self._watermark = max(self._watermark, int(top[0][0] or 0))
        self._open.update(int(i) for i, in unfinished)

    # --- completed trials, lightly --------------------------------------------------------------

    def points(self) -> list[Point]:
        """Every completed trial's values and feasibility (Optuna's rule on its constraints; a
        trial stored without constraints falls back on its ``feasible`` attribute)."""
        if self.db is None:
            from ador.explore.record import is_feasible
            return [Point(t._trial_id, t.number, tuple(t.values), is_feasible(t))
                    for t in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.values is not None]
        def read():
            assert self.db is not None
            with self.db.session() as s:
                run = {"study": self.study_id}
                values = s.rows("SELECT t.trial_id, t.number, a.objective, a.value, a.value_type FROM trials t "
                                f"JOIN trial_values a ON t.trial_id = a.trial_id WHERE t.study_id = :study "
                                f"AND t.state = {COMPLETE_SQL}", run)
                # the worst named constraint per trial, in SQL (a JSON number casts to a float; the
                # texts that do not cast everywhere, Infinity and NaN, are flagged: both are infeasible)
                worst = s.rows("SELECT a.trial_id, MAX(CAST(a.value_json AS FLOAT)), MAX(CASE WHEN a.value_json "
                               f"IN ('Infinity', 'NaN') THEN 1 ELSE 0 END) FROM trial_system_attributes a {DONE_SQL} "
                               "AND a.key LIKE :named GROUP BY a.trial_id", {**run, "named": CONSTRAINTS_KEY + ":%"})
                lists = s.rows(f"SELECT a.trial_id, a.value_json FROM trial_system_attributes a {DONE_SQL} "
                               "AND a.key = :key", {**run, "key": CONSTRAINTS_KEY})     # Optuna's older format
                flags = s.rows(f"SELECT a.trial_id, a.value_json FROM trial_user_attributes a {DONE_SQL} "
                               "AND a.key = :key", {**run, "key": FEASIBLE_ATTR}) \
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
        if self.db is None:
            return {t._trial_id: t.system_attrs[key] for t in self.storage.get_all_trials(
                self.study_id, deepcopy=False, states=(TrialState.COMPLETE,)) if key in t.system_attrs}
        rows, = self._query("reading trial attributes", (f"SELECT a.trial_id, a.value_json FROM "
                                                         f"trial_system_attributes a {DONE_SQL} AND a.key = :key",
                                                         {"key": key}))
        return {int(i): json.loads(text) for i, text in rows}

    def param_keys(self, ids: list[int]) -> dict[int, tuple]:
        """trial id -> its parameters as (name, internal value) pairs, sorted (the design's identity)."""
        if self.db is None:
            wanted = set(ids)
            return {t._trial_id: design_key(t) for t in self.storage.get_all_trials(self.study_id, deepcopy=False)
                    if t._trial_id in wanted}
        out: dict[int, list] = {i: [] for i in ids}
        for i in range(0, len(ids), _CHUNK):
            listed, params = marks("id", ids[i:i + _CHUNK])
            rows, = self._query("reading parameters", (f"SELECT trial_id, param_name, param_value FROM trial_params "
                                                       f"WHERE trial_id IN ({listed})", params))
            for trial_id, name, value in rows:
                out[trial_id].append((name, float(value)))
        return {i: tuple(sorted(p)) for i, p in out.items()}

    def designs(self) -> dict[str, tuple[int, int]]:
        """Every finished trial's design (``design_hash``) -> (trial id, number) of its first trial.
        ador's writer stores the hash with each trial (``ador_design``): one short row per trial
        to read; trials stored without it (older ador, other clients) are hashed from their
        parameters."""
        if self.db is None:
            out: dict[str, tuple[int, int]] = {}
            for t in self.storage.get_all_trials(self.study_id, deepcopy=False, states=FINISHED):
                out.setdefault(t.system_attrs.get(DESIGN_KEY) or design_hash(t), (t._trial_id, t.number))
            return out
        finished = f"t.study_id = :study AND t.state IN ({_FINISHED})"

        def read():
            assert self.db is not None
            with self.db.session() as s:
                run = {"study": self.study_id}
                head = s.rows(f"SELECT t.trial_id, t.number FROM trials t WHERE {finished}", run)
                hashes = s.rows("SELECT a.trial_id, a.value_json FROM trial_system_attributes a JOIN trials t ON "
                                f"t.trial_id = a.trial_id WHERE {finished} AND a.key = :key",
                                {**run, "key": DESIGN_KEY})
                params: Sequence[Any] = []
                if len(hashes) < len(head):             # some trials without the hash: their parameters
                    params = s.rows("SELECT a.trial_id, a.param_name, a.param_value FROM trial_params a JOIN trials t "
                                    f"ON t.trial_id = a.trial_id WHERE {finished}", run)
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
        if self.db is None:
            found = [t for t in self.storage.get_all_trials(self.study_id, deepcopy=False) if t.number == number]
            return found[0]._trial_id if found else None
        rows, = self._query("finding a trial", ("SELECT trial_id FROM trials WHERE study_id = :study AND "
                                                "number = :number", {"number": number}))
        return int(rows[0][0]) if rows else None

    def load(self, ids: Iterable[int] | None = None, *, user_attrs: bool = True,
             states: Sequence[TrialState] | None = None, table: bool = False) -> list[FrozenTrial]:
        """Whole trials (``ids``, or every trial of the study in ``states``), in trial-number order,
        equal to what Optuna's storage returns (``user_attrs=False`` leaves those out; ``table``:
        what a table of trials shows, i.e. of the system attributes only the constraints, and no
        intermediate values)."""
        if self.db is None:
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
        from ador.explore.stored_table import load_table
        assert self.db is not None
        return load_table(self.db, self.study_id, self._dist, constraints_key=CONSTRAINTS_KEY)

    def _load(self, ids: list[int] | None, user_attrs: bool, states, table: bool) -> list[FrozenTrial]:
        where, args = "t.study_id = :study", {"study": self.study_id, "prefix": CONSTRAINTS_KEY + "%"}
        if ids is not None:
            if not ids:
                return []
            listed, found = marks("id", ids)
            where, args = f"{where} AND t.trial_id IN ({listed})", {**args, **found}
        if states is not None:
            where += f" AND t.state IN ({_states_sql(states)})"

        def rows(s, source: str, cols: str, extra: str = "") -> Sequence[Any]:
            return s.rows(f"SELECT a.trial_id, {cols} FROM {source} a JOIN trials t ON t.trial_id = a.trial_id "
                          f"WHERE {where}{extra}", args)

        def read():
            assert self.db is not None
            with self.db.session() as s:
                head = s.rows(f"SELECT {TRIAL_HEAD} FROM trials t WHERE {where}", args)
                values = rows(s, "trial_values", "a.objective, a.value, a.value_type")
                params = rows(s, "trial_params", "a.param_id, a.param_name, a.param_value, a.distribution_json")
                system = rows(s, "trial_system_attributes", "a.key, a.value_json",
                              " AND a.key LIKE :prefix" if table else "")
                user = rows(s, "trial_user_attributes", "a.key, a.value_json") if user_attrs else []
                inter = [] if table else rows(s, "trial_intermediate_values",
                                              "a.step, a.intermediate_value, a.intermediate_value_type")
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
