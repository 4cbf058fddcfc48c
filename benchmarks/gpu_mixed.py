"""Time mixed iterations of a Llama-3-70B layer shard on a real GPU (decodes and a prompt in one
pass, as chunked-prefill and in-flight-batching schedulers run them) and write them as JSON.

Run on a machine with a CUDA GPU and PyTorch (not a dependency of ador; imported here only):

    python benchmarks/gpu_mixed.py --out mixed-h100.json

One pass of ``LAYER_COPIES`` distinct llama-3-70b layers, as the TP-``tp`` shard one device holds (no
all-reduce), over ``decodes`` sequences that each add one token to a KV cache of ``kv`` tokens and
one prompt of ``prompt`` new tokens: the tokens of both go through the same fused QKV, output,
gate/up and down projections (one GEMM each, ``decodes + prompt`` rows), decode attention runs over
the decodes' caches (SDPA, the query heads of a KV head grouped as its queries) and causal prefill
attention over the prompt (SDPA, FlashAttention or cuDNN), exactly as ``benchmarks/gpu_measure.py``
runs each kind alone (its ``Net``: bf16, cuBLAS, RMSNorm, rotate-half RoPE, unfused). ``decodes`` 0
or ``prompt`` 0 is a pass of one kind alone. Each figure is the median of ``--repeats`` CUDA-graph
replays divided by the layers. ``ador.validation.mixed`` prices the same iterations with the model.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_measure import LAYER_COPIES, LLAMA3_70B, Net, _environment, _time_or_skip  # noqa: E402

TPS = (2, 4, 8)
DECODES = (0, 32, 128, 256)
KV = (512, 2048)
PROMPTS = (0, 128, 512, 2048)


def points(quick: bool) -> list[tuple[int, int, int]]:
    """(decodes, kv, prompt) of every pass: each decode batch at each KV length with each prompt, and
    each prompt alone."""
    decodes, kvs, prompts = ((0, 2), (16,), (0, 8)) if quick else (DECODES, KV, PROMPTS)
    out = [(b, kv, s) for b in decodes if b for kv in kvs for s in prompts]
    return out + [(0, 0, s) for s in prompts if s]


def mixed_pass(net: Net, decodes: int, kv: int, prompt: int) -> Callable[[], None]:
    """One pass of every layer of ``net`` over ``decodes`` decode tokens (KV ``kv`` each) and one
    prompt of ``prompt`` tokens, fused through the projections."""
    t, s = net.t, net.s
    F, hd = t.nn.functional, s.head_dim
    group = net.heads // net.kv_heads
    rows = decodes + prompt
    x0 = t.randn(rows, s.d_model, dtype=net.dtype, device=net.device)
    cos_d, sin_d = net._rope(t.full((decodes,), kv - 1, device=net.device))
    cos_p, sin_p = net._rope(t.arange(prompt, device=net.device))
    prompt_cache = [t.zeros(2, 1, net.kv_heads, prompt, hd, dtype=net.dtype, device=net.device)
                    for _ in net.layers] if prompt else []

    def layer(i: int, x: Any) -> Any:
        q, k, v = net._qkv(i, x)
        parts = []
        if decodes:
            qd = net._apply_rope(q[:decodes].view(decodes, net.heads, hd), cos_d[:, None], sin_d[:, None])
            kd = net._apply_rope(k[:decodes].view(decodes, net.kv_heads, hd), cos_d[:, None], sin_d[:, None])
            k_cache, v_cache = net._kv(i, decodes, kv)
            k_cache[:, :, kv - 1] = kd
            v_cache[:, :, kv - 1] = v[:decodes].view(decodes, net.kv_heads, hd)
            out = F.scaled_dot_product_attention(qd.view(decodes, net.kv_heads, group, hd), k_cache, v_cache)
            parts.append(out.reshape(decodes, net.heads * hd))
        if prompt:
            qp = net._apply_rope(q[decodes:].view(1, prompt, net.heads, hd), cos_p[None, :, None], sin_p[None, :, None])
            kp = net._apply_rope(k[decodes:].view(1, prompt, net.kv_heads, hd), cos_p[None, :, None],
                                 sin_p[None, :, None])
            cache = prompt_cache[i]
            cache[0] = kp.transpose(1, 2)
            cache[1] = v[decodes:].view(1, prompt, net.kv_heads, hd).transpose(1, 2)
            out = net._causal_attention(qp.transpose(1, 2), cache[0], cache[1], group).transpose(1, 2)
            parts.append(out.reshape(prompt, net.heads * hd))
        return net._out_and_ffn(i, x, parts[0] if len(parts) == 1 else t.cat(parts))

    def run() -> None:
        x = x0
        for i in range(len(net.layers)):
            x = layer(i, x)
    return run


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="gpu_mixed")
    parser.add_argument("--hardware", required=True, help="ador preset name of the GPU measured")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, for checking the script itself")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    env = _environment(torch, device)
    print(json.dumps(env), flush=True)
    shape, copies = LLAMA3_70B, LAYER_COPIES
    if args.quick:
        shape, copies = replace(LLAMA3_70B, n_layers=1, d_model=512, n_heads=8, n_kv_heads=8, head_dim=64,
                                d_ff=1024, vocab_size=1000), 2
    rows: list[dict[str, Any]] = []
    gqa_modes: dict[int, str] = {}
    for tp in ((1, 2) if args.quick else TPS):
        net = Net(torch, shape, tp=tp, n_layers=copies, dtype=torch.bfloat16, device=device, with_head=False)
        net.allocate_cache(max(b * kv for b, kv, _ in points(args.quick)))
        for decodes, kv, prompt in points(args.quick):
            times = _time_or_skip(torch, partial(mixed_pass, net, decodes, kv, prompt), args.repeats, device)
            if not times:
                continue
            per_layer = [x / copies for x in times]
            rows.append(dict(model=shape.name, tp=tp, decodes=decodes, kv=kv, prompt=prompt,
                             median_ms=statistics.median(per_layer), min_ms=min(per_layer), max_ms=max(per_layer)))
            print(f"tp {tp} decodes {decodes:3} kv {kv:4} prompt {prompt:4}: {rows[-1]['median_ms']:.4f} ms per layer "
                  f"(min {rows[-1]['min_ms']:.4f}, max {rows[-1]['max_ms']:.4f})", flush=True)
        gqa_modes[tp] = net.gqa_mode
        del net
        torch.cuda.empty_cache() if device.type == "cuda" else None
    args.out.write_text(json.dumps({"environment": env, "hardware": args.hardware, "repeats": args.repeats,
                                    "layers_per_pass": copies, "prefill_gqa_mode_by_tp": gqa_modes, "rows": rows},
                                   indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
