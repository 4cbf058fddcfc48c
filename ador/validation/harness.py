"""How a row was timed, where that is not how a serving stack runs the model.

A serving stack launches a layer's kernels back to back: the host queues the next launch while the
GPU runs the last, and each kernel costs the runtime profile's fixed cost per operator
(``RuntimeProfile.op_overhead_s``) on top of its work. A *per-operator host-timed harness* times each
operator alone instead -- a wall clock read, the call, a device synchronisation, a wall clock read --
and reports the sum. Each call then pays
the host's whole round trip (Python dispatch, launch, the kernel, synchronisation), serially; a
fused kernel of a serving stack may be several calls there. Such a row is a fact about its
measurement method, not about a stack, so no profile is fitted to it: the harness's per-call cost
is the one its authors publish, and the calls it makes per operator are read from its code.

``HARNESSES`` lists the harnesses rows name in their ``software`` (by the words in ``code``). A row
that names one is priced only where the harness's facts hold: its GPU (the per-call costs were
measured there), a 16-bit precision (no FP8 cast kernels), a layer metric, and the block the harness's
code times (``block``: norm, activation, sequential and dense); anything else is refused in one line.
Not priced: the prefill's attention as the harness runs it, unfused (the scores written and read back:
about 6 GB a layer for LLMCompass's 2,048-token prefill, a few ms of its 66.75 ms).

- LLMCompass (Zhang et al., ISCA 2024; PrincetonUniversity/LLMCompass, commit b95c6c9):
  ``software_model/*.py`` ``run_on_gpu`` times every operator with ``time.time()`` around the call
  and ``torch.cuda.synchronize()``, 3 warm-up calls, the median of 50 (``operators.py``
  ``iterations = 50``). ``TransformerBlockAutoRegressionTP.run_on_gpu`` (``software_model/
  transformer.py``) times the Q, K and V projections as one GEMM of a third of the width multiplied
  by 3, attention as two ``torch.bmm`` and an eager ``torch.softmax`` around the scores, LayerNorm
  and GeLU as ``torch.compile``d calls, and the output and FFN projections as one GEMM each; its
  all-reduces are not timed (its published A100 breakdown, ``ae/figure5/ijkl/real_hardware/
  transformerAR_A100.csv``, enters them as 26.04 us each), so the model prices those as it prices
  any. (LayerNorm's time is reported less a probe of its launch cost, yet equals GeLU's, 48.0 and
  47.9 us at decode: the probe, which does not synchronise, took off little.) Per-call costs: the
  harness's A100 overheads, ``hardware_model/compute_module.py`` ``overhead_dict["A100"] =
  Overhead(2.1e-5, 1.2e-5, 4.5e-5, 4.5e-5)`` (matmul, softmax, layernorm, gelu), which the project
  adds to its simulated operators to compare them with these measurements; its own sweeps of small
  operators show the same floors (``ae/figure5/g/real_hardware/gelu_A100.csv``: 1,024 elements at
  0.0213 G elements/s, 48 us a call; ``cf/real_hardware/softmax_A100.csv``: 4,096 x 32 at 9.996,
  13 us).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ador.errors import ConfigError
from ador.workload.models import ModelSpec
from ador.workload.ops import COLLECTIVES

SIXTEEN_BIT = ("fp16", "bf16")


@dataclass(frozen=True)
class HostTimedHarness:
    """A harness that times each operator alone from the host (module docstring)."""
    name: str
    code: str                                   # the words a row's ``software`` names it by
    hardware: tuple[str, ...]                   # the GPUs its per-call costs were measured on
    block: tuple[str, str]                      # the (norm, FFN) kinds of the dense sequential block it times
    call_s: Mapping[str, float]                 # host round trip of one call, per kind of call
    calls: Mapping[str, tuple[str, ...]]        # per operator of ador's layer: the calls that time it
    source: str


LLMCOMPASS = HostTimedHarness(
    name="LLMCompass run_on_gpu",
    code="LLMCompass run_on_gpu",
    hardware=("a100-sxm-80gb",),
    block=("layernorm", "gelu"),
    # hardware_model/compute_module.py overhead_dict["A100"] (seconds)
    call_s={"matmul": 2.1e-5, "softmax": 1.2e-5, "layernorm": 4.5e-5, "gelu": 4.5e-5},
    calls={"attn_norm": ("layernorm",), "qkv_proj": ("matmul",) * 3,
           "attention": ("matmul", "softmax", "matmul"), "out_proj": ("matmul",), "ffn_norm": ("layernorm",),
           "ffn_up": ("matmul",), "ffn_act": ("gelu",), "ffn_down": ("matmul",)},
    source="PrincetonUniversity/LLMCompass b95c6c9: software_model/transformer.py, "
           "hardware_model/compute_module.py")

HARNESSES = (LLMCOMPASS,)


def harness_of(software: str) -> HostTimedHarness | None:
    """The host-timed harness a row's software string names, if any."""
    return next((h for h in HARNESSES if h.code in software), None)


def harness_for(m, model: ModelSpec, layer_metrics: Iterable[str]) -> HostTimedHarness | None:
    """The host-timed harness row ``m`` names, if any, once its facts are checked to hold for the row
    (``check_row``); ``layer_metrics``: the metrics that time one layer."""
    harness = harness_of(m.software)
    if harness is not None:
        check_row(harness, m, model, layer_metrics)
    return harness


def check_row(harness: HostTimedHarness, m, model: ModelSpec, layer_metrics: Iterable[str]) -> None:
    """Raise ConfigError unless the harness's facts hold for row ``m`` (module docstring)."""
    if m.metric not in layer_metrics:
        raise ConfigError("metric", m.metric, f"{m.software!r} times layers only (known: {', '.join(layer_metrics)})")
    if m.hardware not in harness.hardware:
        raise ConfigError("hardware", m.hardware, f"{harness.name}'s per-call costs were measured on "
                                                  f"{', '.join(harness.hardware)} only")
    if m.precision not in SIXTEEN_BIT:
        raise ConfigError("precision", m.precision, f"{harness.name} is priced for 16-bit operators only "
                                                    f"({', '.join(SIXTEEN_BIT)})")
    if (model.norm_kind, model.ffn_kind) != harness.block or model.parallel_attn or model.is_moe:
        raise ConfigError("model", m.model, f"{harness.name} times a dense sequential {harness.block[0]} + "
                                            f"{harness.block[1]} block; this model's is not")


def host_timed_terms(harness: HostTimedHarness, ops) -> tuple[float, float]:
    """For the operators ``ops`` (each with its ``count``): the harness's host round trips in
    seconds, and the number of kernels whose fixed cost those replace. Collectives are priced as
    the model prices them (the harness does not time them). Raises ConfigError for an operator the
    harness is not known to time."""
    calls_s = kernels = 0.0
    for op in ops:
        if op.kind in COLLECTIVES:
            continue
        if op.name not in harness.calls:
            raise ConfigError("software", harness.name,
                              f"operator {op.name!r} is not one the harness is known to time "
                              f"(known: {', '.join(harness.calls)})")
        calls_s += op.count * sum(harness.call_s[c] for c in harness.calls[op.name])
        kernels += op.count
    return calls_s, kernels


def host_timed_seconds(total_s, calls_s, kernels, op_overhead_s):
    """Operators timed one by one from the host: the model's time for them, each kernel's fixed cost
    replaced by the harness's round trips. Works on numbers or arrays (the fit prices all rows)."""
    return total_s + calls_s - kernels * op_overhead_s
