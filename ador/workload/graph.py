"""Operator graphs of prefill, decode and mixed (chunked) iterations, Megatron tensor-parallel sharded.

Sharding (Shoeybi et al. 2019, Megatron-LM): QKV and FFN-up are column-parallel, out-projection
and FFN-down row-parallel, so each layer ends its attention and its FFN with an all-reduce of the
hidden states (one per layer for parallel-attention models, whose two branches are summed before
one all-reduce). Query heads split over TP; KV heads split too while there are at least TP of
them, otherwise each device keeps one replicated KV head. The vocabulary splits over TP for the
LM head, followed by an all-gather of the logits. A device cut into ``dies`` chiplets splits its
share the same way among them: each device-level collective gets a die-level twin over the
die-to-die links (emitted whenever dies > 1, even at TP 1). The graph is otherwise independent of
hardware, and cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ador.errors import ConfigError
from ador.workload.models import ModelSpec
from ador.workload.ops import (ALLGATHER, ALLREDUCE, ATTENTION, DECODE, DIE_ALLGATHER, DIE_ALLREDUCE, GEMM, MEMORY,
                               MIXED, P2P, PREFILL, VECTOR, Op)
from ador.workload.precision import Precision

# Elementwise operation counts per element, counted from the reference formulas.
_NORM_OPS = {"rmsnorm": 4.0, "layernorm": 7.0}   # rms: sq, sum, scale, gamma; ln adds mean, sub, beta
_ACT_OPS = {"swiglu": 4.0, "gelu": 8.0, "relu": 1.0}  # silu(x)*y; tanh-GELU polynomial; max(0,x)
_ACT_SFU = {"swiglu": 1.0, "gelu": 1.0, "relu": 0.0}  # exp in sigmoid; tanh
_SOFTMAX_OPS = 5.0    # scale, running max, subtract, sum, rescale (online softmax, FlashAttention)
_ROTARY_OPS = 3.0     # x*cos + rotate(x)*sin per element of q and k
_ROUTER_OPS = 8.0     # softmax over experts plus top-k selection per expert score


@dataclass(frozen=True, slots=True)
class PrefillChunk:
    """``requests`` prompts each contributing ``tokens`` new tokens after ``context`` cached ones."""
    requests: int
    tokens: int
    context: int = 0


@dataclass(frozen=True, slots=True)
class Sharding:
    tp: int
    pp: int
    q_heads: int      # query heads per device
    kv_heads: int     # KV heads per device (replicated when the model has fewer than tp)
    d_ff: int         # FFN hidden columns per device
    vocab: int        # vocabulary rows per device
    layers: int       # layers per pipeline stage (the largest stage)


def shard(model: ModelSpec, tp: int, pp: int = 1, dies: int = 1) -> Sharding:
    """One device's share of the model. A device of ``dies`` dies splits its heads among them too:
    each die keeps whole query heads and at least one KV head of its own, so when there are fewer
    KV heads than tp x dies every die holds a replica (the device ``dies`` of them)."""
    if not isinstance(tp, int) or tp < 1:
        raise ConfigError("tp", tp, "must be a positive integer")
    if not isinstance(pp, int) or pp < 1:
        raise ConfigError("pp", pp, "must be a positive integer")
    if model.n_heads % tp:
        raise ConfigError("tp", tp, f"must divide the {model.n_heads} attention heads of {model.name}")
    if model.n_heads % (tp * dies):
        raise ConfigError("dies", dies, f"tp x dies = {tp * dies} must divide the {model.n_heads} attention "
                                        f"heads of {model.name}")
    kv_heads = model.n_kv_heads
    for field, value, ranks in (("tp", tp, tp), ("dies", dies, tp * dies)):
        # each rank's query heads must map to whole KV heads: the ranks split the KV heads evenly
        # or replicate them (vLLM and TensorRT-LLM refuse any other layout)
        if kv_heads % ranks and ranks % kv_heads:
            what = "tp" if field == "tp" else f"tp x dies = {ranks}"
            raise ConfigError(field, value, f"{what} must divide the {kv_heads} KV heads of {model.name} or be "
                                            f"a multiple of them")
    if pp > model.n_layers:
        raise ConfigError("pp", pp, f"exceeds the {model.n_layers} layers of {model.name}")
    ranks = tp * dies
    kv = (model.n_kv_heads // ranks if model.n_kv_heads >= ranks else 1) * dies
    return Sharding(tp=tp, pp=pp, q_heads=model.n_heads // tp, kv_heads=max(kv, 1),
                    d_ff=-(-model.d_ff // tp), vocab=-(-model.vocab_size // tp),
                    layers=-(-model.n_layers // pp))


def causal_pairs(context: int, tokens: int, window: int = 0) -> float:
    """Query-key pairs of ``tokens`` new causal queries after ``context`` cached ones (each query
    sees itself and everything before it, at most ``window`` positions when a window is set)."""
    first, last = context + 1, context + tokens
    if window <= 0 or last <= window:
        return tokens * context + tokens * (tokens + 1) / 2.0
    if first > window:
        return float(tokens * window)
    full = window - first + 1            # queries at positions first..window see all before them
    return (first + window) * full / 2.0 + (tokens - full) * window


@lru_cache(maxsize=4096)
def build_iteration(model: ModelSpec, precision: Precision, tp: int, pp: int = 1,
                    prefill: tuple[PrefillChunk, ...] = (), decode_batch: int = 0, decode_kv_len: int = 0,
                    fuse_linear: bool = True, dies: int = 1) -> tuple[Op, ...]:
    """Operators of one iteration over all layers: prefill chunks and/or decodes.

    ``fuse_linear`` batches the tokens of both phases through the same weight GEMMs (one kernel,
    as chunked-prefill schedulers do); otherwise prefill and decode get separate operators, so a
    heterogeneous chip can run them on different engines.
    """
    if decode_batch < 0 or decode_kv_len < 0 or (decode_batch and decode_kv_len < 1):
        raise ConfigError("decode_kv_len", decode_kv_len, "a decode needs a KV length of at least 1")
    if not prefill and not decode_batch:
        raise ConfigError("batch", 0, "an iteration needs at least one prefill token or decode")
    for chunk in prefill:
        if chunk.requests < 1 or chunk.tokens < 1 or chunk.context < 0:
            raise ConfigError("prefill", chunk, "requests and tokens must be >= 1, context >= 0")
    sh = shard(model, tp, pp, dies)
    L = model.n_layers
    d, hd = model.d_model, model.head_dim
    wb, ab, kvb, hb = precision.weight_bytes, precision.act_bytes, precision.kv_bytes, precision.hidden_bytes
    prefill_tokens = sum(c.requests * c.tokens for c in prefill)
    if fuse_linear or not prefill or not decode_batch:
        phase = MIXED if prefill and decode_batch else (PREFILL if prefill else DECODE)
        streams = [(phase, prefill_tokens + decode_batch)]
    else:
        streams = [(PREFILL, prefill_tokens), (DECODE, decode_batch)]

    ops: list[Op] = []

    def gemm(name: str, phase: str, count: float, m: int, k: int, n: int, weights: bool = True,
             bytes_per_weight: float = wb) -> None:
        ops.append(Op(name, GEMM, phase, count, m=m, n=n, k=k, flops=2.0 * m * n * k,
                      weight_bytes=k * n * bytes_per_weight if weights else 0.0, act_bytes=m * k * ab + m * n * hb))

    def vector(name: str, phase: str, count: float, elements: float, per_elem: float, sfu: float,
               streams_in: int = 1) -> None:
        ops.append(Op(name, VECTOR, phase, count, m=int(elements), vector_ops=elements * per_elem,
                      sfu_ops=sfu, act_bytes=elements * hb * (streams_in + 1)))

    def allreduce(name: str, phase: str, count: float, tokens: int) -> None:
        if tp > 1:
            ops.append(Op(name, ALLREDUCE, phase, count, m=tokens, comm_bytes=tokens * d * hb))
        if dies > 1:
            ops.append(Op(name.replace("allreduce", "die_allreduce"), DIE_ALLREDUCE, phase, count, m=tokens,
                          comm_bytes=tokens * d * hb))

    norm_ops = _NORM_OPS[model.norm_kind]
    qkv_cols = (sh.q_heads + 2 * sh.kv_heads) * hd
    for phase, T in streams:
        ops.append(Op("embedding", MEMORY, phase, 1, m=T, act_bytes=2.0 * T * d * hb))
        # residual add fused into the norm (as TensorRT-LLM and vLLM do): x + r, then normalise
        vector("attn_norm", phase, L, T * d, norm_ops + 1.0, T, streams_in=2)
        gemm("qkv_proj", phase, L, T, d, qkv_cols)
    # attention is per request, so it never fuses across phases
    for chunk in prefill:
        pairs = causal_pairs(chunk.context, chunk.tokens, model.sliding_window)
        seen = min(chunk.context + chunk.tokens, model.sliding_window or chunk.context + chunk.tokens)
        _attention(ops, PREFILL, L, sh, hd, chunk.requests, chunk.tokens, pairs, seen, ab, kvb)
    if decode_batch:
        seen = min(decode_kv_len, model.sliding_window or decode_kv_len)
        _attention(ops, DECODE, L, sh, hd, decode_batch, 1, float(seen), seen, ab, kvb)
    for phase, T in streams:
        gemm("out_proj", phase, L, T, sh.q_heads * hd, d)
        if not model.parallel_attn:
            allreduce("attn_allreduce", phase, L, T)
            vector("ffn_norm", phase, L, T * d, norm_ops + 1.0, T, streams_in=2)
        elif model.parallel_norms == 2:     # the FFN branch's own norm of the block's input
            vector("ffn_norm", phase, L, T * d, norm_ops, T)
        _ffn(ops, gemm, vector, model, sh, phase, L, T, precision)
        allreduce("ffn_allreduce", phase, L, T)
        if pp > 1:
            ops.append(Op("pp_send", P2P, phase, pp - 1, m=T, comm_bytes=T * d * hb))
    # logits only for the last token of each prompt finishing its prefill, and for each decode
    rows = sum(c.requests for c in prefill) + decode_batch
    last_phase = MIXED if prefill and decode_batch else (PREFILL if prefill else DECODE)
    vector("final_norm", last_phase, 1, rows * d, norm_ops, rows)
    gemm("lm_head", last_phase, 1, rows, d, sh.vocab, bytes_per_weight=precision.head_bytes(tied=model.tied_embeddings))
    if tp > 1:
        ops.append(Op("logits_allgather", ALLGATHER, last_phase, 1, m=rows,
                      comm_bytes=rows * model.vocab_size * hb))
    if dies > 1:      # the device's share of the vocabulary, gathered from its dies
        ops.append(Op("logits_die_allgather", DIE_ALLGATHER, last_phase, 1, m=rows,
                      comm_bytes=rows * sh.vocab * hb))
    return tuple(ops)


def _attention(ops: list[Op], phase: str, layers: int, sh: Sharding, hd: int, requests: int,
               q_len: int, pairs: float, kv_seen: int, ab: float, kvb: float) -> None:
    heads = requests * sh.q_heads
    kv_read = requests * kv_seen * sh.kv_heads * hd * 2 * kvb
    kv_write = requests * q_len * sh.kv_heads * hd * 2 * kvb
    qo = requests * q_len * sh.q_heads * hd * 2 * ab
    rotary = requests * q_len * (sh.q_heads + sh.kv_heads) * hd
    ops.append(Op(
        "attention", ATTENTION, phase, layers, m=q_len, n=max(1, round(pairs / q_len)), k=hd, groups=heads,
        kv_group=max(1, sh.q_heads // sh.kv_heads),
        flops=4.0 * hd * pairs * heads,                         # QK^T and PV, 2 FLOPs per MAC each
        act_bytes=qo, kv_bytes=kv_read + kv_write,
        vector_ops=_SOFTMAX_OPS * pairs * heads + _ROTARY_OPS * rotary, sfu_ops=pairs * heads,
    ))


def _ffn(ops, gemm, vector, model: ModelSpec, sh: Sharding, phase: str, L: int, T: int,
         precision: Precision) -> None:
    gate = 2 if model.ffn_kind == "swiglu" else 1
    act_ops, act_sfu = _ACT_OPS[model.ffn_kind], _ACT_SFU[model.ffn_kind]
    if not model.is_moe:
        gemm("ffn_up", phase, L, T, model.d_model, gate * sh.d_ff)
        vector("ffn_act", phase, L, T * sh.d_ff, act_ops, T * sh.d_ff * act_sfu, streams_in=gate)
        gemm("ffn_down", phase, L, T, sh.d_ff, model.d_model)
        return
    E, k = model.n_experts, model.top_k
    # Router weights are small and replicated on every device.
    gemm("moe_router", phase, L, T, model.d_model, E)
    vector("moe_topk", phase, L, T * E, _ROUTER_OPS, T * E)
    # Experts hit by T tokens routed uniformly to k of E: E * (1 - (1 - k/E)^T) in expectation;
    # only their weights are read. Tokens per hit expert follow from T*k assignments.
    hit = E * (1.0 - (1.0 - k / E) ** T)
    per_expert = max(1, round(T * k / hit))
    gemm("expert_up", phase, L * hit, per_expert, model.d_model, gate * sh.d_ff)
    vector("expert_act", phase, L * hit, per_expert * sh.d_ff, act_ops, per_expert * sh.d_ff * act_sfu,
           streams_in=gate)
    gemm("expert_down", phase, L * hit, per_expert, sh.d_ff, model.d_model)


def prefill(model: ModelSpec, precision: Precision, tp: int, batch: int, prompt_len: int,
            pp: int = 1, dies: int = 1) -> tuple[Op, ...]:
    """Prefill of ``batch`` prompts of ``prompt_len`` tokens."""
    _positive("batch", batch)
    _positive("input_len", prompt_len)
    return build_iteration(model, precision, tp, pp, (PrefillChunk(batch, prompt_len, 0),), dies=dies)


def decode_step(model: ModelSpec, precision: Precision, tp: int, batch: int, kv_len: int,
                pp: int = 1, dies: int = 1) -> tuple[Op, ...]:
    """One decode step of ``batch`` sequences, each attending over ``kv_len`` cached tokens."""
    _positive("batch", batch)
    _positive("kv_len", kv_len)
    return build_iteration(model, precision, tp, pp, (), batch, kv_len, dies=dies)


def _positive(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "must be a positive integer")
