"""Ratios between GPUs measured by one benchmark, against the same ratios predicted.

Every answer ador gives is a ratio ("N x an H100"). Where one benchmark ran the same model, stack,
layout, lengths and load on two GPUs (SemiAnalysis InferenceX: ``serving-inferencex.csv``), the
measured ratio of a metric between them can be set beside the simulator's: the error of a ratio is
``predicted ratio / measured ratio - 1``, which an error common to both GPUs (a stack's overheads,
the client's lengths) cancels out of, and a difference in how the two GPUs are priced does not.

    python -c "from ador.validation import ratios; ratios.update_doc('docs/serving.md')"
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ador.validation.data import DEFAULT_DATA

DATA = "serving-inferencex.csv"
# (GPU, against GPU): the question a user asks of each pair
PAIRS = (("b200-sxm-192gb", "h200-sxm-141gb"), ("h200-sxm-141gb", "h100-sxm-80gb"),
         ("mi300x-192gb", "h200-sxm-141gb"), ("b200-sxm-192gb", "h100-sxm-80gb"),
         ("h100-sxm-80gb", "a100-sxm-80gb"), ("mi300x-192gb", "h100-sxm-80gb"))
FAMILIES = {"TPOT (mean, median, p99)": ("tpot_mean_ms", "tpot_p50_ms", "tpot_p99_ms"),
            "TTFT (mean, median, p99)": ("ttft_mean_ms", "ttft_p50_ms", "ttft_p99_ms"),
            "output tokens/s": ("output_tok_s",)}
DOC_COMMAND = 'python -c "from ador.validation import ratios; ratios.update_doc(\'docs/serving.md\')"'


def _run_key(row: Any) -> tuple:
    """What two GPUs' rows must share to be one benchmark run on each: the run (``workload``) but the
    GPU and the build of its stack (each GPU runs its vendor's build: vLLM for ROCm on an MI300X). A
    row's ``trace`` is part of its run: its output lengths are what the model wrote on that GPU, so
    traced runs pair only where both replay one file."""
    software, _hardware, *run = row.workload()
    return (software.split()[0].lower(), *run, row.metric)


def pair_errors(results: Iterable[Any], gpu: str, base: str) -> dict[str, list[tuple[float, float]]]:
    """(measured ratio, predicted ratio) of ``gpu`` over ``base`` for each metric, over the runs both
    GPUs ran (``results``: rows of ``validate_serving``; rows without a prediction are skipped)."""
    by: dict[str, dict[tuple, Any]] = {gpu: {}, base: {}}
    for r in results:
        if r.row.hardware in by and r.predicted is not None:
            by[r.row.hardware][_run_key(r.row)] = r
    out: dict[str, list[tuple[float, float]]] = {}
    for key, a in by[gpu].items():
        b = by[base].get(key)
        if b is not None:
            out.setdefault(a.row.metric, []).append((a.row.value / b.row.value, a.predicted / b.predicted))
    return out


def ratio_error_pct(measured: float, predicted: float) -> float:
    return 100.0 * (predicted / measured - 1.0)


def summary(results: Sequence[Any], families: Mapping[str, tuple[str, ...]] = FAMILIES) -> list[dict[str, Any]]:
    """One line per (pair, metric family): runs, the median measured and predicted ratio, and the
    mean absolute and the median error of the ratio, in percent."""
    lines = []
    for gpu, base in PAIRS:
        errors = pair_errors(results, gpu, base)
        for family, metrics in families.items():
            pairs = [p for m in metrics for p in errors.get(m, [])]
            if not pairs:
                continue
            errs = [ratio_error_pct(m, p) for m, p in pairs]
            lines.append({"gpu": gpu, "base": base, "family": family, "n": len(pairs),
                          "measured_ratio": statistics.median(m for m, _ in pairs),
                          "predicted_ratio": statistics.median(p for _, p in pairs),
                          "mape_pct": statistics.fmean(abs(e) for e in errs),
                          "median_error_pct": statistics.median(errs)})
    return lines


def table(lines: Sequence[dict[str, Any]]) -> str:
    out = ["| GPU / against | metric (same run on both) | pairs | measured ratio (median) | predicted (median) "
           "| ratio error: mean abs | median |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for x in lines:
        out.append(f"| {x['gpu']} / {x['base']} | {x['family']} | {x['n']} | {x['measured_ratio']:.2f} | "
                   f"{x['predicted_ratio']:.2f} | {x['mape_pct']:.1f}% | {x['median_error_pct']:+.1f}% |")
    return "\n".join(out)


def shipped_results() -> list[Any]:
    from ador.validation.serving import load_serving, validate_serving
    return list(validate_serving(load_serving(DEFAULT_DATA.parent / DATA)).rows)


def update_doc(path: str | Path) -> None:
    """Rewrite the generated ratio table of ``path`` from the shipped InferenceX rows."""
    from ador.markdown import update_section
    update_section(Path(path), DOC_COMMAND, table(summary(shipped_results())))
