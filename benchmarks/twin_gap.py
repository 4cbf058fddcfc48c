"""What the GPU tiling model is worth against a design built like the GPU (docs/modelling.md, row
"tiling model").

``twin_of`` builds an ADOR design with a GPU's peaks, bandwidths, links, fitted matrix efficiency and
runtime profile: the two differ only in how a matrix product is tiled (thread-block tiles in waves
over the SMs on the GPU, systolic folds on the design). This prices Llama-3-70B, TP8 on 8 devices,
2048-token prompts and 256 output tokens, fp16, on the A100 and H100 presets and their twins, and
gives the mean TBT of each and the preset's time over the twin's per batch (above 1: the tiling model
alone makes the GPU slower than a design of the same resources).

    python -c "from benchmarks import twin_gap; print(twin_gap.run())"
"""
from __future__ import annotations

from typing import Any

BATCHES = (1, 32, 64, 96, 128, 160, 256)
BASELINES = ("a100-sxm-80gb", "h100-sxm-80gb")


def run() -> dict[str, dict[int, dict[str, Any]]]:
    from ador.hardware import GPUS, System
    from ador.hardware.twin import twin_of
    from ador.perf import evaluate
    from ador.workload import get_model, get_precision
    model, precision = get_model("llama-3-70b"), get_precision("fp16")
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for name in BASELINES:
        gpu = GPUS[name]
        out[name] = {}
        for batch in BATCHES:
            tbt = [evaluate(System.of(device, tp=8, devices=8), model, precision, batch=batch, input_len=2048,
                            output_len=256, breakdown=False).tbt_s * 1e3 for device in (gpu, twin_of(gpu))]
            out[name][batch] = {"tbt_ms_gpu": round(tbt[0], 2), "tbt_ms_twin": round(tbt[1], 2),
                                "gpu_over_twin": round(tbt[0] / tbt[1], 3)}
    return out
