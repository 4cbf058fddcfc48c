"""What the public rows say about the GPU's split-K rule (docs/modelling.md, row "tiling model").

On a GPU whose GEMMs run in whole waves (``gemm_schedule: waves``: the A100, L40S and MI300X) the
model splits a GEMM's K dimension only within one wave of thread blocks
(``ador.perf.gpu.tile_utilisation``); Hopper's GEMMs are priced stream-K either way. This refits the
constants (``ador calibrate --cv``, into a scratch file) three times: with that rule, with split-K
allowed over several waves at cuBLASLt's
candidate factors (2, 3, 4, 5, 6, 8, 12, 16, 32: the splitK sequence of NVIDIA's CUDALibrarySamples
cuBLASLt ``LtSgemmSimpleAutoTuning``), and a third time with every GPU's GEMMs priced stream-K, as
Hopper's were measured; it prints each fit's in-sample, 5-fold and leave-one-source-out MAPE, by-metric and
by-GPU errors, and the A100 rows' errors by metric. About 3 minutes.

    python -m benchmarks.splitk_fit
"""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from ador.perf.gpu import tile_utilisation as MODEL_RULE  # the model's rule, before run() swaps it

SPLITS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 32)
A100 = "a100-sxm-80gb"


def split_over_waves(gpu, m: int, n: int, k: int) -> float:
    """``tile_utilisation`` with split-K factors beyond one wave (the best of ``SPLITS``) on a GPU
    whose GEMMs run in whole waves; a stream-K GPU keeps the model's own rule."""
    from ador.perf.constants import GPU_SPLIT_K_MIN
    from ador.perf.gpu import output_tiles
    if gpu.gemm_schedule != "waves":
        return MODEL_RULE(gpu, m, n, k)
    tiles, padding = output_tiles(m, n)
    best = 0.0
    for s in SPLITS:
        if s > 1 and k // s < GPU_SPLIT_K_MIN:
            break
        blocks = tiles * s
        best = max(best, blocks / (-(-blocks // gpu.sm_count) * gpu.sm_count))
    return padding * best


def stream_k_everywhere(gpu, m: int, n: int, k: int) -> float:
    """The model's rule with every GPU's GEMMs priced stream-K (as Hopper's were measured)."""
    import dataclasses
    return MODEL_RULE(dataclasses.replace(gpu, gemm_schedule="stream-k"), m, n, k)


def _fit(out: Path) -> dict[str, Any]:
    """Refit under the tile rule in force, and the fit's in-sample error per GPU and, on the A100's
    rows (the headline's baseline), per metric: which rows prefer which rule."""
    from ador.cli import main
    from ador.validation.calibrate import evaluate_rows
    from ador.validation.data import load_measurements
    from ador.validation.predict import summarise
    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.redirect_stderr(io.StringIO()):
        main(["calibrate", "--cv", "--json", "--out", str(out)])
    d = json.loads(text.getvalue())
    rows = load_measurements()
    results = evaluate_rows(rows, d["values"], rows)
    a100 = summarise([r for r in results if r.row.hardware == A100])
    return {**{k: d[k] for k in ("mape_pct", "kfold_mape_pct", "loso_mape_pct", "by_metric")},
            "by_hardware": summarise(results)["by_hardware"], "a100_rows": a100["n"],
            "a100_by_metric": a100["by_metric"]}


def run() -> dict[str, dict[str, Any]]:
    import ador.perf.gpu as gpu
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["the model (whole waves; Hopper and Blackwell stream-K)"] = _fit(Path(tmp) / "a.yaml")
        for label, rule in (("split-K over waves", split_over_waves), ("stream-K on every GPU", stream_k_everywhere)):
            gpu.tile_utilisation = rule
            try:
                out[label] = _fit(Path(tmp) / f"{len(out)}.yaml")
            finally:
                gpu.tile_utilisation = MODEL_RULE
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
