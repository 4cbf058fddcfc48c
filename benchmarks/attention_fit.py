"""What the public rows say about the causal prefill attention rule (docs/validation.md, "Prefill
attention").

The model fills the SMs with prefill attention's thread blocks in whole waves
(``ador.perf.gpu.prefill_attention_fill``); a sweep of causal prefill attention on an H100 and an H200
(``ador.validation.attention``) is explained better by ``causal_tail_fill``, which prices the unequal
work of causal blocks. This refits the constants (``ador calibrate --cv``, into a scratch file) with
each rule and prints each fit's in-sample, 5-fold and leave-one-source-out MAPE and by-metric errors.
About a minute and a half.

    python -m benchmarks.attention_fit
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ador.perf.gpu import prefill_attention_fill as MODEL_RULE  # the model's rule, before run() swaps it
from benchmarks.splitk_fit import _fit


def run() -> dict[str, dict[str, Any]]:
    import ador.perf.gpu as gpu
    from ador.validation.attention import RULES, causal_tail_fill
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out[RULES[0]] = _fit(Path(tmp) / "a.yaml")
        gpu.prefill_attention_fill = causal_tail_fill
        try:
            out[RULES[1]] = _fit(Path(tmp) / "b.yaml")
        finally:
            gpu.prefill_attention_fill = MODEL_RULE
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
