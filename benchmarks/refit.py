"""Refitting the public rows with one rule of the GPU model swapped for a candidate: what the public
rows say about that rule (``benchmarks/splitk_fit.py``: the GEMM tile rule; ``attention_fit.py``: the
prefill attention fill). Each refit runs ``ador calibrate --cv`` into a scratch file."""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

A100 = "a100-sxm-80gb"      # the headline's baseline: its rows are reported apart


def fit_summary(out: Path) -> dict[str, Any]:
    """Refit under the rules in force: in-sample, 5-fold and leave-one-source-out MAPE, by metric, by
    GPU, and the A100's rows by metric (which rows prefer which rule)."""
    from ador.cli import main
    from ador.validation.calibrate import evaluate_rows
    from ador.validation.data import load_measurements
    from ador.validation.predict import summarise
    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.redirect_stderr(io.StringIO()):
        main(["calibrate", "--cv", "--json", "--out", str(out)])
    d = json.loads(text.getvalue())
    rows = load_measurements()
    results = evaluate_rows(rows, d["values"], rows)
    a100 = summarise([r for r in results if r.row.hardware == A100])
    return {**{k: d[k] for k in ("mape_pct", "kfold_mape_pct", "loso_mape_pct", "by_metric")},
            "by_hardware": summarise(results)["by_hardware"], "a100_rows": a100["n"],
            "a100_by_metric": a100["by_metric"]}


def refits(rule: str, candidates: Iterable[tuple[str, Callable[..., float]]],
           extra: Callable[[], dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``ador.perf.gpu.<rule>`` replaced by each candidate in turn (label, function), the public rows
    refitted (``fit_summary``) and ``extra()`` added; the model's rule is put back whatever happens."""
    import ador.perf.gpu as gpu
    model = getattr(gpu, rule)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, candidate in candidates:
            setattr(gpu, rule, candidate)
            try:
                out[label] = {**fit_summary(Path(tmp) / f"{len(out)}.yaml"), **(extra() if extra else {})}
            finally:
                setattr(gpu, rule, model)
    return out
