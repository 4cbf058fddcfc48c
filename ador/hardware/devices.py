"""Devices: the heterogeneous ADOR chip template and GPUs described by datasheet peaks.

Both expose the same small surface the perf layer needs (``kind``, ``name``,
``hbm_bw_bytes_per_s``, ``hbm_capacity_bytes``, ``link_bw_bytes_per_s``) and are frozen, so
a design is a value: it hashes, compares, and round-trips through YAML.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from ador.errors import ConfigError, UnevenSplitError
from ador.hardware.components import (GlobalSram, Hbm, Links, MacTrees, MemoryKind, Noc, SystolicArrays,
                                      Topology, VectorUnit, _check)

# Process nodes the cost model knows how to scale between.
NODES_NM = (16, 12, 7, 5, 4, 3)
# Most dies one package holds (MI300X carries 8 compute dies; more is outside the data we have).
MAX_DIES = 8


def split_counts(chip) -> dict:
    """What identical dies must share evenly: the counts of engines and HBM stacks (works on a chip
    or on a namespace of per-design arrays)."""
    return {"systolic.count": chip.systolic.count, "mactree.count": chip.mactree.count,
            "hbm.stacks": chip.hbm.stacks}


# The fields of an engine array besides its count: with count 0 the chip has none of them, so they
# change neither its area nor its speed.
_ENGINE_FIELDS = {"systolic": ("rows", "cols", "dataflow", "local_sram_bytes"),
                  "mactree": ("width", "local_buffer_bytes", "buffer", "shared_buffer_bytes")}


# the fields ``inert_fields`` reads
INERT_SWITCHES = ("systolic.count", "mactree.count", "mactree.buffer")


def inert_fields(fields: Mapping[str, Any]) -> frozenset[str]:
    """The dotted fields of a chip (``fields``: its flattened mapping, ``systolic.count`` ...) whose
    values change nothing about it: an engine array's other fields when it has no engines, and the
    shared operand buffer of MAC trees that keep private buffers. Two chips that differ only in
    these are one design."""
    out = {f"{unit}.{name}" for unit, names in _ENGINE_FIELDS.items() if fields[f"{unit}.count"] == 0
           for name in names}
    if fields["mactree.buffer"] == "private":
        out.add("mactree.shared_buffer_bytes")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class AdorChip:
    name: str
    systolic: SystolicArrays
    mactree: MacTrees
    vector: VectorUnit
    sram: GlobalSram
    hbm: Hbm
    noc: Noc
    links: Links
    freq_hz: float = 1.0e9
    node_nm: int = 7
    # Fraction of the matrix engines' clock peak they sustain beyond the fill/drain and edge tiles
    # the perf model counts (clocks under load, stalls). Assumption: 1.0, no further loss; GPUs carry
    # a fitted equivalent (GpuEfficiency.tensor), and docs/modelling.md measures what it is worth.
    matrix_efficiency: float = 1.0
    # Identical dies the device is cut into (chiplets on one interposer). The components above are
    # the device's totals; each die holds an equal share of the engines, SRAM and HBM stacks, and
    # the dies split every layer tensor-parallel, reducing over die-to-die links of
    # ``die_to_die_bw_bytes_per_s`` per die and direction (ador.perf.ador_engines).
    dies: int = 1
    die_to_die_bw_bytes_per_s: float = 2.0e12
    kind: Literal["ador"] = "ador"

    def __post_init__(self) -> None:
        _check(self, positive=("freq_hz",))
        if not 0 < self.matrix_efficiency <= 1:
            raise ConfigError("matrix_efficiency", self.matrix_efficiency, "an efficiency must be in (0, 1]")
        if self.node_nm not in NODES_NM:
            raise ConfigError("node_nm", self.node_nm, f"unknown process node (known: {', '.join(map(str, NODES_NM))})")
        if self.systolic.count == 0 and self.mactree.count == 0:
            raise ConfigError("systolic.count", 0, "a chip needs at least one systolic array or MAC tree")
        if self.freq_hz > 5e9:
            raise ConfigError("freq_hz", self.freq_hz, "above 5 GHz is not a buildable clock for a MAC array")
        if isinstance(self.dies, bool) or not isinstance(self.dies, int) or not 1 <= self.dies <= MAX_DIES:
            raise ConfigError("dies", self.dies, f"must be a whole number of dies from 1 to {MAX_DIES}")
        _check(self, positive=("die_to_die_bw_bytes_per_s",))
        for name, count in split_counts(self).items():
            if count % self.dies:
                raise UnevenSplitError(name, count, f"must split evenly over dies={self.dies} identical dies")

    @property
    def hbm_bw_bytes_per_s(self) -> float:
        return self.hbm.bw_bytes_per_s

    @property
    def hbm_capacity_bytes(self) -> float:
        return self.hbm.capacity_bytes

    @property
    def link_bw_bytes_per_s(self) -> float:
        return self.links.bw_bytes_per_s

    @property
    def link_latency_s(self) -> float:
        return self.links.latency_s

    @property
    def topology(self) -> str:
        return self.links.topology

    @property
    def memory_kind(self) -> str:
        return self.hbm.generation

    @property
    def memory_stacks(self) -> int:
        return self.hbm.stacks

    @property
    def memory_sites(self) -> int:
        return self.hbm.stacks


@dataclass(frozen=True, slots=True)
class GpuEfficiency:
    """What a GPU die's compute units reach, beyond the tile and wave quantisation the perf model
    counts: fractions of the dense tensor peaks that large GEMMs sustain (clocks under load,
    instruction issue, pipeline bubbles) and of the SIMT peak that weight dequantisation reaches.

    Fitted on ``shared/validation/measured.csv`` by ``ador calibrate``; ``source`` says how. What the
    software adds (overheads, overlap, bandwidth efficiencies) is the system's runtime profile.
    """
    tensor: float = 0.70               # fraction of dense fp16 tensor peak reached by large GEMMs
    tensor_fp8: float = 0.60           # the same for fp8 GEMMs of the fp8 peak
    dequant: float = 0.25              # fraction of the SIMT peak reached by weight dequantisation
    source: str = "uncalibrated defaults"
    rows: int = 0                      # public measurements of this GPU the fit used (0: unvalidated)

    @property
    def validated(self) -> bool:
        return self.rows > 0

    def __post_init__(self) -> None:
        for name in ("tensor", "tensor_fp8", "dequant"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(name, value, "an efficiency must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Chiplet:
    """``count`` dies of ``area_mm2`` each made at ``node_nm``: one kind of die in a GPU package
    whose dies differ (MI300X: compute dies on one node, I/O dies on another)."""
    count: int
    area_mm2: float
    node_nm: int

    def __post_init__(self) -> None:
        _check(self, positive=("count", "area_mm2"))
        if not isinstance(self.count, int) or isinstance(self.count, bool):
            raise ConfigError("count", self.count, "must be a whole number of dies")
        if self.node_nm not in NODES_NM:
            raise ConfigError("node_nm", self.node_nm, f"the cost model knows nodes {', '.join(map(str, NODES_NM))}")


GemmSchedule = Literal["waves", "stream-k"]


@dataclass(frozen=True, slots=True)
class GpuSpec:
    name: str
    vendor: str
    fp16_flops_per_s: float            # dense tensor FLOP/s at fp16/bf16
    fp8_flops_per_s: float             # dense; 0 where the GPU has no FP8 tensor cores
    int8_ops_per_s: float
    hbm_bw_bytes_per_s: float
    hbm_capacity_bytes: float
    l2_bytes: float
    sm_count: int
    freq_hz: float                     # boost clock
    link_bw_bytes_per_s: float         # GPU-to-GPU, per direction, all links together
    simt_flops_per_s: float            # non-tensor fp32 FLOP/s (CUDA cores / stream processors)
    die_area_mm2: float                # datasheet / die-shot figure, all compute dies together
    node_nm: int
    tdp_w: float
    memory_kind: MemoryKind = "hbm3"
    memory_stacks: int = 0             # active HBM stacks (0: GDDR on the board)
    memory_sites: int = 0              # HBM stacks on the package, dummy spacers included
    link_latency_s: float = 2e-6       # one hop over the GPU-to-GPU fabric
    topology: Topology = "switch"
    # how the GPU's GEMM libraries place output tiles on the SMs (``ador.perf.gpu.tile_utilisation``):
    # "waves", data-parallel tiles in whole waves (split-K only to fill one wave), or "stream-k",
    # persistent kernels that share the K iterations of all tiles evenly over the SMs (no partial wave)
    gemm_schedule: GemmSchedule = "waves"
    # last-level cache read bandwidth, whole chip (0: not known). A decode-attention kernel that runs
    # one thread block per query head re-reads a shared KV head from here (ador.perf.gpu.op_terms)
    l2_bw_bytes_per_s: float = 0.0
    efficiency: GpuEfficiency = field(default_factory=GpuEfficiency)
    source: str = ""
    # the package's dies where they are not die_area_mm2 cut into reticle-sized pieces at node_nm
    # (a chiplet GPU); they must add up to die_area_mm2, and each kind is costed at its own size and node
    chiplets: tuple[Chiplet, ...] = ()
    kind: Literal["gpu"] = "gpu"

    def __post_init__(self) -> None:
        _check(self, positive=("fp16_flops_per_s", "simt_flops_per_s", "hbm_bw_bytes_per_s", "hbm_capacity_bytes",
                               "sm_count", "freq_hz", "die_area_mm2", "tdp_w"),
               non_negative=("fp8_flops_per_s", "int8_ops_per_s", "l2_bytes", "l2_bw_bytes_per_s",
                             "link_bw_bytes_per_s", "link_latency_s", "memory_stacks", "memory_sites"))
        if self.memory_sites < self.memory_stacks:
            raise ConfigError("memory_sites", self.memory_sites, f"fewer than memory_stacks={self.memory_stacks}")
        if self.gemm_schedule not in ("waves", "stream-k"):
            raise ConfigError("gemm_schedule", self.gemm_schedule, "expected one of waves, stream-k")
        if self.chiplets:
            total = sum(c.count * c.area_mm2 for c in self.chiplets)
            if abs(total - self.die_area_mm2) > 0.01 * self.die_area_mm2:
                raise ConfigError("chiplets", round(total, 1), f"add up to {total:.0f} mm2, not die_area_mm2="
                                                               f"{self.die_area_mm2:g}")

    def peak_flops(self, compute_dtype: str) -> float:
        """Dense tensor peak for a MAC datatype; 0 if the GPU cannot multiply in it."""
        if compute_dtype == "fp16":
            return self.fp16_flops_per_s
        if compute_dtype == "fp8":
            return self.fp8_flops_per_s
        if compute_dtype == "int8":
            return self.int8_ops_per_s
        return 0.0


Device = AdorChip | GpuSpec
