"""Opening an Optuna database only to read it, without Optuna's ``RDBStorage``.

Constructing ``RDBStorage`` imports Optuna's ORM and alembic, creates a session factory and checks
the schema through alembic's migration scripts: about 0.3 s of a command that then reads a study
in a few targeted queries (ador/explore/stored.py). ``ReadOnlyStorage`` answers the storage calls
a reading command makes (the study's id, directions and attributes; trials through
``StoredTrials``) with SQL against Optuna's tables (ador/explore/database.py: ``sqlite3`` for a
SQLite file, SQLAlchemy otherwise), and refuses every write. ``open_reader`` gives one only for a
database Optuna itself would open without writing anything: every Optuna table present,
``version_info`` filled in and the ``alembic_version`` of the installed Optuna's schema. Any
other database (an older or newer schema, a creation cut short) is left to ``RDBStorage``, whose
answers (its errors included) are unchanged. tests/test_read_storage.py holds these answers
equal to Optuna's.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Container, NoReturn

from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from ador.explore.database import Database

_REVISION = re.compile(r"^(down_)?revision\s*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


@lru_cache(maxsize=1)
def schema_head() -> str | None:
    """The alembic revision of the installed Optuna's schema (the one no migration script
    revises), read from the scripts' ``revision`` / ``down_revision`` lines without importing
    alembic, nor the storage package (which would import SQLAlchemy): its folder is found from
    where Optuna is installed. None when they do not name exactly one."""
    import importlib.util
    spec = importlib.util.find_spec("optuna")
    if spec is None or not spec.submodule_search_locations:
        return None
    revised: set[str] = set()
    seen: set[str] = set()
    for root in spec.submodule_search_locations:
        for script in (Path(root) / "storages" / "_rdb" / "alembic" / "versions").glob("*.py"):
            for down, name in _REVISION.findall(script.read_text()):
                if name:
                    (revised if down else seen).add(name)
    heads = seen - revised
    return heads.pop() if len(heads) == 1 else None


def open_reader(database: Database, tables: set[str]) -> ReadOnlyStorage | None:
    """A reader of ``database`` (whose tables are ``tables``), or None where Optuna's storage must
    open it (it would create or stamp something, or refuse the schema)."""
    from ador.explore.optuna_tables import TABLE_NAMES
    head = schema_head()
    if head is None or not TABLE_NAMES <= tables:
        return None
    with database.session() as s:
        revisions = [r for r, in s.rows("SELECT version_num FROM alembic_version")]
        infos = s.rows("SELECT COUNT(*) FROM version_info")[0][0]
    if revisions != [head] or not infos:
        return None
    return ReadOnlyStorage(database=database)


def _read_only(name: str) -> NoReturn:
    raise RuntimeError(f"storage: {name} on a storage opened for reading (a bug: writers open Optuna's storage)")


class ReadOnlyStorage(BaseStorage):
    """Optuna's storage API over an existing Optuna database, for reading (see the module)."""

    def __init__(self, *, database: Database) -> None:
        self.database = database

    def remove_session(self) -> None:
        """Drop pooled connections (before a retry: one a failure left behind is not reused)."""
        self.database.dispose()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        with self.database.session() as s:
            return list(s.rows(sql, params))

    def _first(self, missing: str, sql: str, **params: Any) -> Any:
        """The first row of ``sql``; KeyError(``missing``), as Optuna raises it, when there is none."""
        found = self._rows(sql, **params)
        if not found:
            raise KeyError(missing)
        return found[0]

    def _study(self, study_id: int) -> None:
        self.get_study_name_from_id(study_id)

    # --- studies ---------------------------------------------------------------------------------

    def get_study_id_from_name(self, study_name: str) -> int:
        return int(self._first(f"No such study {study_name}.",
                               "SELECT study_id FROM studies WHERE study_name = :name", name=study_name)[0])

    def get_study_name_from_id(self, study_id: int) -> str:
        return str(self._first(f"No study with study_id {study_id} exists.",
                               "SELECT study_name FROM studies WHERE study_id = :study", study=study_id)[0])

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        rows = self._rows("SELECT direction FROM study_directions WHERE study_id = :study ORDER BY objective",
                          study=study_id)
        if not rows:
            self._study(study_id)
        return [_direction(d) for d, in rows]

    def _attrs(self, table: str, study_id: int | None) -> dict[int, dict[str, Any]]:
        sql = f"SELECT a.study_id, a.key, a.value_json FROM {table} a"      # qualified: KEY is reserved in MySQL
        out: dict[int, dict[str, Any]] = {}
        for sid, key, text in (self._rows(sql) if study_id is None else
                               self._rows(sql + " WHERE a.study_id = :study", study=study_id)):
            out.setdefault(sid, {})[key] = json.loads(text)
        return out

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        self._study(study_id)
        return self._attrs("study_user_attributes", study_id).get(study_id, {})

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        self._study(study_id)
        return self._attrs("study_system_attributes", study_id).get(study_id, {})

    def get_all_studies(self) -> list[FrozenStudy]:
        directions: dict[int, list[StudyDirection]] = {}
        for sid, d in self._rows("SELECT study_id, direction FROM study_directions ORDER BY study_id, objective"):
            directions.setdefault(sid, []).append(_direction(d))
        user, system = self._attrs("study_user_attributes", None), self._attrs("study_system_attributes", None)
        return [FrozenStudy(study_name=name, direction=None, directions=directions.get(sid, []),
                            user_attrs=user.get(sid, {}), system_attrs=system.get(sid, {}), study_id=sid)
                for sid, name in self._rows("SELECT study_id, study_name FROM studies ORDER BY study_id")]

    # --- trials ----------------------------------------------------------------------------------

    def _trial_row(self, trial_id: int) -> tuple[int, int]:
        study_id, number = self._first(f"No trial with trial_id {trial_id} exists.",
                                       "SELECT study_id, number FROM trials WHERE trial_id = :trial", trial=trial_id)
        return int(study_id), int(number)

    def get_trial_number_from_id(self, trial_id: int) -> int:
        return self._trial_row(trial_id)[1]

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        from ador.explore.stored import StoredTrials
        found = StoredTrials(self, study_id).id_of_number(trial_number)
        if found is None:
            raise KeyError(f"No trial with trial number {trial_number} exists in study with study_id {study_id}.")
        return found

    def get_trial(self, trial_id: int) -> FrozenTrial:
        from ador.explore.stored import StoredTrials
        study_id, _ = self._trial_row(trial_id)
        return StoredTrials(self, study_id).load([trial_id])[0]

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        from ador.explore.stored import StoredTrials
        self._study(study_id)
        return StoredTrials(self, study_id).load(states=None if states is None else
                                                 [s for s in TrialState if s in states])

    # --- writes: refused -------------------------------------------------------------------------

    def create_new_study(self, directions: Any, study_name: str | None = None) -> int:
        _read_only("create_new_study")

    def delete_study(self, study_id: int) -> None:
        _read_only("delete_study")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        _read_only("set_study_user_attr")

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        _read_only("set_study_system_attr")

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        _read_only("create_new_trial")

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: Any) -> None:
        _read_only("set_trial_param")

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        _read_only("set_trial_state_values")

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        _read_only("set_trial_intermediate_value")

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        _read_only("set_trial_user_attr")

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        _read_only("set_trial_system_attr")


def _direction(value: Any) -> StudyDirection:
    return value if isinstance(value, StudyDirection) else StudyDirection[str(value)]
