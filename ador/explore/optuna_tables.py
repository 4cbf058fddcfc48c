"""Optuna's database tables (the schema of optuna < 6) as SQLAlchemy Core tables, for reading.

Optuna declares its tables as ORM models (``optuna.storages._rdb.models``), whose import brings in
SQLAlchemy's ORM: about a tenth of a second of a command that only reads a study with a few
queries. These are the same tables, column for column and type for type (how a stored value
decodes is ador/explore/stored_table.py's ``stored_number``); ador's writer
(ador/explore/recorder.py) and Optuna's storage keep using the models.
tests/test_read_storage.py holds every table, column and type equal to the models'.
"""
from __future__ import annotations

from optuna.study import StudyDirection
from optuna.trial import TrialState
from sqlalchemy import Column, DateTime, Enum, Float, Integer, MetaData, String, Table, Text

_KEY = 512                  # Optuna's MAX_INDEXED_STRING_LENGTH
_DOUBLE = 53                # Optuna's FLOAT_PRECISION: a double
# how a value (an objective's, or an intermediate one) is stored: a number, or one of the kinds a
# database cannot hold (the number is then NULL)
VALUE_KINDS = ("FINITE", "INF_POS", "INF_NEG")
INTERMEDIATE_KINDS = (*VALUE_KINDS, "NAN")

META = MetaData()


def _attributes(name: str, owner: str) -> None:
    Table(name, META, Column(f"{name[:-1]}_id", Integer, primary_key=True), Column(f"{owner}_id", Integer),
          Column("key", String(_KEY)), Column("value_json", Text()))


Table("studies", META, Column("study_id", Integer, primary_key=True),
      Column("study_name", String(_KEY), nullable=False))
Table("version_info", META, Column("version_info_id", Integer, primary_key=True, autoincrement=False),
      Column("schema_version", Integer), Column("library_version", String(256)))
Table("study_directions", META, Column("study_direction_id", Integer, primary_key=True),
      Column("direction", Enum(StudyDirection), nullable=False), Column("study_id", Integer, nullable=False),
      Column("objective", Integer, nullable=False))
_attributes("study_system_attributes", "study")
_attributes("study_user_attributes", "study")
Table("trials", META, Column("trial_id", Integer, primary_key=True), Column("number", Integer),
      Column("study_id", Integer), Column("state", Enum(TrialState), nullable=False),
      Column("datetime_start", DateTime), Column("datetime_complete", DateTime))
Table("trial_heartbeats", META, Column("trial_heartbeat_id", Integer, primary_key=True),
      Column("trial_id", Integer, nullable=False), Column("heartbeat", DateTime, nullable=False))
Table("trial_intermediate_values", META, Column("trial_intermediate_value_id", Integer, primary_key=True),
      Column("trial_id", Integer, nullable=False), Column("step", Integer, nullable=False),
      Column("intermediate_value", Float(precision=_DOUBLE)),
      Column("intermediate_value_type", Enum(*INTERMEDIATE_KINDS, name="trialintermediatevaluetype"),
             nullable=False))
Table("trial_params", META, Column("param_id", Integer, primary_key=True), Column("trial_id", Integer),
      Column("param_name", String(_KEY)), Column("param_value", Float(precision=_DOUBLE)),
      Column("distribution_json", Text()))
_attributes("trial_system_attributes", "trial")
_attributes("trial_user_attributes", "trial")
Table("trial_values", META, Column("trial_value_id", Integer, primary_key=True),
      Column("trial_id", Integer, nullable=False), Column("objective", Integer, nullable=False),
      Column("value", Float(precision=_DOUBLE)),
      Column("value_type", Enum(*VALUE_KINDS, name="trialvaluetype"), nullable=False))

TABLES: dict[str, Table] = dict(META.tables)
# every table of an Optuna database (alembic's included)
TABLE_NAMES = frozenset(TABLES) | {"alembic_version"}
