"""Stored parameters keep one form: a study begun from its file and one reopened from its stored
settings write the same distribution texts, and numbers read back from a database are the
doubles that were written, whatever the server's text settings."""
from __future__ import annotations

import sqlite3

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from ador.cli import main
from ador.explore.storage import open_storage
from ador.explore.stored import StoredTrials
from ador.explore.stored_columns import completed_columns

SPACE = """base: ador-example
knobs:
  systolic.count: {type: int, low: 2, high: 16, step: 2}
  links.bw_bytes_per_s_per_link: {type: categorical, choices: [25.0e+9, 50.0e+9, 100.0e+9]}
"""


def test_a_resumed_study_writes_the_distributions_its_first_run_wrote(workdir):
    """The stored settings give whole floats back as ints (JSON's canonical form): the run from the
    file must store its categorical choices the same way, or a resumed study holds two texts of one
    distribution and every whole-study read falls back to its row-by-row path."""
    (workdir / "search_spaces" / "floats.yaml").write_text(SPACE)
    study = (workdir / "studies" / "smoke.yaml").read_text().replace("search_space: smoke.yaml",
                                                                      "search_space: floats.yaml")
    (workdir / "studies" / "floats.yaml").write_text(study.replace("population_size: 20", "population_size: 8"))
    url = f"sqlite:///{workdir}/f.db"
    assert main(["study", "launch", "studies/floats.yaml", "--trials", "8", "--storage", url]) == 0
    assert main(["study", "resume", "floats", "--trials", "8", "--storage", url]) == 0
    with sqlite3.connect(workdir / "f.db") as conn:
        texts = conn.execute("SELECT param_name, COUNT(DISTINCT distribution_json), COUNT(DISTINCT trial_id) "
                             "FROM trial_params GROUP BY param_name").fetchall()
    assert {name: (n_texts, n_trials) for name, n_texts, n_trials in texts} == {
        "links.bw_bytes_per_s_per_link": (1, 16), "systolic.count": (1, 16)}
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name("floats")
    stored = StoredTrials(storage, study_id)
    assert stored._load_table() is not None          # the aggregated read, not its row-by-row fallback


def _awkward_study(url: str) -> tuple[optuna.study.Study, list[float]]:
    """Numbers whose shortest exact text has 17 digits (0.1 + 0.2 is 0.30000000000000004)."""
    numbers = [0.1 + 0.2, 1 / 3, 2 ** 0.5, 1e-7 + 1e-23]
    study = optuna.create_study(storage=open_storage(url, create=True), study_name="awkward",
                                directions=["minimize", "maximize"])
    for x in numbers:
        study.add_trial(optuna.trial.create_trial(
            params={"x": x}, distributions={"x": FloatDistribution(0.0, 2.0)}, values=[x, 2 * x],
            system_attrs={"constraints": [x - 1.0]}))
    return study, numbers


@pytest.mark.postgres
def test_folded_reads_are_exact_on_a_server_set_to_short_float_texts(pg_db):
    """PostgreSQL casts a double to its shortest exact text only with ``extra_float_digits`` >= 1
    (the default since 12); a server or role set to 0 gives 15 digits. The folded reads set it
    themselves for their transaction."""
    study, numbers = _awkward_study(pg_db.url)
    short = open_storage(pg_db.url + "?options=-c%20extra_float_digits%3D0")
    stored = StoredTrials(short, study._study_id)
    import psycopg
    with psycopg.connect(pg_db.url + "?options=-c%20extra_float_digits%3D0") as conn:    # the option holds
        assert conn.execute("SELECT (0.1::float8 + 0.2::float8)::text").fetchone() == ("0.3",)
    columns = completed_columns(stored)
    assert columns.column("x", FloatDistribution(0.0, 2.0)).tolist() == numbers
    assert columns.values[:, 0].tolist() == numbers
    assert columns.infeasibility.tolist() == [max(0.0, x - 1.0) for x in numbers]
    table = stored._load_table()
    assert table is not None
    trials = sorted((t for t in table if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    assert [t.params["x"] for t in trials] == numbers
    assert [t.values for t in trials] == [[x, 2 * x] for x in numbers]


@pytest.mark.parametrize("choices", [[2, 2.0], [25e9, 25000000000]])
def test_choices_equal_once_stored_are_one_choice_twice(choices):
    """2 and 2.0 read back from the stored settings as 2 and 2: refused when the space is read,
    not when the study is reopened."""
    from ador.errors import ConfigError
    from ador.explore.space import build_space
    with pytest.raises(ConfigError, match="choices must be distinct"):
        build_space({"base": "ador-example", "knobs": {"links.bw_bytes_per_s_per_link": {
            "type": "categorical", "choices": choices}}})
