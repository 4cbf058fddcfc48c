"""Time single GEMMs of Llama-3-70B's shapes on a real GPU (bf16 and fp8) and write them as JSON.

Run on a machine with a CUDA GPU and PyTorch (not a dependency of ador; imported here only):

    python benchmarks/gpu_gemm.py --out gemm-h100.json

Each shape is (tokens m, output features n, input features k) of one projection of a llama-3-70b
layer at TP 1 and TP 8 (fused QKV, attention output, fused gate/up, down), for m from 1 to 8192
tokens. bf16: ``torch.matmul``; fp8 (e4m3, per-tensor scales): ``torch._scaled_mm`` with bf16 output,
the operands already in fp8 (no quantisation kernel timed). Each figure is the median of 50 launches
inside one CUDA graph replay divided by 50 (so launch gaps are not counted), after warm-up; the weight
operand is 4 distinct copies rotated so that consecutive launches do not hit L2.
``ador/validation/gemm.py`` compares the file with the model's GEMM pricing.

``--waves`` times instead a sweep across thread-block wave boundaries: m in ``WAVE_TOKENS``, k 8192,
n from 1,024 to 8,192 in steps of 128 (bf16; fp8 at m 1,024), the same timer. A kernel that runs its
output tiles in whole waves over the SMs slows by up to half when the tile count passes a multiple
of the SM count (132 on H100 and H200: 128 x 128 tiles at m 1,024 make 8 x n/128 of them); a
persistent or stream-K kernel does not. ``ador.validation.gemm.waves`` compares the sweep with the
model's ``tile_utilisation``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

# run as a script on a bare GPU machine: the repository root goes on the path for the shared timer
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_measure import graph_replay_ms  # noqa: E402

D_MODEL, D_FF, HEADS, KV_HEADS, HEAD_DIM = 8192, 28672, 64, 8, 128     # meta-llama/Meta-Llama-3-70B config.json
TOKENS = (1, 16, 64, 256, 2048, 8192)
WAVE_TOKENS = (256, 1024, 4096)
WAVE_K = 8192
WAVE_N = tuple(range(1024, 8192 + 1, 128))
LAUNCHES = 50
COPIES = 4


def projections(tp: int) -> list[tuple[str, int, int]]:
    """(name, n, k) of the four projections of one layer's TP shard (weights of k x n)."""
    q, kv = HEADS * HEAD_DIM // tp, max(1, KV_HEADS // tp) * HEAD_DIM
    return [("qkv_proj", q + 2 * kv, D_MODEL), ("out_proj", D_MODEL, HEADS * HEAD_DIM // tp),
            ("ffn_up", 2 * D_FF // tp, D_MODEL), ("ffn_down", D_MODEL, D_FF // tp)]


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="gpu_gemm")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=7, help="graph replays per shape (median taken)")
    parser.add_argument("--waves", action="store_true", help="the wave-boundary sweep instead of the layer's shapes")
    args = parser.parse_args(argv)
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    rows: list[dict[str, Any]] = []
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if args.waves:
        return _waves(torch, dev, props, fp8, args)
    for tp in (1, 8):
        for name, n, k in projections(tp):
            weights = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k ** -0.5 for _ in range(COPIES)]
            weights8 = [w.to(fp8) for w in weights] if fp8 is not None else []
            for m in TOKENS:
                x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
                for dtype, fn in _cases(torch, x, weights, weights8, fp8):
                    try:
                        t = _time(torch, fn, args.repeats)
                    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                        print(f"skipped {name} tp{tp} m{m} {dtype}: {str(exc).splitlines()[0]}", flush=True)
                        continue
                    flops = 2.0 * m * n * k
                    rows.append(dict(op=name, tp=tp, m=m, n=n, k=k, dtype=dtype, us=t * 1e6,
                                     tflops=flops / t / 1e12))
                    print(f"{name:9} tp{tp} m={m:5} n={n:5} k={k:5} {dtype}: {t * 1e6:9.2f} us "
                          f"{flops / t / 1e12:7.1f} TFLOP/s", flush=True)
            weights, weights8 = [], []
            torch.cuda.empty_cache()
    args.out.write_text(json.dumps({"gpu": props.name, "torch": torch.__version__, "launches": LAUNCHES,
                                    "copies": COPIES, "rows": rows}, indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _waves(torch: Any, dev: Any, props: Any, fp8: Any, args: Any) -> int:
    """The wave-boundary sweep (module docstring), written as ``--out``."""
    rows: list[dict[str, Any]] = []
    k = WAVE_K
    for n in WAVE_N:
        weights = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k ** -0.5 for _ in range(COPIES)]
        weights8 = [w.to(fp8) for w in weights] if fp8 is not None else []
        for m in WAVE_TOKENS:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            for dtype, fn in _cases(torch, x, weights, weights8 if m == 1024 else [], fp8):
                t = _time(torch, fn, args.repeats)
                flops = 2.0 * m * n * k
                rows.append(dict(op="sweep", m=m, n=n, k=k, dtype=dtype, us=t * 1e6, tflops=flops / t / 1e12))
                print(f"m={m:5} n={n:5} k={k:5} {dtype}: {t * 1e6:9.2f} us {flops / t / 1e12:7.1f} TFLOP/s", flush=True)
        weights, weights8 = [], []
        torch.cuda.empty_cache()
    args.out.write_text(json.dumps({"gpu": props.name, "sm_count": props.multi_processor_count,
                                    "torch": torch.__version__, "cuda": torch.version.cuda, "launches": LAUNCHES,
                                    "copies": COPIES, "rows": rows}, indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _cases(torch: Any, x: Any, weights: list, weights8: list, fp8: Any) -> list[tuple[str, Any]]:
    """The timed launches of ``x`` times the rotated weights: bf16 ``torch.matmul``, and fp8
    ``torch._scaled_mm`` (per-tensor scales of 1, bf16 output) where fp8 copies of the weights are given."""
    cases: list[tuple[str, Any]] = [("bf16", lambda i: x @ weights[i % COPIES].T)]
    if weights8:
        x8, one = x.to(fp8), torch.ones((), device=x.device)
        cases.append(("fp8", lambda i: torch._scaled_mm(x8, weights8[i % COPIES].T, scale_a=one, scale_b=one,
                                                        out_dtype=torch.bfloat16)))
    return cases


def _time(torch: Any, fn: Any, repeats: int) -> float:
    """Seconds per launch: ``LAUNCHES`` launches captured in one CUDA graph, median of ``repeats``
    replays (three single launches warm up, one replay settles)."""
    def launches() -> None:
        for i in range(LAUNCHES):
            fn(i)

    def warm_up() -> None:
        for i in range(3):
            fn(i)
    times_ms = graph_replay_ms(torch, launches, repeats, warm_up=warm_up, settle=1)
    return statistics.median(times_ms) / 1e3 / LAUNCHES

if __name__ == "__main__":
    sys.exit(main())
