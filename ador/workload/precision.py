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


# int4 weight-only: 4-bit weights with one fp16 scale and one fp16 zero point per group of 128
# (the group size used by gpt-fast's int4 path, GPTQ and AWQ): 0.5 + 4/128 bytes per weight.
_INT4_GROUP = 128
_INT4_BYTES = 0.5 + 4.0 / _INT4_GROUP

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp16", 2.0, 2.0, 2.0, "fp16", False),
        Precision("bf16", 2.0, 2.0, 2.0, "fp16", False),  # same MAC throughput as fp16
        Precision("fp8", 1.0, 1.0, 1.0, "fp8", False),    # weights, activations and KV in FP8
        # int8: convert and scale; int4: extract the nibble, convert, subtract the zero point, scale
        Precision("int8-wo", 1.0, 2.0, 2.0, "fp16", True, 2.0),
        # fp8 weight-only: an FP8 checkpoint on a GPU without FP8 tensor cores (vLLM's FP8 Marlin
        # kernel on Ampere: W8A16, KV cache in 16-bit); the E4M3 byte is re-biased to FP16 and
        # scaled, two ops as int8's convert and scale
        Precision("fp8-wo", 1.0, 2.0, 2.0, "fp16", True, 2.0),
        Precision("int4-wo", _INT4_BYTES, 2.0, 2.0, "fp16", True, 4.0),
    )
}


def get_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise UnknownNameError("precision", name, f"unknown precision (known: {', '.join(PRECISIONS)})") from None
