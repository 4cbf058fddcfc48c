"""Rendering of the serving validation (``ador validate --serving``): text, Markdown, plot.

Computation lives in ``ador.validation.serving``; these functions only format what it returns.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ador.markdown import update_section
from ador.validation.data import stack_of

COMMAND = "ador validate --serving --update-doc docs/serving.md --plot docs/serving_validation.png"
_GITHUB = re.compile(r"github\.com/([^/]+)/([^/]+)/blob/([^/]+)/(.+)$")


def source_labels(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Short names for sources: repository, file and the stacks measured there."""
    stacks: dict[str, set[str]] = {}
    for r in rows:
        stacks.setdefault(r["source"], set()).add(_stack_version(r["software"]))
    out = {}
    for source, names in stacks.items():
        m = _GITHUB.search(source)
        where = f"{m.group(2)} {Path(m.group(4)).name}" if m else source[:40]
        out[source] = f"{where} ({', '.join(sorted(names))})"
    return out


def _stack_version(software: str) -> str:
    """``tensorrt-llm 0.14.0 (Triton ...)`` -> ``tensorrt-llm 0.14.0``; ``sglang (launch ...)`` -> ``sglang``."""
    words = software.split()
    return " ".join(words[:2]) if len(words) > 1 and words[1][:1].isdigit() else words[0] if words else ""


def _mapes(title: str, data: dict[str, float], labels: dict[str, str] | None = None,
           counts: dict[str, int] | None = None) -> list[str]:
    out = [f"| {title} | rows | MAPE |", "| --- | ---: | ---: |"]
    for k, v in data.items():
        out.append(f"| {(labels or {}).get(k, k)} | {(counts or {}).get(k, '')} | {v:.1f}% |")
    return out + [""]


def _counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        if r["predicted"] is not None:
            k = stack_of(r["software"]) if key == "software" else r[key]
            out[k] = out.get(k, 0) + 1
    return out


def text_table(report: dict[str, Any], worst: int) -> str:
    s, rows = report["summary"], report["rows"]
    labels = source_labels(rows)
    lines = [f"{'id':5} {'software':22} {'hardware':14} {'model':14} {'prec':5} {'tp':>2} {'policy':7} {'rate':>5} "
             f"{'in':>7} {'out':>7} {'metric':14} {'measured':>10} {'predicted':>10} {'error':>7}"]
    for r in rows:
        if r["predicted"] is None:
            continue
        rate = "" if r["rate_rps"] is None else f"{r['rate_rps']:g}"
        lines.append(f"{r['id']:5} {r['software'][:22]:22} {r['hardware'][:14]:14} {r['model'][:14]:14} "
                     f"{r['precision']:5} {r['tp']:>2} {r['policy']:7} {rate:>5} {r['input_mean']:7g} "
                     f"{r['output_mean']:7g} {r['metric']:14} {r['measured']:10.4g} {r['predicted']:10.4g} "
                     f"{r['error_pct']:+6.1f}%")
    lines += ["", f"MAPE {s['mape_pct']:.2f}% over {s['n']} rows from {s['n_sources']} sources "
                  f"({s['n_skipped']} not predicted, {s['n_extrapolated']} with the default runtime profile); "
                  f"source-balanced {s['mape_source_balanced_pct']:.2f}%"]
    for title, key in (("by metric", "by_metric"), ("by family", "by_family"), ("by software", "by_software"),
                       ("by hardware", "by_hardware")):
        lines.append(f"  {title}: " + ", ".join(f"{k} {v:.1f}%" for k, v in s[key].items()))
    lines.append("  by source: " + "; ".join(f"{labels.get(k, k)} {v:.1f}%" for k, v in s["by_source"].items()))
    if s["skipped_reasons"]:
        lines.append("  not predicted: " + "; ".join(f"{n} x {why}" for why, n in s["skipped_reasons"].items()))
    lines.append("  worst rows: " + ", ".join(f"{w['id']} {w['error_pct']:+.1f}%" for w in s["worst"][:worst]))
    return "\n".join(lines)


def markdown_section(report: dict[str, Any], plot_name: str | None) -> str:
    s, rows = report["summary"], report["rows"]
    labels = source_labels(rows)
    out = [f"**MAPE {s['mape_pct']:.2f}%** over {s['n']} rows from {s['n_sources']} sources "
           f"({s['n_skipped']} not predicted; {s['n_extrapolated']} predicted with the `default` runtime profile "
           f"because no fitted profile covers their stack and release). Mean of the per-source MAPEs: "
           f"{s['mape_source_balanced_pct']:.2f}%.", ""]
    out += _mapes("metric", s["by_metric"], counts=_counts(rows, "metric"))
    out += _mapes("source", s["by_source"], labels, _counts(rows, "source"))
    out += _mapes("software", s["by_software"], counts=_counts(rows, "software"))
    out += _mapes("hardware", s["by_hardware"], counts=_counts(rows, "hardware"))
    out += _mapes("policy", s["by_policy"], counts=_counts(rows, "policy"))
    if plot_name:
        out += [f"![predicted vs measured serving metrics]({plot_name})", ""]
    out += ["<details><summary>Every row</summary>", "",
            "| id | software | hardware | model | precision | tp | policy | rate | in | out | metric | measured "
            "| predicted | error |",
            "| --- | --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        if r["predicted"] is None:
            continue
        rate = "" if r["rate_rps"] is None else f"{r['rate_rps']:g}"
        out.append(f"| {r['id']} | {_stack_version(r['software'])} | {r['hardware']} | {r['model']} | "
                   f"{r['precision']} | {r['tp']} | {r['policy']} | {rate} | {r['input_mean']:g} | "
                   f"{r['output_mean']:g} | {r['metric']} | {r['measured']:.4g} | {r['predicted']:.4g} | "
                   f"{r['error_pct']:+.1f}% |")
    out += ["", "</details>"]
    return "\n".join(out)


def update_doc(path: Path, section: str, data_name: str | None = None) -> None:
    """Replace the generated section (appending it if absent); a serving file other than the shipped
    one has a section of its own, named by the path it was given as."""
    update_section(path, COMMAND if data_name is None else f"ador validate --data {data_name} --update-doc", section)


def plot(report: dict[str, Any], path: Path) -> None:
    from ador.validation.report import plot as scatter
    labels = source_labels(report["rows"])
    scatter(report, path, colour_by="source", title="ador serving simulator vs measured",
            short=lambda source: labels.get(source, source), legend_loc="lower right")
