"""Measure Llama-shaped inference on a real GPU and write the results as rows of the measured-data schema.

Run on a machine with a CUDA GPU and PyTorch (not a dependency of ador; imported here only):

    python benchmarks/gpu_measure.py --hardware h200-sxm-141gb --out measured-gpu.csv

What is measured, and how (so that a row can be predicted by ``ador validate --data``):

- **Whole model, decode** (``tbt_ms``): one decode step of llama-3-8b (bf16, TP 1) at batch B with
  a KV cache of L tokens (the new token included), recorded as ``input_len = L - 1``,
  ``output_len = 2`` (the model's one decode step of such a generation attends over exactly L tokens).
- **Whole model, prefill** (``ttft_ms``): the prompt pass of B prompts of S tokens up to the first
  token's logits (``output_len = 1``).
- **One layer's shard** (``decode_shard_ms``, ``prefill_shard_ms``): a llama-3-70b transformer layer as the
  tensor-parallel shard one device holds at TP 1/2/4/8 (no collective), averaged over a stack of
  distinct layers so that no weight stays in L2 between layers.

With ``--points long-context`` it measures decode where the KV cache dominates instead: whole-model
steps at batch 1 over 1k-128k tokens and batch 4-32 over 8k-32k, TP-1 and TP-8 shards of llama-3-70b
at batch 1-8 over 4k-128k, and the decode-attention kernel alone over every layer's cache (per-layer
time and KV bytes read per second, in the raw JSON's ``attention_only``; no CSV rows).

The software is plain PyTorch: cuBLAS GEMMs (bf16, fused QKV and gate/up projections),
``scaled_dot_product_attention`` (its default kernel choice; decode groups the query heads of a KV
head as its queries, a call PyTorch 2.11 gives to cuDNN's unsplit kernel: ``gpu_sdpa_backends.py``),
``F.rms_norm``, a rotate-half RoPE, every pass captured once in a CUDA graph and replayed (no Python
or launch overhead between kernels; kernels are not fused). Weights are random normal (timing does
not depend on values). With ``--precision fp8-kv16`` every linear layer of the transformer runs in
FP8 as TensorRT-LLM's and vLLM's FP8 checkpoints do (W8A8): e4m3 weights with one scale per matrix,
activations quantised with a static per-tensor scale (one elementwise kernel) and multiplied by
``torch._scaled_mm`` into bf16; the embedding, the LM head, the norms, the residual stream and the
KV cache stay in bf16 (vLLM's ``--quantization fp8`` with its default KV cache dtype). With
``--precision int4-wo`` every linear layer, the LM head included, holds 4-bit weights in groups of 128
with a bf16 scale and zero point per group and multiplies through PyTorch's tinygemm kernel
(``torch._weight_int4pack_mm``, the kernel gpt-fast's int4 path calls; inner k tiles 8); activations,
embedding, norms and the KV cache stay in bf16.

Each figure is the median of ``--repeats`` timed replays after warm-up, timed
with CUDA events; the spread goes into the raw JSON beside the CSV.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

# the shapes come from ador's model zoo (meta-llama config.json files); the script also runs from a
# bare checkout on a GPU machine, where ador is not installed: the repository root goes on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ador.validation.data import COLUMNS  # noqa: E402
from ador.workload.models import ModelSpec, get_model  # noqa: E402

LLAMA3_8B = get_model("llama-3-8b")
LLAMA3_70B = get_model("llama-3-70b")

# (batch, KV length) of the whole-model decode steps, and (batch, prompt) of the prefills
Points = tuple[tuple[int, int], ...]
DECODE_POINTS: Points = ((1, 128), (1, 1024), (1, 4096), (8, 1024), (32, 1024), (64, 1024), (128, 1024),
                 (256, 1024), (64, 4096))
PREFILL_POINTS: Points = ((1, 128), (1, 512), (1, 2048), (1, 8192), (4, 2048), (16, 1024))
LAYER_TPS = (1, 2, 4, 8)
LAYER_DECODE_POINTS: Points = ((1, 1024), (16, 1024), (64, 2048), (256, 1024))
LAYER_PREFILL_POINTS: Points = ((1, 512), (1, 2048), (4, 2048))
LAYER_COPIES = 4
# gpt-fast's int4 settings (its quantize.py defaults): groups of 128 inputs, 8 inner k tiles
INT4_GROUP = 128
INT4_INNER_K_TILES = 8
# --points long-context: decode over long KV caches, where the attention kernel's parallelism (not
# HBM bandwidth alone) may bound a step: whole-model steps (two anchors shared with the standard set),
# TP 1 and TP 8 shard layers of llama-3-70b, and the attention kernel alone (raw JSON only)
LONG_DECODE_POINTS: Points = ((1, 1024), (1, 4096), (1, 8192), (1, 16384), (1, 32768), (1, 65536), (1, 131072),
                              (4, 16384), (4, 32768), (16, 8192), (16, 16384), (32, 8192))
LONG_LAYER_TPS = (1, 8)
LONG_LAYER_DECODE_POINTS: Points = ((1, 4096), (1, 32768), (1, 131072), (8, 32768))
ATTENTION_POINTS: Points = ((1, 1024), (1, 4096), (1, 16384), (1, 65536), (1, 131072), (2, 16384), (4, 4096),
                            (4, 32768), (8, 16384), (16, 4096), (16, 16384), (32, 4096), (64, 4096))


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="gpu_measure")
    parser.add_argument("--hardware", required=True, help="ador preset name of the GPU measured")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (raw timings go to .json beside it)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, for checking the script itself")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=("bf16", "fp8-kv16", "int4-wo"), default="bf16",
                        help="bf16 everywhere; FP8 (W8A8) linear layers with a bf16 KV cache and LM head; "
                             "or 4-bit weight-only linear layers and LM head (gpt-fast's int4 kernel)")
    parser.add_argument("--points", choices=("standard", "long-context"), default="standard",
                        help="which shapes to measure (long-context: decode over 8k-128k KV caches)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    dtype = torch.bfloat16
    torch.manual_seed(0)
    env = _environment(torch, device)
    print(json.dumps(env), flush=True)
    gemm = {"bf16": "cuBLAS", "fp8-kv16": "cuBLAS fp8 _scaled_mm",
            "int4-wo": "tinygemm _weight_int4pack_mm, group 128"}[args.precision]
    software = (f"pytorch {torch.__version__} (ador benchmarks/gpu_measure.py: CUDA graphs, {gemm}, "
                f"SDPA, unfused)")
    source = f"own measurement, {env['gpu']}, {env['date']}"
    model_shape, layer_shape = LLAMA3_8B, LLAMA3_70B
    decode_points, prefill_points = DECODE_POINTS, PREFILL_POINTS
    layer_decode, layer_prefill, copies = LAYER_DECODE_POINTS, LAYER_PREFILL_POINTS, LAYER_COPIES
    if args.quick:
        model_shape = replace(LLAMA3_8B, n_layers=2, d_model=256, n_heads=4, n_kv_heads=2, head_dim=64, d_ff=512,
                              vocab_size=1000)
        layer_shape = replace(LLAMA3_70B, n_layers=1, d_model=512, n_heads=8, n_kv_heads=8, head_dim=64, d_ff=1024,
                              vocab_size=1000)
        decode_points, prefill_points = ((1, 16), (4, 32)), ((1, 16), (2, 8))
        layer_decode, layer_prefill, copies = ((2, 16),), ((1, 16),), 2
    if args.precision == "int4-wo" and not args.quick:
        # tinygemm is a small-M kernel (gpt-fast times decode with it): prompts up to 2,048 tokens only
        prefill_points = tuple(p for p in prefill_points if p[0] * p[1] <= 2048)
        layer_prefill = tuple(p for p in layer_prefill if p[0] * p[1] <= 2048)
    layer_tps: tuple[int, ...] = LAYER_TPS
    if args.precision == "int4-wo" and args.quick:
        layer_tps = (1, 2, 4)     # tinygemm needs k in whole 128s: the tiny TP-8 shard has 64
    attention_points: Points = ()
    if args.points == "long-context":
        decode_points, prefill_points, layer_prefill = LONG_DECODE_POINTS, (), ()
        layer_tps, layer_decode, attention_points = LONG_LAYER_TPS, LONG_LAYER_DECODE_POINTS, ATTENTION_POINTS
        if args.quick:
            decode_points, layer_decode, attention_points = ((1, 64), (2, 32)), ((1, 64),), ((1, 64), (2, 32))

    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []

    def record(model: str, tp: int, batch: int, input_len: int, output_len: int, metric: str,
               times_ms: list[float]) -> None:
        value = statistics.median(times_ms)
        rows.append(dict(id=f"g{len(rows):03d}", source=source, software=software, hardware=args.hardware,
                         devices=tp, model=model, precision=args.precision, tp=tp, pp=1, batch=batch,
                         input_len=input_len, output_len=output_len, metric=metric, value=round(value, 4), unit="ms"))
        raw.append(dict(id=rows[-1]["id"], metric=metric, model=model, tp=tp, batch=batch, input_len=input_len,
                        output_len=output_len, median_ms=value, min_ms=min(times_ms), max_ms=max(times_ms),
                        times_ms=times_ms))
        print(f"{rows[-1]['id']} {model} tp{tp} {metric} batch {batch} in {input_len} out {output_len}: "
              f"{value:.4f} ms (min {min(times_ms):.4f}, max {max(times_ms):.4f})", flush=True)

    net = Net(torch, model_shape, tp=1, n_layers=model_shape.n_layers, dtype=dtype, device=device,
              with_head=True, weights=args.precision)
    max_tokens = max(b * kv for b, kv in decode_points + prefill_points + attention_points)
    net.allocate_cache(max_tokens)
    for batch, kv in decode_points:
        times = _time_or_skip(torch, partial(net.decode_pass, batch, kv), args.repeats, device)
        if times:
            record(model_shape.name, 1, batch, kv - 1, 2, "tbt_ms", times)
    for batch, prompt in prefill_points:
        times = _time_or_skip(torch, partial(net.prefill_pass, batch, prompt), args.repeats, device)
        if times:
            record(model_shape.name, 1, batch, prompt, 1, "ttft_ms", times)
    attention: list[dict[str, Any]] = []
    for batch, kv in attention_points:
        # every layer's own cache in turn, so the KV read is never served from L2; per-layer time
        times = _time_or_skip(torch, partial(net.attention_pass, batch, kv), args.repeats, device)
        if times:
            per_layer = [t / len(net.layers) for t in times]
            kv_bytes = 2 * batch * kv * net.kv_heads * model_shape.head_dim * 2
            attention.append(dict(batch=batch, kv_len=kv, median_ms=statistics.median(per_layer),
                                  min_ms=min(per_layer), max_ms=max(per_layer), kv_bytes_per_layer=kv_bytes,
                                  kv_read_gb_s=kv_bytes / (statistics.median(per_layer) * 1e-3) / 1e9))
            print(f"attention alone {model_shape.name} batch {batch} kv {kv}: {attention[-1]['median_ms']:.4f} ms "
                  f"per layer, {attention[-1]['kv_read_gb_s']:.0f} GB/s of KV", flush=True)
    env["prefill_gqa_mode"] = net.gqa_mode
    del net
    torch.cuda.empty_cache() if device.type == "cuda" else None

    for tp in layer_tps:
        stack = Net(torch, layer_shape, tp=tp, n_layers=copies, dtype=dtype, device=device, with_head=False,
                    weights=args.precision)
        stack.allocate_cache(max(b * kv for b, kv in layer_decode + layer_prefill))
        for batch, kv in layer_decode:
            times = _time_or_skip(torch, partial(stack.decode_pass, batch, kv), args.repeats, device)
            if times:
                record(layer_shape.name, tp, batch, kv - 1, 1, "decode_shard_ms", [t / copies for t in times])
        for batch, prompt in layer_prefill:
            times = _time_or_skip(torch, partial(stack.prefill_pass, batch, prompt), args.repeats, device)
            if times:
                record(layer_shape.name, tp, batch, prompt, 1, "prefill_shard_ms", [t / copies for t in times])
        del stack
        torch.cuda.empty_cache() if device.type == "cuda" else None

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    args.out.with_suffix(".json").write_text(json.dumps({"environment": env, "repeats": args.repeats,
                                                         "points": args.points, "precision": args.precision,
                                                         "rows": raw,
                                                         "attention_only": attention}, indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _environment(torch: Any, device: Any) -> dict[str, Any]:
    import datetime
    import subprocess
    env: dict[str, Any] = {"torch": torch.__version__, "date": datetime.date.today().isoformat(),
                           "python": sys.version.split()[0]}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, sm_count=p.multi_processor_count, memory_gib=round(p.total_memory / 2**30, 1),
                   cuda=torch.version.cuda)
        try:
            env["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,power.limit",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            env["nvidia_smi"] = f"unavailable: {exc}"
    else:
        env["gpu"] = str(device)
    return env


def capture_graph(torch: Any, run: Callable[[], Any], *, warm_up: Callable[[], Any] | None = None) -> Any:
    """``run`` captured in a CUDA graph. Before the capture ``warm_up`` runs eagerly on a side stream
    (default: ``run`` three times) so that cuBLAS picks its kernels."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        if warm_up is not None:
            warm_up()
        else:
            for _ in range(3):
                run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph


def graph_replay_ms(torch: Any, run: Callable[[], Any], repeats: int, *,
                    warm_up: Callable[[], Any] | None = None, settle: int = 5) -> list[float]:
    """Capture ``run`` in a CUDA graph and return the ms of each of ``repeats`` timed replays (CUDA
    events); ``settle`` untimed replays precede the timed ones."""
    graph = capture_graph(torch, run, warm_up=warm_up)
    for _ in range(settle):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    del graph
    return times


def _time_or_skip(torch: Any, make_pass: Callable[[], Callable[[], None]], repeats: int,
                  device: Any) -> list[float]:
    """Build one pass, capture it in a CUDA graph, replay it ``repeats`` times after warm-up and
    return each replay's time in ms; [] (with the reason printed) when it does not fit in memory."""
    try:
        run = make_pass()
        if device.type != "cuda":
            import time
            out = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                run()
                out.append((time.perf_counter() - t0) * 1e3)
            return out
        return graph_replay_ms(torch, run, repeats)
    except torch.cuda.OutOfMemoryError as exc:
        print(f"skipped (out of memory): {str(exc).splitlines()[0]}", flush=True)
        torch.cuda.empty_cache()
        return []


class Net:
    """``n_layers`` distinct Llama layers (as the TP shard of one device), optionally with the
    embedding, final norm and LM head, over a preallocated KV cache."""

    def __init__(self, torch: Any, shape: ModelSpec, *, tp: int, n_layers: int, dtype: Any, device: Any,
                 with_head: bool, weights: str = "bf16") -> None:
        self.t, self.s, self.dtype, self.device = torch, shape, dtype, device
        self.heads, self.kv_heads = shape.n_heads // tp, max(1, shape.n_kv_heads // tp)
        self.ff = shape.d_ff // tp
        d, hd = shape.d_model, shape.head_dim

        def w(*size: int) -> Any:
            return torch.randn(*size, dtype=dtype, device=device) * (size[-1] ** -0.5)

        self.layers = [dict(norm1=torch.ones(d, dtype=dtype, device=device),
                            wqkv=w((self.heads + 2 * self.kv_heads) * hd, d), wo=w(d, self.heads * hd),
                            norm2=torch.ones(d, dtype=dtype, device=device),
                            w13=w(2 * self.ff, d), w2=w(d, self.ff)) for _ in range(n_layers)]
        self.weights = weights
        self.unit_scale = torch.ones((), dtype=torch.float32, device=device)
        quantise = {"bf16": None, "fp8-kv16": self._quantise, "int4-wo": self._pack_int4}[weights]
        if quantise is not None:
            for layer in self.layers:
                for name in ("wqkv", "wo", "w13", "w2"):
                    layer[name] = quantise(layer[name])
        self.embed = w(shape.vocab_size, d) if with_head else None
        self.head = w(shape.vocab_size, d) if with_head else None
        if self.head is not None and weights == "int4-wo":     # gpt-fast quantises the output layer too
            self.head = self._pack_int4(self.head)
        self.final_norm = torch.ones(d, dtype=dtype, device=device)
        self.cache: list[Any] = []
        self.gqa_mode = ""      # how prefill attention handles grouped KV heads on CUDA (set on first use)

    def _quantise(self, weight: Any) -> tuple[Any, Any]:
        """An e4m3 copy of a [out, in] weight with its per-tensor scale (amax maps to e4m3's 448)."""
        t = self.t
        scale = (weight.abs().max().float() / 448.0).reshape(())
        return (weight.float() / scale).to(t.float8_e4m3fn), scale

    def _pack_int4(self, weight: Any) -> tuple[Any, Any, int]:
        """A [out, in] weight as tinygemm's packed 4-bit layout with a bf16 scale and zero point per
        group of 128 inputs (random codes: timing does not depend on values)."""
        t = self.t
        out_features, in_features = weight.shape
        codes = t.randint(0, 256, (out_features, in_features // 2), dtype=t.uint8, device=self.device)
        packed = t.ops.aten._convert_weight_to_int4pack(codes, INT4_INNER_K_TILES)
        scales_and_zeros = t.rand(in_features // INT4_GROUP, out_features, 2, dtype=self.dtype, device=self.device)
        return packed, scales_and_zeros, out_features

    def _linear(self, x: Any, weight: Any) -> Any:
        """x @ weight.T; in FP8 the activations are quantised with a static unit scale (activations
        here are RMS-normalised or products of them, well inside e4m3's range) and the product is
        accumulated by ``torch._scaled_mm`` into bf16; in int4 tinygemm dequantises in its kernel."""
        if self.weights == "bf16":
            return x @ weight.T
        t = self.t
        if self.weights == "int4-wo":
            packed, scales_and_zeros, out_features = weight
            rows = x.reshape(-1, x.shape[-1])
            out = t.ops.aten._weight_int4pack_mm(rows, packed, INT4_GROUP, scales_and_zeros)
            return out.view(*x.shape[:-1], out_features)
        w8, w_scale = weight
        rows = x.reshape(-1, x.shape[-1])
        out = t._scaled_mm(rows.to(t.float8_e4m3fn), w8.T, scale_a=self.unit_scale, scale_b=w_scale,
                           out_dtype=self.dtype)
        return out.view(*x.shape[:-1], w8.shape[0])

    def allocate_cache(self, max_tokens: int) -> None:
        """One K and one V buffer per layer, big enough for max_tokens (batch x KV length)."""
        per = max_tokens * self.kv_heads * self.s.head_dim
        self.cache = [self.t.zeros(2, per, dtype=self.dtype, device=self.device) for _ in self.layers]

    def _kv(self, layer: int, batch: int, length: int) -> tuple[Any, Any]:
        n = batch * self.kv_heads * length * self.s.head_dim
        shape = (batch, self.kv_heads, length, self.s.head_dim)
        buf = self.cache[layer]
        return buf[0, :n].view(shape), buf[1, :n].view(shape)

    def _rope(self, positions: Any) -> tuple[Any, Any]:
        t, hd = self.t, self.s.head_dim
        inv = 1.0 / (500000.0 ** (t.arange(0, hd, 2, device=self.device, dtype=t.float32) / hd))
        angles = positions.to(t.float32)[:, None] * inv[None, :]
        emb = t.cat((angles, angles), dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    def _apply_rope(self, x: Any, cos: Any, sin: Any) -> Any:
        half = x.shape[-1] // 2
        rotated = self.t.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _layer(self, i: int, x: Any, cos: Any, sin: Any, batch: int, new: int, length: int) -> Any:
        """One layer over ``new`` tokens per sequence whose KV cache then holds ``length`` tokens."""
        F, hd = self.t.nn.functional, self.s.head_dim
        q, k, v = self._qkv(i, x)
        q = self._apply_rope(q.view(batch, new, self.heads, hd), cos, sin)
        k = self._apply_rope(k.view(batch, new, self.kv_heads, hd), cos, sin)
        k_cache, v_cache = self._kv(i, batch, length)
        k_cache[:, :, length - new:] = k.transpose(1, 2)
        v_cache[:, :, length - new:] = v.view(batch, new, self.kv_heads, hd).transpose(1, 2)
        group = self.heads // self.kv_heads
        if new == 1:
            # decode: the query heads of one KV head are that head's queries (no mask: all keys are past)
            qg = q.view(batch, self.kv_heads, group, hd)
            attn = F.scaled_dot_product_attention(qg, k_cache, v_cache)
        else:
            attn = self._causal_attention(q.transpose(1, 2), k_cache, v_cache, group).transpose(1, 2)
        return self._out_and_ffn(i, x, attn.reshape(batch, new, self.heads * hd))

    def _qkv(self, i: int, x: Any) -> tuple[Any, Any, Any]:
        """Layer ``i``'s RMSNorm and fused QKV projection of ``x``: q, k, v with heads flattened."""
        F, p, hd = self.t.nn.functional, self.layers[i], self.s.head_dim
        h = F.rms_norm(x, (self.s.d_model,), p["norm1"], 1e-5)
        return self._linear(h, p["wqkv"]).split((self.heads * hd, self.kv_heads * hd, self.kv_heads * hd), dim=-1)

    def _out_and_ffn(self, i: int, x: Any, attn: Any) -> Any:
        """The rest of layer ``i`` after attention: output projection and residual, RMSNorm, the
        fused gate/up projection, SiLU and the down projection with its residual."""
        F, p = self.t.nn.functional, self.layers[i]
        x = x + self._linear(attn, p["wo"])
        h = F.rms_norm(x, (self.s.d_model,), p["norm2"], 1e-5)
        gate, up = self._linear(h, p["w13"]).split(self.ff, dim=-1)
        return x + self._linear(F.silu(gate) * up, p["w2"])

    def _causal_attention(self, q: Any, k: Any, v: Any, group: int) -> Any:
        """Prefill attention with a fused kernel: SDPA's GQA mode with the unfused (math) fallback
        ruled out on CUDA; where no fused kernel takes GQA, the KV heads are repeated (recorded)."""
        F = self.t.nn.functional
        if self.device.type != "cuda" or group == 1:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=group > 1)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
        if self.gqa_mode in ("", "enable_gqa"):
            try:
                with sdpa_kernel(fused):
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                self.gqa_mode = "enable_gqa"
                return out
            except RuntimeError:
                self.gqa_mode = "repeat_kv"
        with sdpa_kernel(fused):
            return F.scaled_dot_product_attention(q, k.repeat_interleave(group, dim=1),
                                                  v.repeat_interleave(group, dim=1), is_causal=True)

    def _pass(self, batch: int, new: int, length: int) -> Callable[[], None]:
        t = self.t
        positions = t.arange(length - new, length, device=self.device)
        cos, sin = self._rope(positions)
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        tokens = t.randint(0, self.s.vocab_size, (batch, new), device=self.device)
        x0 = t.randn(batch, new, self.s.d_model, dtype=self.dtype, device=self.device)

        def run() -> None:
            x = self.embed[tokens] if self.embed is not None else x0
            for i in range(len(self.layers)):
                x = self._layer(i, x, cos, sin, batch, new, length)
            if self.head is not None:
                last = t.nn.functional.rms_norm(x[:, -1], (self.s.d_model,), self.final_norm, 1e-5)
                (last @ self.head.T if self.weights != "int4-wo" else self._linear(last, self.head)).argmax(dim=-1)
        return run

    def attention_pass(self, batch: int, kv_len: int) -> Callable[[], None]:
        """The decode attention kernel alone (SDPA over each layer's KV cache of ``kv_len`` tokens,
        query heads grouped by KV head as in ``_layer``), once per layer."""
        t, hd = self.t, self.s.head_dim
        group = self.heads // self.kv_heads
        q = t.randn(batch, self.kv_heads, group, hd, dtype=self.dtype, device=self.device)
        caches = [self._kv(i, batch, kv_len) for i in range(len(self.layers))]

        def run() -> None:
            for k_cache, v_cache in caches:
                t.nn.functional.scaled_dot_product_attention(q, k_cache, v_cache)
        return run

    def decode_pass(self, batch: int, kv_len: int) -> Callable[[], None]:
        return self._pass(batch, 1, kv_len)

    def prefill_pass(self, batch: int, prompt: int) -> Callable[[], None]:
        return self._pass(batch, prompt, prompt)


if __name__ == "__main__":
    sys.exit(main())
