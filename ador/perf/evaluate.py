"""End-to-end evaluation of a static batch: TTFT, TBT, end-to-end latency, throughput, memory."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ador.errors import ConfigError
from ador.hardware.runtime import RuntimeProfile
from ador.hardware.system import System
from ador.ops import SCALAR
from ador.perf.stage import StageResult, stage_time
from ador.workload.graph import decode_step, prefill
from ador.workload.memory import Footprint, footprint
from ador.workload.models import ModelSpec
from ador.workload.precision import Precision


@dataclass(frozen=True, slots=True)
class Evaluation:
    model: str
    hardware: str
    precision: str
    tp: int
    pp: int
    devices: int
    batch: int
    input_len: int
    output_len: int
    ttft_s: float          # the runtime's per-request cost and the first token of the whole batch
    tbt_s: float           # mean time between output tokens over the generation
    e2e_s: float           # TTFT plus output_len - 1 decode steps
    output_tok_s: float    # generated tokens per second over all devices (replicas included)
    memory: Footprint      # per device
    capacity_bytes: float  # per device, after the runtime's reserve
    prefill: StageResult
    decode: StageResult    # the decode step at the middle of the generation

    max_seq_len: int = 0   # the model's trained context; longer runs are priced but flagged
    # the decode step over the last prompt token that emits the first token, under a runtime whose
    # prefill stops one token short (``prefilled_tokens``); empty otherwise
    first_step: StageResult = StageResult(0.0)

    @property
    def exceeds_context(self) -> bool:
        return self.input_len + self.output_len > self.max_seq_len

    @property
    def fits(self) -> bool:
        return self.memory.total_bytes <= self.capacity_bytes

    def activity(self) -> dict[str, float]:
        """Work one device does over the whole generation (prefill, the first token's decode step
        where the runtime has one, and output_len - 1 decode steps)."""
        pre, first, dec = self.prefill.activity(), self.first_step.activity(), self.decode.activity()
        steps = self.output_len - 1
        return {key: pre[key] + first[key] + steps * dec[key] for key in pre}

    def to_dict(self, breakdown: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "hardware": self.hardware, "precision": self.precision,
            "tp": self.tp, "pp": self.pp, "devices": self.devices, "batch": self.batch,
            "input_len": self.input_len, "output_len": self.output_len,
            "ttft_ms": self.ttft_s * 1e3, "tbt_ms": self.tbt_s * 1e3, "e2e_ms": self.e2e_s * 1e3,
            "output_tok_s": self.output_tok_s,
            "output_tok_s_per_device": self.output_tok_s / self.devices,
            "memory_bytes_per_device": self.memory.total_bytes,
            "memory": {"weight_bytes": self.memory.weight_bytes, "kv_bytes": self.memory.kv_bytes,
                       "activation_bytes": self.memory.activation_bytes,
                       "capacity_bytes": self.capacity_bytes},
            "fits": self.fits,
            "exceeds_context": self.exceeds_context,
        }
        if breakdown:
            out["breakdown"] = {
                stage: [{"name": t.name, "kind": t.kind, "engine": t.engine, "bound": t.bound,
                         "count": t.count, "time_ms": t.time_s * 1e3, "flops": t.flops, "bytes": t.bytes}
                        for t in result.breakdown]
                for stage, result in (("prefill", self.prefill), ("decode", self.decode))
            }
        return out


def capacity_bytes(system: System) -> float:
    """Device memory left to the model after what the runtime keeps for itself."""
    return system.device.hbm_capacity_bytes - system.runtime.reserved_bytes


def memory_utilisation(need_bytes, capacity_bytes, ops=SCALAR):
    """Share of the memory left to the model that it needs: infinite where the runtime's reserve
    leaves none (a negative capacity would make any need look like it fits)."""
    return ops.where(capacity_bytes > 0, need_bytes / ops.maximum(capacity_bytes, 1.0), math.inf)


def decode_kv_points(input_len: int, output_len: int) -> tuple[int, int, int]:
    """KV lengths of the first, middle and last decode step of a generation: step j (1-based)
    produces token j+1 attending over the prompt and j generated tokens."""
    first, last = input_len + 1, input_len + max(1, output_len - 1)
    return first, (first + last) // 2, last


def p99_decode_kv(input_len: int, output_len: int) -> int:
    """KV length of the step at the 99th percentile position of the generation: the step time is
    affine in the KV length on each roofline piece, so that step is the p99 of the steps."""
    return input_len + max(1, math.ceil(0.99 * (output_len - 1)))


def tbt_p99_s(system: System, model: ModelSpec, precision: Precision, batch: int, input_len: int, output_len: int,
              mean_tbt_s: float) -> float:
    """The 99th-percentile time between tokens of a generation: the decode step at the p99 KV
    length (never below the mean, which includes the per-step overheads)."""
    step = decode_step(model, precision, system.tp, batch, p99_decode_kv(input_len, output_len), system.pp,
                       system.dies)
    return p99_of_steps(stage_time(system, precision, step, breakdown=False).time_s, mean_tbt_s)


def p99_of_steps(p99_step_s, mean_tbt_s, X=SCALAR):
    """The p99 time between tokens from the step at the p99 KV length: never below the mean."""
    return X.maximum(p99_step_s, mean_tbt_s)


def generation_tbt(step_s: Callable[[int], Any], input_len: int, output_len: int) -> tuple[Any, Any]:
    """Mean decode-step time over a generation and the middle step's time, from ``step_s`` (KV
    length -> one step's time: a number for one design, an array for a population)."""
    first, mid, last = decode_kv_points(input_len, output_len)
    t_mid = step_s(mid)
    if last - first < 2:
        return t_mid, t_mid
    return mean_over_generation(step_s(first), t_mid, step_s(last), first, last), t_mid


def mean_over_generation(t_first, t_mid, t_last, first_kv, last_kv, X=SCALAR):
    """Mean decode-step time over KV lengths first..last (Simpson's rule: the step time is piecewise
    linear in the KV length, so three points are exact on each linear piece)."""
    return X.where(last_kv - first_kv < 2, t_mid, (t_first + 4.0 * t_mid + t_last) / 6.0)


def prefilled_tokens(runtime: RuntimeProfile, input_len: int) -> int:
    """Prompt tokens a request's prefill pass processes: the whole prompt, or all but the last under
    a runtime whose first token comes from a decode step over the last prompt token
    (``RuntimeProfile.first_token_from_decode``; 0: no prefill pass at all)."""
    return input_len - 1 if runtime.first_token_from_decode else input_len


def first_token_s(request_overhead_s, prefill_s, first_step_s=0.0):
    """A request's time to first token: the runtime's fixed cost per request (front end,
    tokenisation, admission), its prefill pass and, under a runtime whose first token comes from a
    decode step (``prefilled_tokens``), that step at the prompt's KV length."""
    return request_overhead_s + prefill_s + first_step_s


def end_to_end_s(ttft_s, tbt_s, output_len):
    """A request's latency: its first token (the runtime's fixed cost per request included), then
    output_len - 1 decode steps."""
    return ttft_s + (output_len - 1) * tbt_s


def mean_decode_time(system: System, model: ModelSpec, precision: Precision, batch: int, input_len: int,
                     output_len: int, breakdown: bool = False) -> tuple[float, StageResult]:
    """Mean decode-step time over a generation and the stage at its middle."""
    first, mid, last = decode_kv_points(input_len, output_len)

    def step(kv: int, with_breakdown: bool) -> StageResult:
        ops = decode_step(model, precision, system.tp, batch, kv, system.pp, system.dies)
        return stage_time(system, precision, ops, breakdown=with_breakdown)

    middle = step(mid, breakdown)
    tbt, _ = generation_tbt(lambda kv: middle.time_s if kv == mid else step(kv, False).time_s, input_len,
                            output_len)
    return tbt, middle


def evaluate(system: System, model: ModelSpec, precision: Precision, *, batch: int, input_len: int,
             output_len: int, breakdown: bool = True) -> Evaluation:
    for field, value in (("batch", batch), ("input_len", input_len), ("output_len", output_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(field, value, "must be a positive integer")
    runtime = system.runtime
    prompt = prefilled_tokens(runtime, input_len)
    pre = stage_time(system, precision, prefill(model, precision, system.tp, batch, prompt, system.pp, system.dies),
                     breakdown=breakdown) if prompt else StageResult(0.0)
    tbt, dec = mean_decode_time(system, model, precision, batch, input_len, output_len, breakdown)
    first_step = stage_time(system, precision, decode_step(model, precision, system.tp, batch, input_len, system.pp,
                                                           system.dies), breakdown=breakdown) \
        if runtime.first_token_from_decode else StageResult(0.0)
    ttft = first_token_s(runtime.request_overhead_s, pre.time_s, first_step.time_s)
    e2e = end_to_end_s(ttft, tbt, output_len)
    return Evaluation(
        model=model.name, hardware=system.device.name, precision=precision.name, tp=system.tp, pp=system.pp,
        devices=system.devices, batch=batch, input_len=input_len, output_len=output_len,
        ttft_s=ttft, tbt_s=tbt, e2e_s=e2e,
        output_tok_s=system.replicas * batch * output_len / e2e,
        memory=footprint(model, precision, system.tp, system.pp, batch, input_len, output_len, system.dies),
        capacity_bytes=capacity_bytes(system), prefill=pre, decode=dec, max_seq_len=model.max_seq_len,
        first_step=first_step,
    )
