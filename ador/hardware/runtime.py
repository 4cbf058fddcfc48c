"""Runtime profiles: how the software that drives a device spends time beyond the hardware's physics.

One named, documented object is attached to every system, GPU or ADOR design alike, so a ratio
between the two sides measures the hardware and not two sets of rules. A profile holds:

- ``step_overhead_s``: per forward pass (host scheduling, sampling, synchronisation);
- ``request_overhead_s``: once per request (front end, tokenisation, admission), so a request's
  latency is that plus its first token plus its decode steps;
- ``kernel_overhead_s`` and ``kernel_overhead_cycles``: per operator (launch, prologue, tail, or a
  command processor's dispatch), in seconds and in device clock cycles;
- ``overlap``: how much of the shorter of an operator's compute and data-movement time the
  kernel hides under the longer (1: an ideal roofline, 0: no overlap);
- ``hbm_efficiency``: fraction of peak DRAM bandwidth a streaming kernel reaches, by memory kind;
- ``link_efficiency`` and ``collective_latency_s``: fraction of link bandwidth collectives reach,
  and the software synchronisation each collective step pays on top of the link's hop latency;
- ``comm_overlap``: fraction of the collectives' time hidden under compute (0: Megatron-style
  serialised all-reduces; LPU's ESL or an overlapping runtime hides some);
- ``grouped_kv_decode``: the (query heads per KV head, head dim) shapes for which the runtime's
  decode-attention kernel reads each KV head once for its whole query group ("any": every shape,
  as FlashDecoding-style kernels do); for other shapes it reads the KV cache once per query head,
  or once per thread block where a block serves several query heads (``decode_heads_per_block``);
- ``decode_heads_per_block``: where the kernel does not share a KV head across its whole query group,
  the numbers of query heads one thread block serves, the largest that divides the group taken
  (TurboMind 2 in lmdeploy 0.1-0.2: 4 or 2, ``ador.validation.kernels``), so each KV head is read
  group / heads times; empty (the default): one query head a block;
- ``kv_rereads_from_l2``: where it reads per query head, whether those reads are of one KV head that
  the query group's thread blocks read together, which DRAM serves once and the last-level cache every
  time (TensorRT-LLM's masked multi-head kernel, ``ador.perf.gpu.op_terms``); false (the default):
  every read comes from DRAM, as where the runtime first copies each KV head for every query head
  (gpt-fast's ``repeat_interleave`` before attention);
- ``dequant_per_row``: the weight-only precisions whose GEMM kernel dequantises the weight matrix
  once per activation row rather than once per GEMM (PyTorch's tinygemm int4 kernel, which gpt-fast
  and torchao call: ``ador.validation.kernels``); empty for kernels that reuse a dequantised tile;
- ``decode_kv_split``: whether the decode-attention kernel splits each sequence's KV cache over
  thread blocks until the SMs are busy (FlashDecoding, split-KV); without it one block streams each
  (sequence, KV head) and a small batch reads the cache at a few blocks' bandwidth, not the HBM's;
- ``fp8_cast_kernel``: whether the input of each FP8 linear layer is cast to FP8 by an elementwise
  kernel of its own (vLLM's ``scaled_fp8_quant`` before its V1 engine, SGLang, our GPU measurement
  script: ``ador.validation.kernels``): one more kernel per FP8 GEMM, reading the 16-bit activations
  and writing the 8-bit ones; false (the default): the cast is fused into the norm or activation
  kernel before it (TensorRT-LLM);
- ``first_token_from_decode``: whether the prefill pass stops one token short and the first token
  comes from a decode step over the last prompt token (TurboMind before lmdeploy 0.1.0a2,
  ``ador.validation.kernels``), so a request's first token costs the prefill of all but one prompt
  token plus one decode step; false (the default): the prefill pass emits it;
- ``reserved_bytes``: device memory the runtime keeps for itself;
- ``releases``: the releases of its software a fitted profile was fitted on (``0.5-0.9``; empty: not
  known or not fitted). Validation prices a row of a release outside them with the default profile,
  as an extrapolation: a later release is other software.

The fitted profiles (``tensorrt-llm``, ``gpt-fast``, ...) come from ``ador calibrate`` and live in
calibration.yaml; ``ideal`` and ``ador-paper`` are defined here. Custom profiles load from YAML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ador.config import from_mapping, load_yaml, to_mapping
from ador.errors import ConfigError, UnknownNameError
from ador.hardware.components import GiB

MEMORY_KINDS = ("hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6")
RELEASE_RANGE = re.compile(r"(\d+)\.(\d+)-(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class MemoryEfficiency:
    """Fraction of peak DRAM bandwidth reached, by memory kind; ``default`` for kinds not given."""
    default: float = 1.0
    hbm2: float | None = None
    hbm2e: float | None = None
    hbm3: float | None = None
    hbm3e: float | None = None
    gddr6: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not 0 < value <= 1:
                raise ConfigError(f.name, value, "an efficiency must be in (0, 1]")

    def of(self, memory_kind: str) -> float:
        value = getattr(self, memory_kind, None) if memory_kind in MEMORY_KINDS else None
        return self.default if value is None else value

    def fitted_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in MEMORY_KINDS if getattr(self, k) is not None)


@dataclass(frozen=True, slots=True)
class RuntimeProfile:
    name: str
    step_overhead_s: float = 0.0
    request_overhead_s: float = 0.0
    kernel_overhead_s: float = 0.0
    kernel_overhead_cycles: float = 0.0
    overlap: float = 1.0
    hbm_efficiency: MemoryEfficiency = field(default_factory=MemoryEfficiency)
    link_efficiency: float = 1.0
    collective_latency_s: float = 0.0
    comm_overlap: float = 0.0
    grouped_kv_decode: tuple[str, ...] = ("any",)
    decode_heads_per_block: tuple[int, ...] = ()
    kv_rereads_from_l2: bool = False
    decode_kv_split: bool = True
    dequant_per_row: tuple[str, ...] = ()
    first_token_from_decode: bool = False
    fp8_cast_kernel: bool = False
    reserved_bytes: float = 0.0
    releases: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "a runtime profile needs a name")
        for name in ("step_overhead_s", "request_overhead_s", "kernel_overhead_s", "kernel_overhead_cycles",
                     "collective_latency_s", "reserved_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ConfigError(name, value, "must be a finite number >= 0")
        for name in ("overlap", "comm_overlap"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(name, value, "must be in [0, 1]")
        for shape in self.grouped_kv_decode:
            parts = shape.split("x") if isinstance(shape, str) else []
            if shape != "any" and not (len(parts) == 2 and all(part.isdigit() for part in parts)):
                raise ConfigError("grouped_kv_decode", shape, "expected 'any' or GROUPxHEAD_DIM such as 8x128")
        if not isinstance(self.decode_heads_per_block, (tuple, list)) or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.decode_heads_per_block):
            raise ConfigError("decode_heads_per_block", self.decode_heads_per_block,
                              "expected a list of whole numbers >= 1 (query heads per thread block)")
        if not 0 < self.link_efficiency <= 1:
            raise ConfigError("link_efficiency", self.link_efficiency, "an efficiency must be in (0, 1]")
        if self.releases:
            bounds = self.release_bounds()
            if bounds is None or bounds[0] > bounds[1]:
                raise ConfigError("releases", self.releases, "expected FIRST-LAST releases such as 0.5-0.9")
        for name in ("decode_kv_split", "kv_rereads_from_l2", "first_token_from_decode", "fp8_cast_kernel"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be true or false")
        if isinstance(self.dequant_per_row, str) or not all(isinstance(p, str) for p in self.dequant_per_row):
            raise ConfigError("dequant_per_row", self.dequant_per_row, "expected a list of precision names")
        from ador.workload.precision import PRECISIONS
        for name in self.dequant_per_row:
            if name not in PRECISIONS or not PRECISIONS[name].weight_only:
                weight_only = ", ".join(k for k, v in PRECISIONS.items() if v.weight_only)
                raise ConfigError("dequant_per_row", name, f"not a weight-only precision (they are: {weight_only})")

    def decode_kv_reads(self, kv_group: int, head_dim: int) -> int:
        """How many times a decode step reads each KV head: once if the kernel shares it across the
        query group, else once per thread block of the group (``decode_heads_per_block``; one query
        head a block where none is given or none divides the group)."""
        if kv_group <= 1 or "any" in self.grouped_kv_decode or f"{kv_group}x{head_dim}" in self.grouped_kv_decode:
            return 1
        heads = max((h for h in self.decode_heads_per_block if kv_group % h == 0), default=1)
        return kv_group // heads

    def release_bounds(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """``releases`` as ((major, minor) first, (major, minor) last); None when not given."""
        m = RELEASE_RANGE.fullmatch(self.releases)
        if m is None:
            return None
        a, b, c, d = (int(g) for g in m.groups())
        return (a, b), (c, d)

    def covers(self, release: tuple[int, int] | None) -> bool:
        """Was this profile fitted on ``release`` (major, minor) of its software? Yes when either is
        unknown."""
        bounds = self.release_bounds()
        return bounds is None or release is None or bounds[0] <= release <= bounds[1]

    def op_overhead_s(self, freq_hz: float) -> float:
        """Fixed cost of one operator on a device clocked at ``freq_hz``."""
        return self.kernel_overhead_s + self.kernel_overhead_cycles / freq_hz

    def hbm(self, memory_kind: str) -> float:
        return self.hbm_efficiency.of(memory_kind)

    def to_mapping(self) -> dict[str, Any]:
        data = to_mapping(self)
        data["hbm_efficiency"] = {k: v for k, v in data["hbm_efficiency"].items() if v is not None}
        return data


# No software at all between the hardware and the work: zero overheads, perfect compute/memory
# overlap, every byte at peak bandwidth. A bound, not a prediction.
IDEAL = RuntimeProfile(name="ideal", source="ador: physics only (no software overheads, peak bandwidths)")

# What the ADOR paper's own simulator assumes for its chip (and what ador 0.1 assumed for designs):
# a statically scheduled command processor dispatching each operator in ~1000 cycles (the order TPU
# profiles show between dependent ops), 90% of peak HBM and link bandwidth (refresh and read/write
# turnarounds cost 5-10% of DRAM bus time on sequential streams, JEDEC JESD238 refresh timing;
# packet headers and flow control cost ~10% of SerDes links), no host overhead per step, perfect
# overlap of transfers with compute. Used to show what the "as the paper would have it" ratio is.
ADOR_PAPER = RuntimeProfile(
    name="ador-paper", kernel_overhead_cycles=1000.0, hbm_efficiency=MemoryEfficiency(default=0.90),
    link_efficiency=0.90,
    source="ADOR-paper assumptions for a statically scheduled chip: 1000-cycle dispatch, 90% HBM and link "
           "bandwidth, no host overhead, perfect overlap (ador 0.1's design-side model)")

# Memory a GPU serving runtime keeps for itself: the CUDA context with cuBLAS handles (about 0.5 GiB
# per process as nvidia-smi shows for an idle PyTorch process) plus NCCL channel buffers (4 MiB
# NCCL_BUFFSIZE per channel and peer, a few hundred MiB at TP8). 1 GiB covers both. Fitted profiles
# carry it, whichever device they drive: a design's runtime needs firmware, collective and staging
# buffers too.
SERVING_RUNTIME_RESERVED_BYTES = 1 * GiB

BUILTIN: dict[str, RuntimeProfile] = {p.name: p for p in (IDEAL, ADOR_PAPER)}
DEFAULT_RUNTIME = "tensorrt-llm"   # what both sides run unless a study or command says otherwise


def runtime_from_mapping(data: Any, where: str = "runtime") -> RuntimeProfile:
    return from_mapping(RuntimeProfile, data, where)


def load_runtime(path: str | Path) -> RuntimeProfile:
    data = load_yaml(path)
    if isinstance(data, dict) and "runtime" in data and len(data) == 1:
        data = data["runtime"]
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": Path(path).stem}
    return runtime_from_mapping(data, "runtime")


def runtime_profiles() -> dict[str, RuntimeProfile]:
    """Every named profile: the fitted ones (calibration.yaml) and the built-in ones."""
    from ador.hardware.calibration import fitted_runtimes
    return {**fitted_runtimes(), **BUILTIN}


def get_runtime(spec: str | RuntimeProfile | dict | None = None) -> RuntimeProfile:
    """A profile by name, from a YAML file, from a mapping, or the default (None)."""
    if isinstance(spec, RuntimeProfile):
        return spec
    if spec is None:
        spec = DEFAULT_RUNTIME
    if isinstance(spec, dict):
        return runtime_from_mapping(spec)
    if not isinstance(spec, str):
        raise ConfigError("runtime", spec, "expected a profile name, a .yaml file or a mapping")
    profiles = runtime_profiles()
    if spec in profiles:
        return profiles[spec]
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_runtime(path)
    raise UnknownNameError("runtime", spec, f"unknown runtime profile (known: {', '.join(profiles)}; "
                                            "or a path to a profile .yaml)")
