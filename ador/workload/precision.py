"""Numeric precisions: bytes per weight, activation and KV-cache element, and the MAC datatype."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ador.errors import UnknownNameError

ComputeDtype = Literal["fp16", "fp8", "int8"]


@dataclass(frozen=True, slots=True)
class Precision:
    name: str
    weight_bytes: float      # bytes per weight element, quantisation scales included
    act_bytes: float         # bytes per activation element
    kv_bytes: float          # bytes per KV-cache element
    compute_dtype: ComputeDtype  # datatype the matrix engines multiply in
    weight_only: bool        # weights are dequantised to compute_dtype before the MACs
    dequant_ops_per_weight: float = 0.0  # scalar ops to turn one stored weight into compute_dtype
    # Bytes per element of the residual stream, GEMM outputs and collectives. FP8 serving stacks
    # (TensorRT-LLM, vLLM) quantise GEMM inputs to FP8 but keep these in 16-bit.
    hidden_bytes: float = 2.0
    # Bytes per element of the embedding table (and of a tied LM head). No stack in our data
    # quantises it: TensorRT-LLM, vLLM and gpt-fast quantise linear layers, and the table is a gather.
    embedding_bytes: float = 2.0
    # Bytes per weight of an untied LM head; None: as the other weights. FP8 stacks keep it in 16-bit
    # (TensorRT-LLM's ModelOpt FP8 recipe excludes "*lm_head*"; vLLM's Fp8Config quantises LinearBase
    # layers, and its LM head is a VocabParallelEmbedding); gpt-fast's int8/int4 handlers replace
    # every nn.Linear, the output layer included. Its MACs are counted at compute_dtype: at serving
    # batch sizes the head streams its weights and the MAC rate hardly matters.
    lm_head_bytes: float | None = None
    # Datatype attention's two matmuls multiply in; None: compute_dtype. An attention kernel multiplies
    # the KV cache as it is stored, so a 16-bit cache means 16-bit MMAs whatever the linear layers use.
    attention_dtype: ComputeDtype | None = None

    def mac_dtype(self, *, attention: bool) -> ComputeDtype:
        """The MAC datatype of an operator: attention's, or the linear layers' (compute_dtype)."""
        if attention and self.attention_dtype is not None:
            return self.attention_dtype
        return self.compute_dtype

    def head_bytes(self, *, tied: bool) -> float:
        """Bytes per LM-head weight: the embedding table's when tied, else the head's own."""
        if tied:
            return self.embedding_bytes
        return self.weight_bytes if self.lm_head_bytes is None else self.lm_head_bytes


# int4 weight-only: 4-bit weights with one fp16 scale and one fp16 zero point per group of 128
# (the group size used by gpt-fast's int4 path, GPTQ and AWQ): 0.5 + 4/128 bytes per weight.
_INT4_GROUP = 128
_INT4_BYTES = 0.5 + 4.0 / _INT4_GROUP

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp16", 2.0, 2.0, 2.0, "fp16", False),
        Precision("bf16", 2.0, 2.0, 2.0, "fp16", False),  # same MAC throughput as fp16
        # weights and activations of the linear layers and the KV cache in FP8
        Precision("fp8", 1.0, 1.0, 1.0, "fp8", False, lm_head_bytes=2.0),
        # the same with a 16-bit KV cache: vLLM's --quantization fp8 with its default KV cache dtype
        # (auto, the model's), TensorRT-LLM FP8 without an FP8 KV cache
        Precision("fp8-kv16", 1.0, 1.0, 2.0, "fp8", False, lm_head_bytes=2.0, attention_dtype="fp16"),
        # int8: convert and scale; int4: extract the nibble, convert, subtract the zero point, scale
        Precision("int8-wo", 1.0, 2.0, 2.0, "fp16", True, 2.0),
        # fp8 weight-only: an FP8 checkpoint on a GPU without FP8 tensor cores (vLLM's FP8 Marlin
        # kernel on Ampere: W8A16, KV cache in 16-bit); the E4M3 byte is re-biased to FP16 and
        # scaled, two ops as int8's convert and scale
        Precision("fp8-wo", 1.0, 2.0, 2.0, "fp16", True, 2.0, lm_head_bytes=2.0),
        Precision("int4-wo", _INT4_BYTES, 2.0, 2.0, "fp16", True, 4.0),
    )
}


def get_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise UnknownNameError("precision", name, f"unknown precision (known: {', '.join(PRECISIONS)})") from None
