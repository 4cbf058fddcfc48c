"""A study's trials as a pandas DataFrame, and its export (`ador study export NAME --format`)."""
from __future__ import annotations

import sys
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ador.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ador.explore.config import Study

FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class TrialsTable:
    """Every trial of a study as a table: column names and each column's cells (one per trial)."""
    columns: list[str]
    cells: list[Sequence[Any]]

    @property
    def rows(self) -> list[list[Any]]:
        """One row (a list) per trial."""
        return [list(r) for r in zip(*self.cells)]

    def frame(self) -> pd.DataFrame:
        import pandas as pd
        return pd.DataFrame(self.rows, columns=self.columns)


def trials_table(study: Study, durable: optuna.Study, *, stored: bool = True) -> TrialsTable:
    """One row per trial: number, state, feasible, on_front (one of the distinct feasible Pareto
    designs), the objectives, the stored metrics, the knob values (powers of two expanded) and
    the reasons a trial is infeasible or failed. Read from the rows ador stores with each trial
    (ador/explore/table_rows.py); a trial without one, or every trial when ``stored`` is False,
    is read whole and given its row by the same function."""
    from ador.explore.storage import with_retries
    from ador.explore.stored import FINISHED, StoredTrials
    from ador.explore.table_rows import TableLayout, stored_rows
    layout = TableLayout.of(study)
    reader = StoredTrials(durable._storage, durable._study_id)
    heads = with_retries(lambda: stored_rows(reader.db, reader.study_id), "reading the table",
                         reset=getattr(reader.storage, "remove_session", None)) if stored else None
    entries: list[tuple[int, Any, list[Any], tuple | None]] = []
    missing: list[int] | None = None              # ids to read whole (None: every trial)
    if heads is not None:
        missing = []
        for tid, number, state, row in heads:
            if state in FINISHED and layout.fits(row):
                entries.append((number, state, row, None))
            else:
                missing.append(tid)
        if len(missing) == len(heads):
            missing = None
    if missing is None or missing:
        whole = reader.load(missing, table=True)     # targeted reads, not the ORM
        entries += [(t.number, t.state, layout.row_of(t), layout.key_of(t)) for t in whole]
    return TrialsTable(layout.columns, layout.table(entries, study.directions))


def trials_frame(study: Study, durable: optuna.Study, *, stored: bool = True) -> pd.DataFrame:
    """``trials_table`` as a pandas DataFrame."""
    return trials_table(study, durable, stored=stored).frame()


def write_table(table: TrialsTable, fmt: str, out: Path | None) -> str:
    """Write ``table`` as ``fmt`` to ``out`` (stdout when None; parquet needs a file). Returns
    where it went. CSV is written without pandas, as pandas writes it (``csv_text``)."""
    if fmt not in FORMATS:
        raise ConfigError("--format", fmt, f"unknown format (known: {', '.join(FORMATS)})")
    if fmt == "parquet":
        import importlib.util
        if importlib.util.find_spec("pyarrow") is None:
            raise ConfigError("--format", "parquet", "parquet needs pyarrow: pip install pyarrow (or use csv or json)")
        if out is None:
            raise ConfigError("--format", "parquet", "parquet is binary: give --out FILE")
        table.frame().to_parquet(out, index=False)
        return str(out)
    text = _csv_of_columns(table.columns, table.cells) if fmt == "csv" else \
        table.frame().to_json(orient="records", indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return "stdout"
    out.write_text(text)
    return str(out)


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """``pd.DataFrame(rows, columns=columns).to_csv(index=False)``, byte for byte (a property test
    holds the two equal), without building the frame: pandas formats each cell through its own
    machinery, and importing it and building the frame cost more than the rest of a 20,000-trial
    export. A column is formatted as pandas infers its type from the values: numbers with any
    float or missing value are a float column (ints written as floats), NaN and None are empty
    cells, a text with a comma, quote or newline is quoted as the csv module quotes it. For the
    values a table holds (decoded JSON: str, bool, int within 64 bits, float, None); numpy scalars,
    larger ints or tuples are not what pandas would write."""
    return _csv_of_columns(columns, list(zip(*rows)) if rows else [()] * len(columns))


def _csv_of_columns(columns: Sequence[str], cells: Sequence[Sequence[Any]]) -> str:
    """``csv_text`` of a table given column by column (``cells``: each column's values)."""
    import csv
    import io
    import re
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(columns)
    if not cells or not len(cells[0]):
        return head.getvalue()
    cols = []
    special = re.compile('[,"\n]')         # what the csv module quotes with lineterminator "\n"
    for col in cells:
        kinds = set(map(type, col))
        out = _cells(col, kinds)
        if len(columns) > 1 and str in kinds and special.search("".join(v for v in out if type(v) is str)):
            out = ['"' + v.replace('"', '""') + '"' if type(v) is str and special.search(v) else v for v in out]
        cols.append(out)
    if len(columns) == 1:                     # the csv module's own rule for a row of one empty field
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([v] for v in cols[0])
        return head.getvalue() + text.getvalue()
    return head.getvalue() + "".join([",".join(map(str, r)) + "\n" for r in zip(*cols)])


def _cells(col: Sequence[Any], kinds: set[type]) -> Sequence[Any]:
    """One column's values (of the types ``kinds``) as pandas writes them, before quoting: by the
    type pandas infers for the column, numbers with any float or missing value are floats, NaN
    and None empty cells (so a text cell is one of the column's own texts, or empty)."""
    import math
    from functools import partial
    from operator import is_not
    if kinds <= {int, float, type(None)} and int in kinds and len(kinds) > 1:      # pandas: float64
        return ["" if v is None or v != v else float(v) for v in col]
    if kinds <= {float, type(None)} and float in kinds:
        if type(None) in kinds or any(map(math.isnan, filter(partial(is_not, None), col))):
            return ["" if v is None or v != v else v for v in col]
        return col
    if kinds != {int} and kinds != {bool}:                                            # objects, text
        return ["" if v is None or (type(v) is float and v != v) else v for v in col]
    return col
