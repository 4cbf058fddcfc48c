"""Area, power and cost of one device, and the energy of a workload on it.

Power follows one rule on both sides of a comparison. The component model (MACs, vector lanes,
SRAM, DRAM and link traffic, leakage) leaves out what no floorplan line shows (clock tree, control
and operand delivery, voltage regulation). ``calibrated`` (the default) scales every device's
component figures by factors fitted on the GPUs whose dies it reproduces, so a design pays the same
unmodelled share a GPU does: its full-load estimate (every unit busy at once: the TDP a design needs)
by the GPUs' datasheet TDP over that estimate, and the energy of counted work by their datasheet TDP
over the power of their heaviest sustained work, a large dense GEMM (the board limit binds there:
``work_energy_calibration``). ``components`` scales nobody; ``datasheet-gpus`` (what ador 0.1 did)
anchors each GPU to its own datasheet TDP and leaves designs unscaled, which flatters designs by the
factor.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from ador.cost import technology as tech
from ador.cost.area import Floorplan, device_area, floorplan_of, io_phy_mm2
from ador.cost.package import Package, package_of
from ador.cost.power import full_load_power_w, work_energy_components, work_energy_j
from ador.cost.price import die_cost_usd, die_yield, memory_cost_usd
from ador.errors import ConfigError
from ador.hardware.calibration import calibrated
from ador.hardware.devices import Device, GpuSpec
from ador.hardware.presets import _GPU_SPECS

PowerRule = Literal["calibrated", "components", "datasheet-gpus"]
POWER_RULES: tuple[str, ...] = ("calibrated", "components", "datasheet-gpus")
DEFAULT_POWER_RULE = "calibrated"


def _full_load_w(spec: GpuSpec) -> dict[str, float] | None:
    """A GPU's full-load component power (W, unscaled); None where the area model has no floorplan."""
    fp = floorplan_of(spec)
    if fp is None:
        return None
    return full_load_power_w(fp, freq_hz=spec.freq_hz, die_area_mm2=sum(device_area(fp).values()),
                             sram_bw_bytes_per_s=fp.noc_bytes_per_cycle * spec.freq_hz,
                             dram_bw_bytes_per_s=spec.hbm_bw_bytes_per_s,
                             link_bw_bytes_per_s=spec.link_bw_bytes_per_s)


@lru_cache(maxsize=1)
def component_power_calibration() -> float:
    """Datasheet TDP over full-load component estimate, geometric mean over the GPUs whose dies the
    area model reproduces (GA100, GH100, AD102 SKUs): the share of power no component line shows."""
    ratios = []
    for spec in _GPU_SPECS:
        full = _full_load_w(spec)
        if full is not None:
            ratios.append(spec.tdp_w / sum(full.values()))
    return statistics.geometric_mean(ratios)


@lru_cache(maxsize=1)
def work_energy_calibration() -> float:
    """Datasheet TDP over the component power of a large dense GEMM (MACs at the die's fitted tensor
    fraction of peak, plus leakage), geometric mean over the same GPUs: what counted work's energy is
    multiplied by. A board's power limit binds on dense GEMMs, not with every unit busy at once as the
    full-load estimate counts (measured: H100 and H200 held 690-700 W of their 700 W limit on bf16 and
    fp8 GEMMs with the SM clock down to 1.25-1.46 GHz; ador/data/own/energy-*.json), so anchoring counted
    energy to the full-load factor prices a GPU's work at about 0.4 of its measured energy. One factor for
    every component: a matrix-vector stream (DRAM bytes, no MACs) measured on the same boards is priced
    near its measured energy only if DRAM traffic pays it too (docs/validation.md)."""
    return statistics.geometric_mean(work_energy_ratios().values())


@lru_cache(maxsize=1)
def work_energy_ratios() -> dict[str, float]:
    """Per GPU SKU with a floorplan: datasheet TDP over its dense GEMM's component power (the
    geometric mean of these is ``work_energy_calibration``)."""
    ratios = {}
    for spec in _GPU_SPECS:
        full = _full_load_w(spec)
        if full is not None:
            sustained = full["macs"] * calibrated(spec).efficiency.tensor + full["static"]
            ratios[spec.name] = spec.tdp_w / sustained
    return ratios


@dataclass(frozen=True)
class DeviceCost:
    name: str
    kind: str
    node_nm: int
    die_area_mm2: float                      # GPU: datasheet; ADOR: component model
    estimated_die_area_mm2: float | None     # component model (None: no floorplan for this GPU)
    components: dict[str, float] = field(default_factory=dict)   # mm2 by component
    dies: int = 1
    tdp_w: float = 0.0                       # full-load power by the power rule
    estimated_tdp_w: float | None = None     # raw component estimate (None: no floorplan)
    datasheet_tdp_w: float | None = None     # GPUs: the vendor's figure
    power_rule: str = DEFAULT_POWER_RULE
    energy_scale: float = 1.0                # what the power rule multiplies counted work's energy by
    tdp_scale: float = 1.0                   # what it multiplies the full-load component estimate by
    power_components: dict[str, float] = field(default_factory=dict)
    die_yield: float = 0.0
    die_cost_usd: float = 0.0
    memory_cost_usd: float = 0.0
    package_cost_usd: float = 0.0
    memory_kind: str = ""
    package: Package | None = None

    @property
    def package_area_mm2(self) -> float:
        return self.package.package_area_mm2 if self.package else self.die_area_mm2

    @property
    def cost_usd(self) -> float:
        return self.die_cost_usd + self.memory_cost_usd + self.package_cost_usd

    @property
    def within_reticle(self) -> bool:
        return self.die_area_mm2 / self.dies <= tech.RETICLE_LIMIT_MM2

    @property
    def static_w(self) -> float:
        return self.die_area_mm2 * tech.STATIC_W_PER_MM2

    @property
    def working_static_w(self) -> float:
        """Static power charged over the time of counted work: leakage scaled as counted work is."""
        return self.static_w * self.energy_scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "node_nm": self.node_nm, "die_area_mm2": self.die_area_mm2,
            "estimated_die_area_mm2": self.estimated_die_area_mm2, "dies": self.dies,
            "within_reticle": self.within_reticle, "reticle_limit_mm2": tech.RETICLE_LIMIT_MM2,
            "components": self.components, "tdp_w": self.tdp_w, "estimated_tdp_w": self.estimated_tdp_w,
            "datasheet_tdp_w": self.datasheet_tdp_w, "power_rule": self.power_rule, "energy_scale": self.energy_scale,
            "tdp_scale": self.tdp_scale,
            "power_components": self.power_components, "memory_kind": self.memory_kind,
            "die_yield": self.die_yield, "die_cost_usd": self.die_cost_usd,
            "memory_cost_usd": self.memory_cost_usd, "package_cost_usd": self.package_cost_usd,
            "cost_usd": self.cost_usd, "package_area_mm2": self.package_area_mm2,
            "package": None if self.package is None else {
                "memory_sites": self.package.memory_sites, "stack_area_mm2": self.package.stack_area_mm2,
                "package_area_mm2": self.package.package_area_mm2,
                "shoreline_checked": self.package.checked, "shoreline_fits": self.package.shoreline_fits,
                "shoreline_utilisation": self.package.shoreline_utilisation,
                "hbm_shoreline_mm": self.package.hbm_shoreline_mm, "hbm_edge_mm": self.package.hbm_edge_mm,
                "io_shoreline_mm": self.package.io_shoreline_mm, "io_edge_mm": self.package.io_edge_mm,
                "d2d_shoreline_mm": self.package.d2d_shoreline_mm, "d2d_edge_mm": self.package.d2d_edge_mm},
        }


def _sram_bw(device: Device, fp: Floorplan) -> float:
    if device.kind == "ador":
        return device.sram.bw_bytes_per_s
    return fp.noc_bytes_per_cycle * device.freq_hz


def power_scale(kind: str, rule: str, datasheet_tdp_w: float | None, estimated_tdp_w: float | None) -> float:
    """Factor on the full-load component estimate (the TDP) of a device of ``kind`` under ``rule``."""
    if rule == "calibrated":
        return component_power_calibration()
    if rule == "components":
        return 1.0
    if rule == "datasheet-gpus":
        return datasheet_tdp_w / estimated_tdp_w if kind == "gpu" and estimated_tdp_w and datasheet_tdp_w else 1.0
    raise ConfigError("power_rule", rule, f"unknown power rule (known: {', '.join(POWER_RULES)})")


def work_energy_scale(kind: str, rule: str, datasheet_tdp_w: float | None, estimated_tdp_w: float | None) -> float:
    """Factor on the energy of counted work of a device of ``kind`` under ``rule``: the GEMM-anchored
    factor under ``calibrated``, else the TDP's factor (``datasheet-gpus`` anchors a GPU's energy to
    its datasheet as ador 0.1 did)."""
    if rule == "calibrated":
        return work_energy_calibration()
    return power_scale(kind, rule, datasheet_tdp_w, estimated_tdp_w)


@lru_cache(maxsize=4096)
def assess(device: Device, power_rule: str = DEFAULT_POWER_RULE) -> DeviceCost:
    """Area, power and cost of a device (cached: a design is an immutable value)."""
    fp = floorplan_of(device)
    components = device_area(fp) if fp else {}
    estimated = float(sum(components.values())) if fp else None
    area: float
    memory_kind: str
    if device.kind == "ador":
        assert estimated is not None           # every ADOR design has a floorplan
        area = estimated
        memory_kind = device.hbm.generation
    else:
        area = device.die_area_mm2
        memory_kind = device.memory_kind
    dies = max(1, math.ceil(area / tech.RETICLE_LIMIT_MM2)) if device.kind == "gpu" else device.dies
    # each kind of die at its own size and node: a chiplet GPU's, else ``dies`` equal dies
    kinds = [(c.count, c.area_mm2, c.node_nm) for c in device.chiplets] if device.kind == "gpu" and device.chiplets \
        else [(dies, area / dies, device.node_nm)]
    dies = sum(n for n, _, _ in kinds)
    power = {}
    estimated_tdp = None
    if fp:
        assert estimated is not None
        power = full_load_power_w(fp, freq_hz=device.freq_hz, die_area_mm2=estimated,
                                  sram_bw_bytes_per_s=_sram_bw(device, fp),
                                  dram_bw_bytes_per_s=device.hbm_bw_bytes_per_s,
                                  link_bw_bytes_per_s=device.link_bw_bytes_per_s)
        estimated_tdp = sum(power.values())
    datasheet = device.tdp_w if device.kind == "gpu" else None
    scale = power_scale(device.kind, power_rule, datasheet, estimated_tdp)
    work_scale = work_energy_scale(device.kind, power_rule, datasheet, estimated_tdp)
    # a GPU whose die has no floorplan here (chiplet packages) keeps its datasheet TDP
    tdp = estimated_tdp * scale if estimated_tdp is not None else datasheet
    assert tdp is not None                     # a device has a floorplan or is a GPU with a datasheet TDP
    package = package_of(die_area_mm2=area, dies=dies, memory_kind=memory_kind, memory_sites=device.memory_sites,
                         floorplan=fp, io_phy_mm2=io_phy_mm2(fp) if fp else 0.0)
    return DeviceCost(
        name=device.name, kind=device.kind, node_nm=device.node_nm, die_area_mm2=area,
        estimated_die_area_mm2=estimated, components=components, dies=dies, tdp_w=tdp,
        estimated_tdp_w=estimated_tdp, datasheet_tdp_w=datasheet, power_rule=power_rule, energy_scale=work_scale,
        tdp_scale=scale,
        power_components={k: v * scale for k, v in power.items()},
        die_yield=sum(n * a * die_yield(a, node) for n, a, node in kinds) / area,      # area-weighted
        die_cost_usd=sum(n * die_cost_usd(a, node) for n, a, node in kinds),
        memory_cost_usd=memory_cost_usd(device.hbm_capacity_bytes, memory_kind),
        package_cost_usd=tech.PACKAGE_COST_USD, memory_kind=memory_kind, package=package,
    )


def workload_energy_j(device: Device, compute_dtype: str, activity: dict[str, float],
                      power_rule: str = DEFAULT_POWER_RULE) -> float:
    """Energy of one device doing ``activity`` (keys: flops, vector_ops, dram_bytes, onchip_bytes,
    link_bytes, seconds), scaled by the power rule like its TDP."""
    cost = assess(device, power_rule)
    energy = work_energy_j(node_nm=device.node_nm, memory_kind=cost.memory_kind, compute_dtype=compute_dtype,
                           static_w=cost.static_w, **activity)
    return energy * cost.energy_scale


def workload_energy_components(device: Device, compute_dtype: str, activity: dict[str, float],
                               power_rule: str = DEFAULT_POWER_RULE) -> dict[str, float]:
    """``workload_energy_j`` by component (J): what its sum is made of."""
    cost = assess(device, power_rule)
    parts = work_energy_components(node_nm=device.node_nm, memory_kind=cost.memory_kind,
                                   compute_dtype=compute_dtype, static_w=cost.static_w, **activity)
    return {k: v * cost.energy_scale for k, v in parts.items()}
