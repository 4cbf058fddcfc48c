"""How stored rows decode into trial fields, and every trial of a study as a table of trials shows
it, read in a few aggregated queries.

A study stores each metric as its own user-attribute row (ador's metrics: about 15 per trial), so
reading 20,000 trials row by row means 300,000 rows through the database driver. Here the database
folds each trial's attributes, parameters and values into one text per trial (SQLite's
``group_concat``, PostgreSQL's ``string_agg``), and Python parses one JSON object per trial. The
trials are those ``StoredTrials.load(table=True)`` gives (tests hold the two equal); any other
database, or a study whose parameter has several distributions, is read the row-by-row way.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from ador.explore.database import Database

# a trial's columns as a whole-trial read takes them, in this order
TRIAL_HEAD = "trial_id, number, state, datetime_start, datetime_complete"

FLOATS = json.JSONDecoder(parse_int=float)     # parameters and values are doubles in the database
ANY_JSON = json.JSONDecoder()

# How each database writes the parts of a JSON object: a quoted key, and a float that reads back
# exactly (SQLite's default text of a REAL keeps 15 digits; 17 round-trip; PostgreSQL's cast of a
# double is the shortest exact text).
DIALECTS = {
    "sqlite": {"agg": "group_concat({x}, ',')", "key": "json_quote({k})", "num": "printf('%!.17g', {v})"},
    "postgresql": {"agg": "string_agg({x}, ',')", "key": "to_json({k})::text", "num": "({v})::text"},
}


def object_sql(d: dict[str, str], table: str, key: str, value: str, where: str = "") -> str:
    """One row per trial of ``table``: its trial id and a JSON object of ``key`` -> ``value`` (SQL
    expressions over the row ``a``; ``key`` already a quoted JSON string)."""
    pair = f"{key} || ':' || {value}"
    return (f"SELECT a.trial_id, '{{' || {d['agg'].format(x=pair)} || '}}' FROM {table} a "
            f"JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = :study {where} GROUP BY a.trial_id")


def load_table(database: Database, study_id: int, dist_of: Callable[[str], BaseDistribution], *,
               constraints_key: str) -> list[FrozenTrial] | None:
    """The study's trials with their values, parameters, user attributes and constraint system
    attributes; None where this database has no aggregate to fold them with, or a parameter has
    more than one distribution."""
    d = DIALECTS.get(database.dialect)
    if d is None:
        return None
    num = d["num"]
    run = {"study": study_id}
    with database.session() as s:
        dists = s.rows("SELECT DISTINCT p.param_name, p.distribution_json FROM trial_params p JOIN trials t "
                       "ON t.trial_id = p.trial_id WHERE t.study_id = :study", run)
        names = [name for name, _ in dists]
        if len(names) != len(set(names)):
            return None
        head = s.rows(f"SELECT {TRIAL_HEAD} FROM trials WHERE study_id = :study", run)
        key = d["key"].format(k="a.key")
        user = dict(s.rows(object_sql(d, "trial_user_attributes", key, "a.value_json"), run))
        system = dict(s.rows(object_sql(d, "trial_system_attributes", key, "a.value_json", "AND a.key LIKE :prefix"),
                             {**run, "prefix": constraints_key + "%"}))
        params = dict(s.rows(object_sql(d, "trial_params", d["key"].format(k="a.param_name"),
                                         num.format(v="a.param_value")), run))
        # objective i -> [value, "FINITE" | "INF_POS" | "INF_NEG"] (an infinite value is stored as NULL)
        values = dict(s.rows(object_sql(
            d, "trial_values", "'\"' || a.objective || '\"'",
            f"'[' || {num.format(v='COALESCE(a.value, 0)')} || ',\"' || a.value_type || '\"]'"), run))
    by_name = {name: dist_of(text_) for name, text_ in dists}
    out = []
    for trial_id, number, state, start, complete in head:
        internal: dict[str, float] = FLOATS.decode(params[trial_id]) if trial_id in params else {}
        p_params = {name: by_name[name].to_external_repr(v) for name, v in internal.items()}
        v: dict[str, Any] = FLOATS.decode(values[trial_id]) if trial_id in values else {}
        out.append(FrozenTrial(
            number=number, state=trial_state(state), value=None,
            values=[stored_number(*v[str(i)]) for i in range(len(v))] if v else None,
            datetime_start=local_time(start), datetime_complete=local_time(complete), params=p_params,
            distributions={name: by_name[name] for name in internal},
            user_attrs=ANY_JSON.decode(user[trial_id]) if trial_id in user else {},
            system_attrs=ANY_JSON.decode(system[trial_id]) if trial_id in system else {},
            intermediate_values={}, trial_id=trial_id))
    return sorted(out, key=lambda t: t.number)


# --- stored rows to trial fields (Optuna's RDB conventions) ---------------------------------

def decode_json(text: str) -> Any:
    """``json.loads``, with a fast path for the numbers most attributes are (same types: int
    without a fraction or exponent, float otherwise, -Infinity included)."""
    if text and text[0] in "-0123456789":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    return json.loads(text)


def local_time(stored: Any) -> Any:
    """A stored trial time (naive UTC, Optuna's RDB convention) as Optuna returns it: naive local.
    SQLite gives the text SQLAlchemy wrote (``YYYY-MM-DD HH:MM:SS.ffffff``), PostgreSQL a datetime."""
    if stored is None:
        return None
    import datetime as dt
    if isinstance(stored, str):
        stored = dt.datetime.fromisoformat(stored)
    return stored.replace(tzinfo=dt.timezone.utc).astimezone().replace(tzinfo=None)


def trial_state(value: Any) -> TrialState:
    return value if isinstance(value, TrialState) else TrialState[str(value)]


_SPECIAL = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


def stored_number(number: float | None, kind: Any) -> float:
    """A value (an objective's or an intermediate one) from its stored (number, kind), as Optuna
    decodes it (``stored_repr_to_value``): a kind a database cannot hold as a number (infinite,
    NaN) ignores the number (NULL in the table, 0 in an aggregated read)."""
    name = getattr(kind, "name", kind)
    if name == "FINITE":
        assert number is not None
        return number
    return _SPECIAL[name]
