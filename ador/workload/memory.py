"""Bytes a model needs per device: weights, KV cache and transient activations (hardware-free)."""
from __future__ import annotations

from dataclasses import dataclass

from ador.workload.graph import shard
from ador.workload.models import ModelSpec
from ador.workload.precision import Precision


@dataclass(frozen=True, slots=True)
class Footprint:
    """Per-device bytes at the run's peak: the weights, and the KV cache and transient activations
    of whichever phase needs more (see ``footprint``)."""
    weight_bytes: float
    kv_bytes: float
    activation_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes + self.activation_bytes


def weight_bytes_per_device(model: ModelSpec, precision: Precision, tp: int, pp: int = 1, dies: int = 1) -> float:
    sh = shard(model, tp, pp, dies)
    d, hd = model.d_model, model.head_dim
    attn = d * (sh.q_heads + 2 * sh.kv_heads) * hd + sh.q_heads * hd * d
    ffn = model.n_experts * model.ffn_matrices * d * sh.d_ff
    router = d * model.n_experts if model.is_moe else 0
    layer = (attn + ffn + router) * precision.weight_bytes + 2 * d * precision.hidden_bytes  # norms unquantised
    embed = sh.vocab * d * precision.embedding_bytes
    if model.position == "learned":
        embed += model.max_seq_len * d * precision.embedding_bytes
    head = 0.0 if model.tied_embeddings else sh.vocab * d * precision.head_bytes(tied=False)
    # With pipelining the embedding sits on the first stage and the LM head on the last.
    ends = embed + head if pp == 1 or model.tied_embeddings else max(embed, head)
    return sh.layers * layer + ends


def kv_bytes_per_token_per_device(model: ModelSpec, precision: Precision, tp: int, pp: int = 1,
                                  dies: int = 1) -> float:
    sh = shard(model, tp, pp, dies)
    return sh.layers * 2 * sh.kv_heads * model.head_dim * precision.kv_bytes


def activation_bytes_per_device(model: ModelSpec, precision: Precision, tp: int, tokens: int,
                                rows: int, dies: int = 1) -> float:
    """Peak transient activations of one iteration over ``tokens`` tokens with ``rows`` logit rows:
    the residual stream, the widest intermediate (QKV or FFN-up) and fp32 logits."""
    sh = shard(model, tp, 1, dies)
    gate = 2 if model.ffn_kind == "swiglu" else 1
    widest = max((sh.q_heads + 2 * sh.kv_heads) * model.head_dim, gate * sh.d_ff * model.top_k)
    return tokens * (2 * model.d_model * precision.hidden_bytes + widest * precision.act_bytes) + rows * sh.vocab * 4.0


def footprint(model: ModelSpec, precision: Precision, tp: int, pp: int, batch: int, input_len: int,
              output_len: int, dies: int = 1) -> Footprint:
    """Per-device memory of a batch of ``batch`` sequences run to ``input_len + output_len`` tokens:
    the weights, and the larger of the two phases' transient needs. The prefill of the whole batch
    holds the prompts' KV cache and the activations of ``batch x input_len`` tokens; the last decode
    step holds the full KV cache and one token's activations per sequence. The two peaks never
    coincide (the prefill's activations are freed before the cache grows), so they are not added.
    A device of ``dies`` dies holds the KV heads each die replicates (``shard``)."""
    kv_token = kv_bytes_per_token_per_device(model, precision, tp, pp, dies)
    prefill_kv = batch * input_len * kv_token
    prefill_act = activation_bytes_per_device(model, precision, tp, batch * input_len, batch, dies)
    decode_kv = batch * (input_len + output_len) * kv_token
    decode_act = activation_bytes_per_device(model, precision, tp, batch, batch, dies)
    prefill_peak = prefill_kv + prefill_act > decode_kv + decode_act
    kv, act = (prefill_kv, prefill_act) if prefill_peak else (decode_kv, decode_act)
    return Footprint(weight_bytes=weight_bytes_per_device(model, precision, tp, pp, dies), kv_bytes=kv,
                     activation_bytes=act)
