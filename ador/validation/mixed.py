"""Mixed iterations measured on a GPU (``benchmarks/gpu_mixed.py``: decodes and one prompt fused
through one Llama-3-70B layer shard) against the model's price of the same iteration.

The serving simulator prices each iteration of a chunked-prefill or in-flight-batching scheduler as
the model's operators of that iteration: the decodes' and the prompt's tokens through the same
projections, decode attention over the decodes' caches, causal attention over the prompt
(``ador.workload.graph.build_iteration``). This prices one layer of such an iteration exactly as
``ador validate`` prices a ``*_shard_ms`` row (the layer's operators without collectives, no step
overhead, the fitted constants and the ``default`` profile with the kernel facts of the script's
stack), so it checks the fusion the simulator relies on: how much cheaper one fused pass is than
the decodes and the prompt run apart. Held out like the other own measurements: nothing is fitted
to them.

    python -c "from ador.validation import mixed; print(mixed.table(mixed.compare(
        'ador/data/own/mixed-h100.json')))"
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ador.errors import ConfigError
from ador.markdown import span
from ador.hardware import PRESETS, System
from ador.hardware.runtime import runtime_profiles
from ador.perf import stage_time
from ador.validation.kernels import runtime_for
from ador.validation.predict import layer_ops
from ador.workload import get_model, get_precision
from ador.workload.graph import PrefillChunk, build_iteration

PRECISION = "bf16"


def software(torch_version: str) -> str:
    """The stack the script measures, named as gpu_measure.py names it in measured-own-gpu.csv (the
    runtime's kernel facts follow the name)."""
    return f"pytorch {torch_version} (ador benchmarks/gpu_measure.py: CUDA graphs, cuBLAS, SDPA, unfused)"


MIXED_FILES = ("mixed-h100.json", "mixed-h200.json")
KINDS = ("decodes alone", "prompt alone", "mixed")


def model_ms(hardware: str, model_name: str, tp: int, decodes: int, kv: int, prompt: int,
             torch_version: str = "2.11.0+cu130") -> float:
    """The model's ms for one layer of the iteration on one device of a TP-``tp`` shard."""
    device = PRESETS.get(hardware)
    if device is None:
        raise ConfigError("hardware", hardware, "unknown hardware")
    model, precision = get_model(model_name), get_precision(PRECISION)
    runtime, _ = runtime_for(software(torch_version), runtime_profiles())
    system = System.of(device, tp=tp, devices=tp, runtime=runtime)
    ops = build_iteration(model, precision, tp, prefill=(PrefillChunk(1, prompt, 0),) if prompt else (),
                          decode_batch=decodes, decode_kv_len=kv if decodes else 0)
    return stage_time(system, precision, layer_ops(model, ops, collectives=False), breakdown=False,
                      step_overhead=False).time_s / model.n_layers * 1e3


def _kind(row: dict[str, Any]) -> str:
    return KINDS[2] if row["decodes"] and row["prompt"] else KINDS[0] if row["decodes"] else KINDS[1]


def compare(path: str | Path) -> dict[str, Any]:
    """Every measured iteration beside the model's; per kind, the mean absolute and the mean signed
    error; for the mixed ones, the fused pass over the two passes apart, measured and modelled."""
    data = json.loads(Path(path).read_text())
    hardware = data["hardware"]
    torch_version = data["environment"]["torch"]
    rows = [{**r, "model_ms": model_ms(hardware, r["model"], r["tp"], r["decodes"], r["kv"], r["prompt"],
                                       torch_version)} for r in data["rows"]]
    alone = {(r["tp"], r["decodes"], r["kv"], r["prompt"]): r for r in rows if _kind(r) != KINDS[2]}
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        errors = [(r["model_ms"] / r["median_ms"] - 1.0) * 100.0 for r in rows if _kind(r) == kind]
        by_kind[kind] = {"n": len(errors), "mape_pct": statistics.fmean(abs(e) for e in errors),
                         "bias_pct": statistics.fmean(errors)}
    fused_measured, fused_model = [], []
    for r in rows:
        if _kind(r) == KINDS[2]:
            d, p = alone[(r["tp"], r["decodes"], r["kv"], 0)], alone[(r["tp"], 0, 0, r["prompt"])]
            fused_measured.append(r["median_ms"] / (d["median_ms"] + p["median_ms"]))
            fused_model.append(r["model_ms"] / (d["model_ms"] + p["model_ms"]))
    return {"hardware": hardware, "gpu": data["environment"].get("gpu"), "rows": rows, "by_kind": by_kind,
            "fused_over_apart": {"measured": statistics.fmean(fused_measured), "model": statistics.fmean(fused_model),
                                 "n": len(fused_measured)}}


def table(report: dict[str, Any]) -> str:
    """Markdown: the model against each kind of pass, and the fusion measured and modelled."""
    f = report["fused_over_apart"]
    rows = report["rows"]
    tps = ", ".join(str(tp) for tp in sorted({r["tp"] for r in rows}))
    models = ", ".join(sorted({r["model"] for r in rows}))
    out = [f"Mixed iterations on {report['hardware']} (one {models} layer shard at TP {tps}; {len(rows)} passes):", "",
           "| passes | n | MAPE | mean error (model / measured - 1) |", "| --- | ---: | ---: | ---: |"]
    for kind, s in report["by_kind"].items():
        out.append(f"| {kind} | {s['n']} | {s['mape_pct']:.1f}% | {s['bias_pct']:+.1f}% |")
    out += ["", f"A fused pass over the decodes and the prompt run apart (mean of {f['n']}): measured "
                f"{f['measured']:.3f}, model {f['model']:.3f}."]
    return "\n".join(out)


def shipped_reports() -> list[dict[str, Any]]:
    from ador.validation.data import DEFAULT_DATA
    return [compare(DEFAULT_DATA.parent / "own" / name) for name in MIXED_FILES]


DOC_COMMAND = 'python -c "from ador.validation import mixed; mixed.update_doc(\'docs/serving.md\')"'


def update_doc(path: str | Path) -> None:
    """Rewrite the generated mixed-iteration section of ``path`` from the shipped files."""
    from ador.markdown import update_section
    update_section(Path(path), DOC_COMMAND, "\n\n".join(table(r) for r in shipped_reports()))


# the iterations TensorRT-LLM runs Llama 3.1 70B on 4 x H100 at 16 requests/s in the public serving
# rows (about 200 running decodes, each cache of 467 prompt tokens plus up to 256 outputs, beside some
# 500 prompt tokens per step): the sweep's nearest pass, and the two kinds of pass it fuses
UNDER_LOAD = (4, 256, 512, 512)


def under_load_errors_pct(report: dict[str, Any]) -> dict[str, float]:
    """The model's error on the pass nearest the loaded TensorRT-LLM iterations (``UNDER_LOAD``) and on
    its decodes and its prompt alone."""
    at = {(r["tp"], r["decodes"], r["kv"], r["prompt"]): r for r in report["rows"]}
    tp, decodes, kv, prompt = UNDER_LOAD
    keys = {KINDS[2]: UNDER_LOAD, KINDS[0]: (tp, decodes, kv, 0), KINDS[1]: (tp, 0, 0, prompt)}
    return {kind: (at[k]["model_ms"] / at[k]["median_ms"] - 1.0) * 100.0 for kind, k in keys.items()}


def figures() -> dict[str, str]:
    """The figures docs/serving.md quotes from the shipped files (ranges over the GPUs)."""
    reports = shipped_reports()
    under = [under_load_errors_pct(r) for r in reports]
    decodes = [u[KINDS[0]] for u in under]
    return {"fused_measured": span([r["fused_over_apart"]["measured"] for r in reports], ".3f"),
            "fused_model": span([r["fused_over_apart"]["model"] for r in reports], ".3f"),
            "mixed_mape": span([r["by_kind"][KINDS[2]]["mape_pct"] for r in reports], ".1f"),
            "mixed_bias": ", ".join(f"{r['by_kind'][KINDS[2]]['bias_pct']:+.1f}% on the "
                                    f"{r['hardware'].split('-')[0].upper()}" for r in reports),
            "under_mixed": span([u[KINDS[2]] for u in under], ".1f"),
            "under_prompt": span([u[KINDS[1]] for u in under], ".1f"),
            "under_decodes": span([abs(e) for e in decodes], ".1f") + ("% fast" if max(decodes) < 0 else "%")}
