"""What the public rows say about the causal prefill attention rule (docs/validation.md, "Prefill
attention").

The model fills the SMs with prefill attention's thread blocks in whole waves
(``ador.perf.gpu.prefill_attention_fill``); a sweep of causal prefill attention on an H100 and an H200
(``ador.validation.attention``) is explained better by ``causal_tail_fill``, which prices the unequal
work of causal blocks. This refits the constants (``ador calibrate --cv``, into a scratch file) with
each rule and prints each fit's in-sample, 5-fold and leave-one-source-out MAPE and by-metric errors,
and our own bf16 prefill rows' error under each rule with the constants as shipped. About a minute and a
half.

    python -m benchmarks.attention_fit
"""
from __future__ import annotations

import json
from typing import Any

from ador.perf.gpu import prefill_attention_fill as MODEL_RULE  # the model's rule, before run() swaps it
from benchmarks.refit import refits


def _own_prefill() -> dict[str, Any]:
    """MAPE of our own bf16 prefill rows (``ttft_ms``, ``prefill_shard_ms``: plain PyTorch on the
    kernels the sweep timed, held out) under the rule in force, with the constants as shipped."""
    from ador.validation.data import DEFAULT_DATA, load_measurements
    from ador.validation.predict import validate
    rows = [r for r in load_measurements(DEFAULT_DATA.parent / "measured-own-gpu.csv")
            if r.precision == "bf16" and r.metric in ("ttft_ms", "prefill_shard_ms")]
    summary = validate(rows).summary
    return {"rows": summary["n"], "mape_pct": summary["mape_pct"]}


def run() -> dict[str, dict[str, Any]]:
    from ador.validation.attention import RULES, causal_tail_fill
    return refits("prefill_attention_fill", zip(RULES, (MODEL_RULE, causal_tail_fill)),
                  lambda: {"own_prefill": _own_prefill()})


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
