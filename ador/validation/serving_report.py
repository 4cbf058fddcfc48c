"""Rendering of the serving validation (``ador validate --serving``): text, Markdown, plot.

Computation lives in ``ador.validation.serving``; these functions only format what it returns.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ador.markdown import update_section
from ador.validation.data import stack_of
from ador.validation.predict import document
from ador.validation.serving import metric_family

COMMAND = "ador validate --serving --update-doc docs/serving.md --plot docs/serving_validation.png"
_GITHUB = re.compile(r"github\.com/([^/]+)/([^/]+)/blob/([^/]+)/(.+)$")


def source_labels(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Short names for sources: repository, file and the stacks measured there."""
    stacks: dict[str, set[str]] = {}
    for r in rows:
        stacks.setdefault(document(r["source"]), set()).add(_stack_version(r["software"]))
    out = {}
    for source, names in stacks.items():
        m = _GITHUB.search(source)
        if m:              # the file with its folder: several repositories name files alike
            file = Path(m.group(4))
            where = f"{m.group(2)} {file.parent.name + '/' if file.parent.name else ''}{file.name}"
        else:
            where = source[:40]
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


# how a row is grouped where the summary's key is not a column as it stands
_GROUP_OF = {"software": lambda r: stack_of(r["software"]), "source": lambda r: document(r["source"]),
             "family": lambda r: metric_family(r["metric"])}


def _counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    group = _GROUP_OF.get(key, lambda r: r[key])
    out: dict[str, int] = {}
    for r in rows:
        if r["predicted"] is not None:
            k = group(r)
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
    wild = unsettled(rows)
    if wild:
        lines.append(f"  unsettled (repeat interval over ±{100 * UNSETTLED_INTERVAL:.0f}%): " + "; ".join(
            f"{r['id']} {r['metric']} {r['seed_range'][0]:.4g} to {r['seed_range'][1]:.4g} over "
            f"{r['replications']} seeds (±{r['interval_pct']:.0f}%)" for r in wild))
    return "\n".join(lines)


# A replicated prediction whose 95% repeat interval is wider than this share of it: the simulated run
# is chaotic (an overloaded server whose queue one seed fills and another drains), so its error
# against the measurement says little; the reports list such rows with their seeds' range.
UNSETTLED_INTERVAL = 0.10


def unsettled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["predicted"] is not None and r.get("interval_pct") is not None
            and r["interval_pct"] > 100 * UNSETTLED_INTERVAL]


def _unsettled_table(rows: list[dict[str, Any]]) -> list[str]:
    wild = unsettled(rows)
    head = (f"**Rows the simulator cannot pin down** (95% repeat interval wider than "
            f"±{100 * UNSETTLED_INTERVAL:.0f}% after its replications, seeds 0, 1, ...): "
            f"{len(wild)} of {sum(1 for r in rows if r['predicted'] is not None)}.")
    if not wild:
        return [head, ""]
    out = [head, "", "| id | software | hardware | rate | metric | measured | predicted (mean) | seeds' range "
                     "| interval | error |", "| --- | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for r in wild:
        lo, hi = r["seed_range"]
        rate = "" if r["rate_rps"] is None else f"{r['rate_rps']:g}"
        out.append(f"| {r['id']} | {_stack_version(r['software'])} | {r['hardware']} | {rate} | {r['metric']} | "
                   f"{r['measured']:.4g} | {r['predicted']:.4g} | {lo:.4g} to {hi:.4g} over {r['replications']} "
                   f"| ±{r['interval_pct']:.0f}% | {r['error_pct']:+.1f}% |")
    return out + [""]


def _publishers(rows: list[dict[str, Any]]) -> list[str]:
    """Each publisher's rows by stack (a repository's files together): MAPE of the p99 rows and of
    the others."""
    groups: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["predicted"] is not None:
            fam = groups.setdefault(publisher_stack(r), {}).setdefault(metric_family(r["metric"]), [])
            fam.append(abs(r["error_pct"]))
    families = sorted({f for g in groups.values() for f in g})
    out = ["| publisher (stack) | " + " | ".join(f"{f}: rows | MAPE" for f in families) + " |",
           "| --- |" + " ---: | ---: |" * len(families)]
    for name, fams in sorted(groups.items()):
        cells = [f"{len(fams[f])} | {sum(fams[f]) / len(fams[f]):.1f}%" if f in fams else " | " for f in families]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out + [""]


def markdown_section(report: dict[str, Any], plot_name: str | None) -> str:
    s, rows = report["summary"], report["rows"]
    labels = source_labels(rows)
    out = [f"**MAPE {s['mape_pct']:.2f}%** over {s['n']} rows from {s['n_sources']} sources "
           f"({s['n_skipped']} not predicted; {s['n_extrapolated']} predicted with the `default` runtime profile "
           f"because no fitted profile covers their stack and release). Mean of the per-source MAPEs: "
           f"{s['mape_source_balanced_pct']:.2f}%.", ""]
    out += _mapes("metric", s["by_metric"], counts=_counts(rows, "metric"))
    out += _mapes("metric family", s["by_family"], counts=_counts(rows, "family"))
    out += _mapes("source", s["by_source"], labels, _counts(rows, "source"))
    out += _publishers(rows)
    out += _mapes("software", s["by_software"], counts=_counts(rows, "software"))
    out += _mapes("hardware", s["by_hardware"], counts=_counts(rows, "hardware"))
    out += _mapes("policy", s["by_policy"], counts=_counts(rows, "policy"))
    out += _unsettled_table(rows)
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
    """Predicted vs measured, one colour per publisher and stack (a repository's runs of one
    stack share a colour however many files hold them)."""
    from ador.validation.report import plot as scatter
    rows = [{**r, "group": publisher_stack(r)} for r in report["rows"]]
    scatter({**report, "rows": rows}, path, colour_by="group", title="ador serving simulator vs measured")


def publisher_stack(row: dict[str, Any]) -> str:
    """``owner/repository (stack)`` for a row from GitHub, else the source's start and the stack."""
    m = _GITHUB.search(document(row["source"]))
    where = f"{m.group(1)}/{m.group(2)}" if m else row["source"][:30]
    return f"{where} ({stack_of(row['software'])})"
