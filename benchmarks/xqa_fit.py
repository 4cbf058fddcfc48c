"""What pricing TensorRT-LLM 0.5-0.9's decode-kernel coverage does to the fit and to held-out rows.

    python -c "from benchmarks import xqa_fit; print(xqa_fit.run())"   # about 2 min on one core

Releases 0.7-0.9 build their grouped-query decode kernel (XQA) for 8 query heads per KV head
of dim 128 only, 0.5-0.6 none (XQA came with 0.7); other GQA shapes (Mistral-7B's 4,
Falcon-180B's 29 of dim 64) run a kernel of one thread block per query head, whose reads of one
KV head DRAM serves once and the L2 every time
(``ador.validation.kernels``, ``ador.perf.gpu.op_terms``). Fits the GPU efficiencies and runtime
profiles on the public rows (``ador/data/measured.csv``) as ``ador calibrate`` does, without that
fact and with it (what ador ships), cross-validates each (5-fold and leave-one-source-out, as
``ador calibrate --cv``), and predicts with each fit the rows no fit sees: our own H100/H200
measurements and NVIDIA NIM's published H100 rows. docs/validation.md quotes the figures; nothing
here changes the shipped calibration.
"""
from __future__ import annotations

import statistics
from typing import Any

from ador.validation import calibrate
from ador.validation.data import DEFAULT_DATA, load_measurements
from ador.validation.kernels import xqa_coverage
from ador.validation.predict import summarise

HELD_OUT = {"own_gpu": DEFAULT_DATA.parent / "measured-own-gpu.csv",
            "nim_h100": DEFAULT_DATA.parent / "measured-nim-h100.csv"}
EVALUATIONS = 8000    # as `ador calibrate`
WATCHED = ("hbm.hbm2e", "hbm.hbm3", "hbm.hbm3e", "hbm.gddr6", "dequant", "GH100.tensor_fp8")


def _fit(public: list, held_out: dict[str, list]) -> dict[str, Any]:
    compiled = calibrate.compile_rows(public)
    f = calibrate.fit(public, max_evaluations=EVALUATIONS, compiled=compiled)
    cv = calibrate.cross_validation(public)
    out: dict[str, Any] = {"public_mape_pct": round(f.mape_pct, 2),
                           "kfold_mape_pct": round(cv["kfold_mape_pct"], 2),
                           "loso_mape_pct": round(cv["loso_mape_pct"], 2),
                           "public_by_metric": {k: round(v, 1) for k, v in summarise(
                               calibrate.evaluate_rows(public, f.values, fitted_on=public))["by_metric"].items()},
                           "constants": {k: round(f.values[k], 3) for k in WATCHED if k in f.values}}
    for name, rows in held_out.items():
        results = calibrate.evaluate_rows(rows, f.values, fitted_on=public)
        out[f"{name}_mape_pct"] = round(summarise(results)["mape_pct"], 2)
        if name == "own_gpu":
            # where the held-out error sits: one bf16 layer shard's decode, by TP (signed mean, %)
            shards: dict[int, list[float]] = {}
            for r in results:
                if r.row.metric == "decode_shard_ms" and r.row.precision == "bf16" and r.error_pct is not None:
                    shards.setdefault(r.row.tp, []).append(r.error_pct)
            out["own_bf16_decode_shard_bias_pct_by_tp"] = {tp: round(statistics.fmean(e), 1)
                                                          for tp, e in sorted(shards.items())}
    return out


def run() -> dict[str, Any]:
    public = load_measurements(DEFAULT_DATA)
    held_out = {name: load_measurements(path) for name, path in HELD_OUT.items()}
    out = {}
    for name, priced in (("xqa_coverage_not_priced", False), ("xqa_coverage_priced_as_shipped", True)):
        with xqa_coverage(priced):
            out[name] = _fit(public, held_out)
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(run(), indent=1))
