"""A study's trials as a pandas DataFrame, and its export (`ador study export NAME --format`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ador.errors import ConfigError
from ador.explore.pareto import front_trials
from ador.explore.record import is_feasible, metrics_of, reasons_of, stored_metrics

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ador.explore.config import Study

FORMATS = ("csv", "json", "parquet")


def trials_frame(study: Study, durable: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, feasible, on_front (one of the distinct feasible Pareto
    designs), the objectives, the stored metrics, the knob values (powers of two expanded) and
    the reasons a trial is infeasible or failed."""
    import pandas as pd

    from ador.explore.params import knob_values
    from ador.explore.stored import StoredTrials
    trials = StoredTrials(durable._storage, durable._study_id).load(table=True)     # targeted reads, not the ORM
    feasible = {t.number: is_feasible(t) for t in trials}
    front = {t.number for t in front_trials(trials, study.directions, feasible=lambda t: feasible[t.number])}
    metric_cols = list(dict.fromkeys([*study.metric_names, *stored_metrics(study)]))
    knobs = list(study.space.knobs)
    rows: list[dict[str, Any]] = []
    for t in trials:
        metrics = metrics_of(t)
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower(), "feasible": feasible[t.number],
                               "on_front": t.number in front}
        row.update({m: metrics.get(m) for m in metric_cols})
        try:
            row.update(knob_values(study.space, t.params))
        except KeyError:                     # a trial of another client without every knob
            row.update({k: None for k in knobs})
        row["infeasible_reasons"] = "; ".join(reasons_of(t))
        rows.append(row)
    columns = ["trial", "state", "feasible", "on_front", *metric_cols, *knobs, "infeasible_reasons"]
    return pd.DataFrame(rows, columns=columns)


def write_frame(frame: pd.DataFrame, fmt: str, out: Path | None) -> str:
    """Write ``frame`` as ``fmt`` to ``out`` (stdout when None; parquet needs a file). Returns
    where it went."""
    if fmt not in FORMATS:
        raise ConfigError("--format", fmt, f"unknown format (known: {', '.join(FORMATS)})")
    if fmt == "parquet":
        import importlib.util
        if importlib.util.find_spec("pyarrow") is None:
            raise ConfigError("--format", "parquet", "parquet needs pyarrow: pip install pyarrow (or use csv or json)")
        if out is None:
            raise ConfigError("--format", "parquet", "parquet is binary: give --out FILE")
        frame.to_parquet(out, index=False)
        return str(out)
    text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return "stdout"
    out.write_text(text)
    return str(out)
