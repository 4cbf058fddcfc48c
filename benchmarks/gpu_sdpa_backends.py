"""Which kernel PyTorch's ``scaled_dot_product_attention`` runs for a one-token decode query, and
whether any of its kernels splits a long KV sequence over thread blocks.

Run on a machine with a CUDA GPU and PyTorch (not a dependency of ador; imported here only):

    python benchmarks/gpu_sdpa_backends.py > sdpa-backends.log

For llama-3-8b's attention shape (32 query heads, 8 KV heads of dim 128) at batch 1 and 8 over 4k
and 128k cached tokens, it times one layer's decode attention called two ways -- the query heads of
a KV head grouped as its queries (what ``benchmarks/gpu_measure.py`` does) and the plain GQA call
(``enable_gqa=True``) -- under the default backend choice and under each backend alone, and prints
the KV bytes read per second and per (sequence, KV head). A kernel that splits the KV sequence reads
a batch-1 cache far faster than 8 x one block's bandwidth. Each figure: median of 20 CUDA-graph
replays of 8 layers' distinct caches (``gpu_measure.graph_replay_ms``).
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_measure import graph_replay_ms  # noqa: E402

HEADS, KV_HEADS, HEAD_DIM, LAYERS = 32, 8, 128, 8
POINTS = ((1, 4096), (1, 131072), (8, 4096), (8, 131072))


def main() -> int:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    dev, dt = torch.device("cuda"), torch.bfloat16
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(dev)}", flush=True)
    backends = {"default": None, "flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION}
    for batch, kv in POINTS:
        caches = [(torch.randn(batch, KV_HEADS, kv, HEAD_DIM, dtype=dt, device=dev),
                   torch.randn(batch, KV_HEADS, kv, HEAD_DIM, dtype=dt, device=dev)) for _ in range(LAYERS)]
        grouped = torch.randn(batch, KV_HEADS, HEADS // KV_HEADS, HEAD_DIM, dtype=dt, device=dev)
        plain = torch.randn(batch, HEADS, 1, HEAD_DIM, dtype=dt, device=dev)
        kv_bytes = 2 * batch * KV_HEADS * kv * HEAD_DIM * 2
        for call, q, gqa in (("grouped", grouped, False), ("enable_gqa", plain, True)):
            for name, backend in backends.items():
                def run(q=q, gqa=gqa, backend=backend, caches=caches):
                    for k, v in caches:
                        if backend is None:
                            F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
                        else:
                            with sdpa_kernel([backend]):
                                F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
                try:
                    ms = statistics.median(graph_replay_ms(torch, run, 20)) / LAYERS
                except RuntimeError as exc:
                    print(f"batch {batch} kv {kv} {call} {name}: not available ({str(exc).splitlines()[0][:80]})",
                          flush=True)
                    continue
                gbs = kv_bytes / (ms * 1e-3) / 1e9
                print(f"batch {batch} kv {kv} {call} {name}: {ms:.4f} ms per layer, {gbs:.0f} GB/s, "
                      f"{gbs / (batch * KV_HEADS):.1f} GB/s per (sequence, KV head)", flush=True)
        del caches
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
