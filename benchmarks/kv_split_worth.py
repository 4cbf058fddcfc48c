"""What the decode-attention parallelism assumption is worth (docs/modelling.md, row "decode-attention
parallelism").

ADOR designs stream the KV cache at HBM bandwidth; a GPU does too under a runtime whose decode kernel
splits the KV sequence over thread blocks (the fitted ``tensorrt-llm`` profile, which studies use). This
prices Llama-3-70B, TP8 on 8 x A100, 2048-token prompts and 256 output tokens, with that profile and
with the same profile's kernel unsplit, and gives the mean TBT of each and their ratio per batch.

    python -c "from benchmarks import kv_split_worth; print(kv_split_worth.run())"
"""
from __future__ import annotations

import dataclasses
from typing import Any

BATCHES = (1, 8, 32, 128)


def run() -> dict[int, dict[str, Any]]:
    from ador.hardware import PRESETS, System
    from ador.hardware.runtime import get_runtime
    from ador.perf import evaluate
    from ador.workload import get_model, get_precision
    split = get_runtime("tensorrt-llm")
    unsplit = dataclasses.replace(split, decode_kv_split=False)
    model, precision = get_model("llama-3-70b"), get_precision("fp16")
    out = {}
    for batch in BATCHES:
        tbt = [evaluate(System.of(PRESETS["a100-sxm-80gb"], tp=8, devices=8, runtime=rt), model, precision,
                        batch=batch, input_len=2048, output_len=256, breakdown=False).tbt_s * 1e3
               for rt in (split, unsplit)]
        out[batch] = {"tbt_ms_split": round(tbt[0], 2), "tbt_ms_unsplit": round(tbt[1], 2),
                      "unsplit_slower_x": round(tbt[1] / tbt[0], 3)}
    return out
