"""What the public rows say about the GPU's split-K rule (docs/modelling.md, row "tiling model").

On a GPU whose GEMMs run in whole waves (``gemm_schedule: waves``: the A100, L40S and MI300X) the
model splits a GEMM's K dimension only within one wave of thread blocks
(``ador.perf.gpu.tile_utilisation``); Hopper's GEMMs are priced stream-K either way. This refits the
constants (``ador calibrate --cv``, into a scratch file) four times: with that rule, with split-K
allowed over several waves at cuBLASLt's
candidate factors (2, 3, 4, 5, 6, 8, 12, 16, 32: the splitK sequence of NVIDIA's CUDALibrarySamples
cuBLASLt ``LtSgemmSimpleAutoTuning``), a third time with every GPU's GEMMs priced stream-K, as
Hopper's were measured, and a fourth with the library picking, per GEMM, the CUTLASS SM80 tile shape
that fills the SMs best (``tile_choice``); it prints each fit's in-sample, 5-fold and
leave-one-source-out MAPE, by-metric and by-GPU errors, and the A100 rows' errors by metric. About 4
minutes.

    python -m benchmarks.splitk_fit
"""
from __future__ import annotations

import json
from typing import Any

from ador.perf.gpu import tile_utilisation as MODEL_RULE  # the model's rule, before run() swaps it
from benchmarks.refit import refits

SPLITS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 32)


def split_over_waves(gpu, m: int, n: int, k: int) -> float:
    """``tile_utilisation`` with split-K factors beyond one wave (the best of ``SPLITS``) on a GPU
    whose GEMMs run in whole waves; a stream-K GPU keeps the model's own rule."""
    from ador.perf.constants import GPU_SPLIT_K_MIN
    from ador.perf.gpu import output_tiles, whole_waves
    if gpu.gemm_schedule != "waves":
        return MODEL_RULE(gpu, m, n, k)
    tiles, padding = output_tiles(m, n)
    best = 0.0
    for s in SPLITS:
        if s > 1 and k // s < GPU_SPLIT_K_MIN:
            break
        best = max(best, whole_waves(tiles * s, gpu.sm_count))
    return padding * best


# CUTLASS's SM80 tensor-op GEMM tile shapes (threadblock M x N of the 16x8x16 bf16/fp16 kernels the
# library generates: python/cutlass_library/generator.py, GenerateSM80_TensorOp_16816)
SM80_TILES = ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128), (64, 64))


def tile_choice(gpu, m: int, n: int, k: int) -> float:
    """``tile_utilisation`` on a whole-wave GPU whose library picks, for each GEMM, the SM80 tile shape
    (``SM80_TILES``, a shorter tile when m is short, as ``output_tiles`` does) and the split-K factor
    within one wave that keep the most of the tensor cores busy; a stream-K GPU keeps the model's rule."""
    from ador.perf.constants import GPU_SPLIT_K_MIN
    from ador.perf.gpu import output_tiles, split_within_wave, whole_waves
    if gpu.gemm_schedule != "waves":
        return MODEL_RULE(gpu, m, n, k)
    chunks = max(1, k // GPU_SPLIT_K_MIN)
    best = 0.0
    for tile_m, tile_n in SM80_TILES:
        tiles, padding = output_tiles(m, n, tile_m, tile_n)
        best = max(best, whole_waves(split_within_wave(tiles, chunks, gpu.sm_count), gpu.sm_count, padding))
    return best


def stream_k_everywhere(gpu, m: int, n: int, k: int) -> float:
    """The model's rule with every GPU's GEMMs priced stream-K (as Hopper's were measured)."""
    import dataclasses
    return MODEL_RULE(dataclasses.replace(gpu, gemm_schedule="stream-k"), m, n, k)


RULES = (("the model (whole waves; Hopper and Blackwell stream-K)", MODEL_RULE),
         ("split-K over waves", split_over_waves), ("stream-K on every GPU", stream_k_everywhere),
         ("the best-filling SM80 tile shape", tile_choice))


def _headline_tbt_ratio() -> float:
    """The headline's named design's p99 TBT ratio against the A100 under the tile rule in force, the
    constants as shipped (as the headline's Sensitivity section flips the schedule)."""
    from ador.explore.config import load_study
    from ador.hardware import GPUS
    from ador.hardware.io import load_device
    from ador.headline.compare import score
    from ador.headline.plan import REFERENCE, ROLES, SYMMETRIC
    from benchmarks.study_speed import REPO
    study = load_study(REPO / "studies" / f"{ROLES[SYMMETRIC]}.yaml")
    design = load_device(REPO / "docs" / "results" / "llama3-70b-8dev-recommended.yaml")
    return score(GPUS[REFERENCE], study)["tbt_p99_ms"] / score(design, study)["tbt_p99_ms"]


def run() -> dict[str, dict[str, Any]]:
    return refits("tile_utilisation", RULES, lambda: {"headline_tbt_x": _headline_tbt_ratio()})


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
