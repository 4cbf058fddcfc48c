"""Optuna's database tables (the schema of optuna < 6): the columns ador's reads name.

Optuna declares its tables as ORM models (``optuna.storages._rdb.models``), whose import brings in
SQLAlchemy and its ORM: more than a tenth of a second of a command that only reads a study with a
few queries. ador's reads are SQL texts (ador/explore/database.py) over these tables and columns;
how a stored value decodes is ador/explore/stored_table.py's. ador's writer
(ador/explore/recorder.py) and Optuna's storage keep using the models.
tests/test_read_storage.py holds every table and column equal to the models'.
"""
from __future__ import annotations


def _attributes(owner: str, name: str) -> tuple[str, ...]:
    return (f"{name[:-1]}_id", f"{owner}_id", "key", "value_json")


COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "study_name"),
    "version_info": ("version_info_id", "schema_version", "library_version"),
    "study_directions": ("study_direction_id", "direction", "study_id", "objective"),
    "study_system_attributes": _attributes("study", "study_system_attributes"),
    "study_user_attributes": _attributes("study", "study_user_attributes"),
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_heartbeats": ("trial_heartbeat_id", "trial_id", "heartbeat"),
    "trial_intermediate_values": ("trial_intermediate_value_id", "trial_id", "step", "intermediate_value",
                                  "intermediate_value_type"),
    "trial_params": ("param_id", "trial_id", "param_name", "param_value", "distribution_json"),
    "trial_system_attributes": _attributes("trial", "trial_system_attributes"),
    "trial_user_attributes": _attributes("trial", "trial_user_attributes"),
    "trial_values": ("trial_value_id", "trial_id", "objective", "value", "value_type"),
}
# every table of an Optuna database (alembic's included)
TABLE_NAMES = frozenset(COLUMNS) | {"alembic_version"}
# how a value (an objective's, or an intermediate one) is stored: a number, or one of the kinds a
# database cannot hold (the number is then NULL); a trial's state and a study's direction are
# stored by their enum's name
VALUE_KINDS = ("FINITE", "INF_POS", "INF_NEG")
INTERMEDIATE_KINDS = (*VALUE_KINDS, "NAN")
