"""Causal prefill attention measured on a GPU (``benchmarks/gpu_attention.py``) against the shape of
the model's pricing of the same operator, and against a candidate the model does not use.

The model prices a prefill attention's tensor-core time as its FLOPs at the dense peak times a fill:
FlashAttention's thread blocks (``GPU_ATTN_BLOCK_M`` query rows of one head) in whole waves over the
SMs (``ador.perf.gpu.prefill_attention_fill``). Causal blocks are not equal: the last query block
of a prompt sees every key, the first only its own. The candidate (``causal_tail_fill``) says so: the blocks' work
spread evenly over the SMs plus a share (``CAUSAL_TAIL``, chosen on this sweep) of the heaviest
block's (the heaviest rows are issued last in each head's grid order, so part of one is left when
the others are done), and never less than the heaviest block alone. Held out like the other own
measurements: nothing is fitted to them; per kernel, an efficiency and a fixed cost are fitted to
the sweep only to judge the shape.
``python -m benchmarks.attention_fit`` refits the public rows with either rule.

    python -c "from ador.validation import attention as a
    print(a.sweep_table(a.sweep('ador/data/own/attention-h100.json', 'h100-sxm-80gb')))"
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ador.errors import ConfigError
from ador.markdown import span
from ador.hardware import PRESETS
from ador.hardware.devices import GpuSpec
from ador.perf import gpu as gpu_model
from ador.validation.gemm import shape_fit
from ador.workload import get_model, get_precision, prefill
from ador.workload.ops import ATTENTION, Op

MODEL = "llama-3-70b"        # the sweep's heads are its 64 query heads over TP 8, 2, 1 (8 KV heads)
PRECISION = "bf16"
ATTENTION_FILES = (("attention-h100.json", "h100-sxm-80gb"), ("attention-h200.json", "h200-sxm-141gb"))
RULES = ("whole waves (the model)", "causal tail (candidate)")


def model_op(s: int, heads: int) -> Op:
    """The model's attention operator of one prompt of ``s`` tokens on a device holding ``heads``
    of the model's query heads (its TP shard)."""
    model = get_model(MODEL)
    if heads <= 0 or model.n_heads % heads:
        raise ConfigError("heads", heads, f"not {MODEL}'s {model.n_heads} query heads over a TP size")
    op = next(o for o in prefill(model, get_precision(PRECISION), model.n_heads // heads, 1, s)
              if o.kind == ATTENTION)
    if (op.m, op.groups) != (s, heads):
        raise ConfigError("heads", heads, f"the model's attention at TP {model.n_heads // heads} has "
                                          f"{op.groups} heads of {op.m} queries")
    return op


# The share of the heaviest block's work the candidate leaves as a tail once the rest is spread over
# the SMs. Not derived: chosen on the sweep it is judged on (cuDNN's best of ``TAIL_SHARES``;
# FlashAttention-2 fits larger ones better: ``figures``), so the candidate carries a third constant.
CAUSAL_TAIL = 0.5
TAIL_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def causal_tail_fill(gpu: GpuSpec, op: Op, tail: float = CAUSAL_TAIL) -> float:
    """The candidate fill of a causal prefill attention (module docstring). In units of key rows:
    the heaviest block sees ``op.n + (op.m - 1) / 2`` keys (the mean ``op.n`` plus half the prompt,
    context included: the prompt's last rows), the blocks' mean ``op.n``. A sliding-window model's
    heaviest block sees its window instead, which this does not know (no swept shape has one)."""
    block_fill, blocks = gpu_model.attention_blocks(op)
    heaviest = op.n + (op.m - 1) / 2
    even = blocks * op.n / gpu.sm_count
    return block_fill * even / max(heaviest, even + tail * heaviest)


def sweep(path: str | Path, hardware: str, fills: dict[str, Callable[[GpuSpec, Op], float]] | None = None
          ) -> dict[str, Any]:
    """How well each rule (``fills``, name -> fill; default the model's and the candidate) explains a
    sweep: per kernel (``backend``), each row priced as a x tensor-core time at the rule's fill + b,
    a and b minimising the squared relative error; reported: the efficiency 1/a (of the dense bf16
    peak), the fixed cost b, the mean absolute percentage error overall and by head count, the worst."""
    import numpy as np
    device = PRESETS.get(hardware)
    if not isinstance(device, GpuSpec):
        raise ConfigError("hardware", hardware, "not a GPU preset")
    data = json.loads(Path(path).read_text())
    rows = data["rows"]
    precision = get_precision(PRECISION)
    peak = gpu_model.dense_peak(device, precision, attention=True)
    ops = [model_op(r["s"], r["heads"]) for r in rows]
    fills = dict(zip(RULES, (gpu_model.prefill_attention_fill, causal_tail_fill))) if fills is None else fills
    out: dict[str, Any] = {"hardware": hardware, "gpu": data.get("gpu"), "rows": len(rows), "fits": {}}
    for rule, fill in fills.items():
        times = [op.flops / (peak * fill(device, op)) for op in ops]
        fits = {}
        for backend in sorted({r["backend"] for r in rows}):
            pick = [i for i, r in enumerate(rows) if r["backend"] == backend]
            a, b, errors = shape_fit(np.array([times[i] for i in pick]), np.array([rows[i]["us"] * 1e-6 for i in pick]))
            heads = np.array([rows[i]["heads"] for i in pick])
            fits[backend] = {"n": len(pick), "efficiency": 1.0 / a, "fixed_us": b * 1e6,
                             "mape_pct": float(errors.mean()), "max_pct": float(errors.max()),
                             "by_heads": {int(h): float(errors[heads == h].mean()) for h in sorted(set(heads))}}
        out["fits"][rule] = fits
    return out


def sweep_table(report: dict[str, Any]) -> str:
    """Markdown: each rule's fit to the causal prefill attention sweep."""
    heads = sorted(next(iter(next(iter(report["fits"].values())).values()))["by_heads"])
    out = [f"Causal prefill attention on {report['hardware']} ({report['rows']} launches, bf16, batch 1, head dim "
           f"128; MAPE by query heads per device):", "",
           "| rule | kernel | launches | fitted efficiency | fixed cost us | MAPE | "
           + " | ".join(f"{h} heads" for h in heads) + " | worst |",
           "| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in heads) + " | ---: |"]
    for rule, fits in report["fits"].items():
        for backend, f in fits.items():
            out.append(f"| {rule} | {backend} | {f['n']} | {f['efficiency']:.3f} | {f['fixed_us']:.1f} | "
                       f"{f['mape_pct']:.1f}% | " + " | ".join(f"{f['by_heads'][h]:.1f}%" for h in heads)
                       + f" | {f['max_pct']:.0f}% |")
    return "\n".join(out)


DOC_COMMAND = 'python -c "from ador.validation import attention; attention.update_doc(\'docs/validation.md\')"'


def update_doc(path: str | Path) -> None:
    """Rewrite the generated attention section of ``path`` from the shipped sweeps."""
    from ador.markdown import update_section
    from ador.validation.data import DEFAULT_DATA
    update_section(Path(path), DOC_COMMAND, "\n\n".join(
        sweep_table(sweep(DEFAULT_DATA.parent / "own" / name, hardware)) for name, hardware in ATTENTION_FILES))


def _fitted_tflops_ratio(device: GpuSpec, fill: Callable[[GpuSpec, Op], float], fit: dict[str, Any],
                         s: int = 2048) -> float:
    """TFLOP/s of an ``s``-token prompt with 8 heads over one with 64, as a fitted rule prices them
    (its fill, efficiency and fixed cost)."""
    peak = gpu_model.dense_peak(device, get_precision(PRECISION), attention=True)
    few, many = model_op(s, 8), model_op(s, 64)

    def seconds(op: Op) -> float:
        return op.flops / (peak * fit["efficiency"] * fill(device, op)) + fit["fixed_us"] * 1e-6
    return (few.flops / seconds(few)) / (many.flops / seconds(many))


def figures() -> dict[str, str]:
    """The figures docs/validation.md quotes from the shipped sweeps (ranges over the GPUs and, where
    both are named together, the kernels)."""
    from functools import partial

    from ador.validation.data import DEFAULT_DATA
    fills = dict(zip(RULES, (gpu_model.prefill_attention_fill, causal_tail_fill)))
    reports, measured_ratios = [], []
    fitted_ratios: dict[str, list[float]] = {rule: [] for rule in RULES}
    tail_mape: dict[str, dict[float, list[float]]] = {"cudnn": {}, "flash": {}}
    for name, hardware in ATTENTION_FILES:
        path = DEFAULT_DATA.parent / "own" / name
        report = sweep(path, hardware)
        reports.append(report)
        device = PRESETS[hardware]
        assert isinstance(device, GpuSpec)
        rows = json.loads(path.read_text())["rows"]
        for backend in ("cudnn", "flash"):
            at = {r["heads"]: r["tflops"] for r in rows if r["backend"] == backend and r["s"] == 2048}
            measured_ratios.append(at[8] / at[64])
            for rule in RULES:
                fitted_ratios[rule].append(_fitted_tflops_ratio(device, fills[rule], report["fits"][rule][backend]))
        shares = sweep(path, hardware, {str(c): partial(causal_tail_fill, tail=c) for c in TAIL_SHARES})["fits"]
        for backend in tail_mape:
            for c in TAIL_SHARES:
                tail_mape[backend].setdefault(c, []).append(shares[str(c)][backend]["mape_pct"])
    device = PRESETS[ATTENTION_FILES[0][1]]
    assert isinstance(device, GpuSpec)
    out = {"ratio_measured": span(measured_ratios, ".2f"), "ratio_waves": span(fitted_ratios[RULES[0]], ".2f"),
           "ratio_tail": span(fitted_ratios[RULES[1]], ".2f"), "fitted": f"{device.efficiency.tensor:.2f}"}
    for backend, by_share in tail_mape.items():
        out[f"share_{backend}"] = f"{min(by_share, key=lambda c: sum(by_share[c])):g}"
    for key, rule in (("waves", RULES[0]), ("tail", RULES[1])):
        for backend in ("cudnn", "flash"):
            out[f"{key}_{backend}"] = span([r["fits"][rule][backend]["mape_pct"] for r in reports], ".1f") + "%"
    for backend in ("cudnn", "flash"):
        out[f"eff_{backend}"] = span([r["fits"][RULES[0]][backend]["efficiency"] for r in reports], ".2f")
    return out
