"""Time causal prefill attention on a real GPU across thread-block wave boundaries; write JSON.

Run on a machine with a CUDA GPU and PyTorch (not a dependency of ador; imported here only):

    python benchmarks/gpu_attention.py --out attention-h100.json

One prompt (batch 1) of ``s`` tokens attends causally to itself, bf16, head dim 128, with the query
heads of one device's shard of Llama-3-70B at TP 8, 2 and 1 (8, 32 and 64 query heads, 8 per KV
head): ``scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)``, for ``s`` from 128
to 8,192 in steps of 128, under PyTorch's FlashAttention-2 backend and, where it runs, cuDNN's. A
FlashAttention-2 kernel runs one thread block per (query block of 128 rows, head), so a model that
quantises those blocks to whole waves over the SMs predicts a step each time ``heads x s/128``
passes a multiple of the SM count; causal blocks differ in work (block i sees i + 1 key blocks), so
the hardware's block scheduler may hide part of the tail. ``ador.validation.attention`` compares the
sweep with the model's prefill attention pricing.

Each figure: ``LAUNCHES`` launches in one CUDA graph, median of ``--repeats`` replays, divided by
the launches (``benchmarks/gpu_gemm.py``'s timer). FLOPs are counted as the model counts them:
4 x head dim x causal (query, key) pairs x heads, pairs = s (s + 1) / 2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_measure import graph_replay_ms  # noqa: E402

HEAD_DIM = 128
HEADS = (8, 32, 64)          # Llama-3-70B's 64 query heads over TP 8, 2, 1 (8 KV heads: groups of 8)
KV_GROUP = 8
SEQ = tuple(range(128, 8192 + 1, 128))
LAUNCHES = 10


def causal_flops(s: int, heads: int) -> float:
    return 4.0 * HEAD_DIM * s * (s + 1) / 2 * heads


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    parser = argparse.ArgumentParser(prog="gpu_attention")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=7, help="graph replays per shape (median taken)")
    args = parser.parse_args(argv)
    dev, dt = torch.device("cuda"), torch.bfloat16
    props = torch.cuda.get_device_properties(dev)
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, {props.name}, {props.multi_processor_count} SMs",
          flush=True)
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    rows: list[dict[str, Any]] = []
    for heads in HEADS:
        for s in SEQ:
            q = torch.randn(1, heads, s, HEAD_DIM, dtype=dt, device=dev)
            k = torch.randn(1, heads // KV_GROUP, s, HEAD_DIM, dtype=dt, device=dev)
            v = torch.randn(1, heads // KV_GROUP, s, HEAD_DIM, dtype=dt, device=dev)
            for name, backend in backends.items():
                def launches(q=q, k=k, v=v, backend=backend) -> None:
                    with sdpa_kernel([backend]):
                        for _ in range(LAUNCHES):
                            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                try:
                    ms = statistics.median(graph_replay_ms(torch, launches, args.repeats)) / LAUNCHES
                except RuntimeError as exc:
                    print(f"heads {heads} s {s} {name}: not available ({str(exc).splitlines()[0][:80]})", flush=True)
                    continue
                tflops = causal_flops(s, heads) / (ms * 1e-3) / 1e12
                rows.append(dict(backend=name, heads=heads, kv_heads=heads // KV_GROUP, s=s, head_dim=HEAD_DIM,
                                 us=ms * 1e3, tflops=tflops))
                print(f"heads {heads:2} s {s:5} {name:5}: {ms * 1e3:9.2f} us {tflops:7.1f} TFLOP/s", flush=True)
        torch.cuda.empty_cache()
    args.out.write_text(json.dumps({"gpu": props.name, "sm_count": props.multi_processor_count,
                                    "torch": torch.__version__, "cuda": torch.version.cuda,
                                    "launches": LAUNCHES, "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
