"""The study's table (`ador study export NAME --format`) read from the row ador stores with each
trial equals the table computed from Optuna's own reading of every trial; trials without a row
of the study's layout are read whole; the CSV writer is pandas' byte for byte."""
import dataclasses
import sqlite3

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ador.explore.config import SamplerSpec, load_study
from ador.explore import table_rows
from ador.explore.table_rows import TABLE_ROW_KEY, TableLayout
from ador.report.table import csv_text, trials_frame, trials_table


def _study(workdir, url, trials=150, sampler=None):
    from ador.explore.runner import open_study, run_trials
    study = load_study("studies/smoke.yaml")
    if sampler:
        spec = dataclasses.replace(study.spec, sampler=SamplerSpec(sampler, {}))
        study = dataclasses.replace(study, spec=spec)
    durable, _ = open_study(study, url)
    run_trials(study, durable, trials, progress=False)
    return study, durable


def _expected(study, durable) -> pd.DataFrame:
    """The table as defined, from Optuna's own reading of every trial (the formulas the table
    used before rows were stored; a knob named like a metric is ``knob:<name>``)."""
    from ador.explore.params import knob_values
    from ador.explore.pareto import front_trials
    from ador.explore.record import is_feasible, metrics_of, reasons_of, stored_metrics
    trials = sorted(durable.get_trials(deepcopy=False), key=lambda t: t.number)
    front = {t.number for t in front_trials(trials, study.directions)}
    metric_cols = list(dict.fromkeys([*study.metric_names, *stored_metrics(study)]))
    knob_col = {k: f"knob:{k}" if k in metric_cols else k for k in study.space.knobs}
    rows = []
    for t in trials:
        m = metrics_of(t)
        row = {"trial": t.number, "state": t.state.name.lower(), "feasible": is_feasible(t),
               "on_front": t.number in front, **{c: m.get(c) for c in metric_cols}}
        try:
            row.update({knob_col[k]: v for k, v in knob_values(study.space, t.params).items()})
        except KeyError:
            row.update({c: None for c in knob_col.values()})
        row["infeasible_reasons"] = "; ".join(reasons_of(t))
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial", "state", "feasible", "on_front", *metric_cols,
                                       *knob_col.values(), "infeasible_reasons"])


def _rows_in(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM trial_system_attributes WHERE key = ?",
                            (TABLE_ROW_KEY,)).fetchone()[0]


@pytest.mark.parametrize("sampler", [None, "pymoo-nsga2", "random"])
def test_the_table_from_stored_rows_is_the_table_of_every_trial(workdir, sampler):
    study, durable = _study(workdir, f"sqlite:///{workdir}/t.db", sampler=sampler)
    frame = trials_frame(study, durable)
    expected = _expected(study, durable)
    pd.testing.assert_frame_equal(frame, expected)
    assert _rows_in(workdir / "t.db") == len(frame)          # every trial written with its row
    assert frame["on_front"].sum() > 1 and (~frame["feasible"]).sum() > 0   # the case is not trivial
    pd.testing.assert_frame_equal(trials_frame(study, durable, stored=False), expected)


def test_a_study_is_read_in_folds_of_trials(workdir, monkeypatch):
    study, durable = _study(workdir, f"sqlite:///{workdir}/t.db", trials=60)
    monkeypatch.setattr(table_rows, "FOLD_TRIALS", 7)
    pd.testing.assert_frame_equal(trials_frame(study, durable), _expected(study, durable))


def test_stored_rows_are_what_the_table_shows_and_a_trial_without_one_is_read_whole(workdir):
    study, durable = _study(workdir, f"sqlite:///{workdir}/t.db")
    expected = _expected(study, durable)
    metric = study.metric_names[0]
    with sqlite3.connect(workdir / "t.db") as conn:
        # trial 3 loses its row, trial 4's row is of another layout: both read whole
        conn.execute("DELETE FROM trial_system_attributes WHERE key = ? AND trial_id = "
                     "(SELECT trial_id FROM trials WHERE number = 3)", (TABLE_ROW_KEY,))
        conn.execute("UPDATE trial_system_attributes "
                     "SET value_json = json_set(value_json, '$[0]', 'other', '$[4][0]', 999.0) "
                     "WHERE key = ? AND trial_id = (SELECT trial_id FROM trials WHERE number = 4)", (TABLE_ROW_KEY,))
        conn.commit()
        pd.testing.assert_frame_equal(trials_frame(study, durable), expected)
        # a row of the layout is read as stored: changing its metric changes the table
        conn.execute("UPDATE trial_system_attributes SET value_json = json_set(value_json, '$[4][0]', 1234.5) "
                     "WHERE key = ? AND trial_id = (SELECT trial_id FROM trials WHERE number = 5)", (TABLE_ROW_KEY,))
        conn.commit()
    frame = trials_frame(study, durable)
    assert frame.loc[frame.trial == 5, metric].item() == 1234.5
    assert frame.loc[frame.trial == 3, metric].item() == expected.loc[expected.trial == 3, metric].item()


def test_trials_of_another_client_are_in_the_table(workdir):
    """Trials Optuna's own API wrote (no row) are read whole: finished or running, with a parameter
    the search space lacks, without one it has, or a design ador scored again with better values;
    the front is marked as ``front_trials`` marks it (the first trial of a design counts)."""
    study, durable = _study(workdir, f"sqlite:///{workdir}/t.db", trials=60)
    other = optuna.load_study(study_name=study.name, storage=f"sqlite:///{workdir}/t.db")
    template = durable.get_trials()[0]
    front = [t for t in durable.get_trials() if t.number in set(_expected(study, durable).query("on_front").trial)]
    best = [min(t.values[i] for t in front) if d == "minimize" else max(t.values[i] for t in front)
            for i, d in enumerate(study.directions)]
    better = [v * (0.5 if d == "minimize" else 2.0) for v, d in zip(best, study.directions)]

    def write(params, dists, values, state=TrialState.COMPLETE):
        other.add_trial(optuna.trial.create_trial(params=params, distributions=dists, values=values, state=state,
                                                  constraints={"fits": -1.0} if values else None))
    dists = dict(template.distributions)
    write({**front[0].params, "extra": 1}, {**dists, "extra": IntDistribution(0, 3)}, better)   # another design
    partial = {k: v for k, v in front[0].params.items() if k != next(iter(dists))}
    write(partial, {k: dists[k] for k in partial}, better)
    write(partial, {k: dists[k] for k in partial}, better)                                       # the same again
    write(dict(front[0].params), dists, better)                  # a repeat of a front design, better: not counted
    running = other.ask()
    for name, dist in dists.items():
        running._suggest(name, dist)
    frame = trials_frame(study, durable)
    expected = _expected(study, durable)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame.loc[frame.trial == running.number, "state"].item() == "running"
    assert frame["on_front"].sum() >= 2
    from ador.explore.results import status         # the reading commands count the same front
    assert status(durable)["n_pareto"] == frame["on_front"].sum()


def test_the_table_on_postgresql_and_a_journal(workdir, pg_db, monkeypatch):
    study, durable = _study(workdir, pg_db.url, trials=60)
    pd.testing.assert_frame_equal(trials_frame(study, durable), _expected(study, durable))
    monkeypatch.setattr(table_rows, "FOLD_TRIALS", 7)          # several folded texts, the last one short
    pd.testing.assert_frame_equal(trials_frame(study, durable), _expected(study, durable))
    study, durable = _study(workdir, f"journal:{workdir}/t.log", trials=60)
    pd.testing.assert_frame_equal(trials_frame(study, durable), _expected(study, durable))


def test_a_knob_named_like_a_metric_gets_a_column_of_its_own():
    study = load_study("studies/llama3-70b-20rps.yaml")
    columns = TableLayout.of(study).columns
    assert "dies" in study.space.knobs and "knob:dies" in columns and "dies" in columns
    assert len(columns) == len(set(columns))


def test_a_layout_names_its_columns_and_changes_signature_with_them(workdir):
    study = load_study("studies/smoke.yaml")
    layout = TableLayout.of(study)
    assert layout.columns[:4] == ["trial", "state", "feasible", "on_front"]
    assert layout.columns[-1] == "infeasible_reasons"
    assert list(layout.knob_names) == list(study.space.knobs)
    objectives = list(reversed(study.spec.objectives))
    other = dataclasses.replace(study, spec=dataclasses.replace(study.spec, objectives=objectives))
    assert TableLayout.of(other).signature != layout.signature
    assert TableLayout.of(study) == layout


_cells = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                   st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
                   st.booleans())


@settings(max_examples=60, deadline=None)
@example([(None, "a\rb", 0.0, None, "\r"), (True, "x\ny", float("nan"), 3, 'q"')])   # what the csv module quotes
@given(st.lists(st.tuples(_cells, _cells, st.floats(allow_nan=True), st.one_of(st.none(), st.integers(0, 9)),
                          st.text(max_size=5)), min_size=0, max_size=6))
def test_csv_text_is_pandas_csv(rows):
    columns = ["a", "b,c", "f", "maybe_int", 'q"s']
    assert csv_text(columns, rows) == pd.DataFrame(rows, columns=columns).to_csv(index=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(_cells, min_size=0, max_size=5))
def test_csv_text_of_one_column_is_pandas_csv(cells):
    rows = [[c] for c in cells]
    assert csv_text(["x"], rows) == pd.DataFrame(rows, columns=["x"]).to_csv(index=False)


def test_csv_text_of_a_stored_table(workdir):
    study, durable = _study(workdir, f"sqlite:///{workdir}/t.db", trials=150)
    table = trials_table(study, durable)
    frame = table.frame()
    assert frame.isna().any().any() and (~frame["feasible"]).any()       # empty cells, both kinds of trial
    assert csv_text(table.columns, table.rows) == frame.to_csv(index=False)


def test_another_clients_trial_on_the_front_is_read_and_drawn_like_ador_s_own(workdir, capsys):
    """A plain-Optuna trial that re-reports a dominated design with values dominating every other:
    best's table, best --json, the report's picks and the plot's front all take its objectives from
    its values (it has none of ador's attributes) and count the front as front_trials does."""
    from ador.cli import main
    from ador.explore.pareto import front_trials
    from ador.explore.results import pareto_rows
    from ador.report import data as D
    url = f"sqlite:///{workdir}/t.db"
    study, durable = _study(workdir, url, trials=60)
    trials = durable.get_trials()
    front = {t.number for t in front_trials(trials, study.directions)}
    dominated = next(t for t in trials if t.state == TrialState.COMPLETE and t.number not in front
                     and all(v <= 0 for v in (t.constraints or {}).values()))
    best = [min(t.values[i] for t in trials if t.values) if d == "minimize" else
            max(t.values[i] for t in trials if t.values) for i, d in enumerate(study.directions)]
    other = optuna.load_study(study_name=study.name, storage=url)
    other.add_trial(optuna.trial.create_trial(
        params=dict(dominated.params), distributions=dict(dominated.distributions), constraints={"fits": -1.0},
        values=[v * (0.5 if d == "minimize" else 2.0) for v, d in zip(best, study.directions)]))
    newest = max(t.number for t in durable.get_trials())
    expected = {t.number for t in front_trials(durable.get_trials(), study.directions)}
    assert newest in expected
    rows = pareto_rows(study, durable)
    assert {r["trial"] for r in rows} == expected and all(r[m] is not None for r in rows for m in study.metric_names)
    plot = D.pareto_front_data(durable, *study.metric_names, study=study)
    assert {p.trial for p in plot.pareto} == expected
    assert D.recommended(study, durable)["knee"]["metrics"][study.metric_names[0]] is not None
    capsys.readouterr()
    assert main(["study", "best", study.name, "--storage", url]) == 0
    assert f"{newest:>6} " in capsys.readouterr().out
    assert main(["study", "report", study.name, "--storage", url, "--out", str(workdir / "rep")]) == 0


def test_an_empty_constraints_list_counts_as_no_constraint_in_every_reader(workdir):
    """A trial stored with Optuna's old empty ``constraints: []`` states no constraint, so its
    ``feasible`` attribute decides, in status's points as in the table and plots (is_feasible)."""
    from ador.explore.record import is_feasible
    from ador.explore.results import reader
    url = f"sqlite:///{workdir}/t.db"
    study, durable = _study(workdir, url, trials=20)
    other = optuna.load_study(study_name=study.name, storage=url)
    template = durable.get_trials()[0]
    for flag in (False, True):
        other.add_trial(optuna.trial.create_trial(
            params=dict(template.params), distributions=dict(template.distributions), values=list(template.values),
            system_attrs={"constraints": []}, user_attrs={"feasible": flag}))
    trials = durable.get_trials()
    points = {p.number: p.feasible for p in reader(durable).points()}
    assert points == {t.number: is_feasible(t) for t in trials if t.state == TrialState.COMPLETE}
    assert [points[t.number] for t in trials[-2:]] == [False, True]
