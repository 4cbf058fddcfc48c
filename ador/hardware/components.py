"""Building blocks of an ADOR accelerator: matrix engines, vector unit, memories, NoC, links.

Every field carries its unit in its name; each block validates itself and names the bad field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ador.errors import ConfigError

Dataflow = Literal["weight_stationary", "output_stationary"]
HbmGeneration = Literal["hbm2", "hbm2e", "hbm3", "hbm3e"]
MemoryKind = Literal["hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6"]
# how devices reach each other: a ring (DFX, LPU), a switch (NVSwitch), a full mesh (Infinity Fabric),
# or a switch that also reduces (NVSwitch with NVLink SHARP: H100, H200, B200 boards; no switch silicon is
# priced for a design that says so)
Topology = Literal["ring", "switch", "fully_connected", "reducing_switch"]
BufferKind = Literal["shared", "private"]

GiB = 1024 ** 3
MiB = 1024 ** 2
KiB = 1024

# Per-stack HBM figures by generation: pin rate x 1024-bit interface / 8, and the common stack
# capacity of that generation. Sources: JEDEC JESD235B (HBM2, 2.4 Gb/s), SK hynix HBM2E
# (3.6 Gb/s, 16 GB 8-high), JEDEC JESD238 (HBM3, 6.4 Gb/s, 16 GB), SK hynix/Micron HBM3E
# (9.6 Gb/s, 24 GB 8-high).
HBM_GENERATIONS: dict[str, tuple[float, float]] = {
    # generation: (bytes/s per stack, bytes per stack)
    "hbm2": (2.4e9 * 1024 / 8, 8 * GiB),
    "hbm2e": (3.6e9 * 1024 / 8, 16 * GiB),
    "hbm3": (6.4e9 * 1024 / 8, 16 * GiB),
    "hbm3e": (9.6e9 * 1024 / 8, 24 * GiB),
}

# One hop between the dies of a package: under 2 ns from one die's logic to the other's (UCIe 1.0
# key performance targets, 2022; Das Sharma, Hot Interconnects 2025).
D2D_LATENCY_S = 2e-9


def _check(obj: object, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    for name in positive:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise ConfigError(name, value, "must be a positive finite number")
    for name in non_negative:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
            raise ConfigError(name, value, "must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class SystolicArrays:
    """``count`` arrays of ``rows`` x ``cols`` MACs; count 0 means the chip has none."""
    count: int
    rows: int = 128
    cols: int = 128
    dataflow: Dataflow = "weight_stationary"
    local_sram_bytes: int = 1 * MiB   # per array: operand staging and fp32 accumulators

    def __post_init__(self) -> None:
        _check(self, positive=("rows", "cols", "local_sram_bytes"), non_negative=("count",))

    @property
    def macs(self) -> int:
        return self.count * self.rows * self.cols


@dataclass(frozen=True, slots=True)
class MacTrees:
    """``count`` adder trees, each reducing ``width`` products per cycle (GEMV engines).

    ``buffer`` says where the activation vectors the trees multiply live. ``shared`` (HyperAccel
    LPU's operand register file, Moon et al., IEEE Micro 2024): one buffer of
    ``shared_buffer_bytes`` that every tree reads, so one weight row streamed from HBM serves every
    sequence whose activations sit in it. ``private``: each tree keeps its own copy in its
    ``local_buffer_bytes``, so a weight row is re-streamed for each group of sequences that fits
    there. ``local_buffer_bytes`` (per tree) also stages weights and partial sums in both cases.
    """
    count: int
    width: int = 256
    local_buffer_bytes: int = 128 * KiB  # per tree
    buffer: BufferKind = "shared"
    shared_buffer_bytes: int = 4 * MiB   # the operand buffer all trees read (buffer: shared)

    def __post_init__(self) -> None:
        _check(self, positive=("width", "local_buffer_bytes"), non_negative=("count", "shared_buffer_bytes"))
        if self.buffer not in ("shared", "private"):
            raise ConfigError("buffer", self.buffer, "expected shared or private")
        if self.buffer == "shared" and self.count and not self.shared_buffer_bytes:
            raise ConfigError("shared_buffer_bytes", 0, "a shared operand buffer needs a capacity")

    @property
    def macs(self) -> int:
        return self.count * self.width

    @property
    def log2_width(self) -> float:
        """Adder-tree depth (cycles of reduction latency)."""
        return math.log2(self.width)

    @property
    def activation_buffer_bytes(self) -> int:
        """Bytes of activation vectors one streamed weight row can be reused against."""
        return self.shared_buffer_bytes if self.buffer == "shared" else self.local_buffer_bytes


@dataclass(frozen=True, slots=True)
class VectorUnit:
    lanes: int                   # elementwise operations per cycle
    sfu_per_cycle: int = 64      # special functions (exp, rsqrt, tanh) per cycle

    def __post_init__(self) -> None:
        _check(self, positive=("lanes", "sfu_per_cycle"))


@dataclass(frozen=True, slots=True)
class GlobalSram:
    capacity_bytes: int
    bw_bytes_per_s: float

    def __post_init__(self) -> None:
        _check(self, positive=("bw_bytes_per_s",), non_negative=("capacity_bytes",))


@dataclass(frozen=True, slots=True)
class Hbm:
    stacks: int
    generation: HbmGeneration = "hbm3"
    bw_bytes_per_s_per_stack: float = 0.0   # 0: the generation's figure
    capacity_bytes_per_stack: float = 0.0   # 0: the generation's figure

    def __post_init__(self) -> None:
        if not isinstance(self.generation, str) or self.generation not in HBM_GENERATIONS:
            raise ConfigError("generation", self.generation, f"expected one of {', '.join(HBM_GENERATIONS)}")
        _check(self, positive=("stacks",), non_negative=("bw_bytes_per_s_per_stack", "capacity_bytes_per_stack"))
        bw, cap = HBM_GENERATIONS[self.generation]
        if not self.bw_bytes_per_s_per_stack:
            object.__setattr__(self, "bw_bytes_per_s_per_stack", bw)
        if not self.capacity_bytes_per_stack:
            object.__setattr__(self, "capacity_bytes_per_stack", float(cap))

    @property
    def bw_bytes_per_s(self) -> float:
        return self.stacks * self.bw_bytes_per_s_per_stack

    @property
    def capacity_bytes(self) -> float:
        return self.stacks * self.capacity_bytes_per_stack


@dataclass(frozen=True, slots=True)
class Noc:
    bw_bytes_per_s: float   # bisection bandwidth between global SRAM and the engines

    def __post_init__(self) -> None:
        _check(self, positive=("bw_bytes_per_s",))


@dataclass(frozen=True, slots=True)
class Links:
    """Chip-to-chip links; bandwidth is per link and per direction."""
    count: int
    bw_bytes_per_s_per_link: float = 50e9
    latency_s: float = 1e-6
    topology: Topology = "switch"

    def __post_init__(self) -> None:
        _check(self, positive=("bw_bytes_per_s_per_link",), non_negative=("count", "latency_s"))

    @property
    def bw_bytes_per_s(self) -> float:
        return self.count * self.bw_bytes_per_s_per_link
