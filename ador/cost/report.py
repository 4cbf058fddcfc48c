"""Area, power and cost of one device, and the efficiency metrics of a workload on a system."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ador.cost import technology as tech
from ador.cost.area import Floorplan, die_area, floorplan_of
from ador.cost.power import full_load_power_w, work_energy_j
from ador.cost.price import die_cost_usd, die_yield, memory_cost_usd
from ador.hardware.devices import Device

# Memory of GPUs without a floorplan here (chiplet packages): MI300X HBM3, B200 HBM3E (datasheets).
GPU_MEMORY_KIND = {"mi300x-192gb": "hbm3", "b200-sxm-192gb": "hbm3e"}


@dataclass(frozen=True)
class DeviceCost:
    name: str
    kind: str
    node_nm: int
    die_area_mm2: float                      # GPU: datasheet; ADOR: component model
    estimated_die_area_mm2: float | None     # component model (None: no floorplan for this GPU)
    components: dict[str, float] = field(default_factory=dict)   # mm2 by component
    dies: int = 1
    tdp_w: float = 0.0                       # GPU: datasheet; ADOR: full-load estimate
    estimated_tdp_w: float | None = None
    power_components: dict[str, float] = field(default_factory=dict)
    die_yield: float = 0.0
    die_cost_usd: float = 0.0
    memory_cost_usd: float = 0.0
    package_cost_usd: float = 0.0
    memory_kind: str = ""

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
    def energy_calibration(self) -> float:
        """GPU energies are anchored to the datasheet TDP (the component model omits the register-file
        and scheduling energy of SIMT execution); 1 for ADOR designs."""
        if self.kind == "gpu" and self.estimated_tdp_w:
            return self.tdp_w / self.estimated_tdp_w
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "node_nm": self.node_nm, "die_area_mm2": self.die_area_mm2,
            "estimated_die_area_mm2": self.estimated_die_area_mm2, "dies": self.dies,
            "within_reticle": self.within_reticle, "reticle_limit_mm2": tech.RETICLE_LIMIT_MM2,
            "components": self.components, "tdp_w": self.tdp_w, "estimated_tdp_w": self.estimated_tdp_w,
            "power_components": self.power_components, "memory_kind": self.memory_kind,
            "die_yield": self.die_yield, "die_cost_usd": self.die_cost_usd,
            "memory_cost_usd": self.memory_cost_usd, "package_cost_usd": self.package_cost_usd,
            "cost_usd": self.cost_usd,
        }


def _sram_bw(device: Device, fp: Floorplan) -> float:
    if device.kind == "ador":
        return device.sram.bw_bytes_per_s
    return fp.noc_bytes_per_cycle * device.freq_hz


@lru_cache(maxsize=4096)
def assess(device: Device) -> DeviceCost:
    """Area, power and cost of a device (cached: a design is an immutable value)."""
    fp = floorplan_of(device)
    components = die_area(fp) if fp else {}
    estimated = sum(components.values()) if fp else None
    if device.kind == "ador":
        area = estimated
        memory_kind = device.hbm.generation
    else:
        area = device.die_area_mm2
        memory_kind = fp.memory_kind if fp else GPU_MEMORY_KIND.get(device.name, "hbm3")
    dies = max(1, math.ceil(area / tech.RETICLE_LIMIT_MM2)) if device.kind == "gpu" else 1
    power = {}
    estimated_tdp = None
    if fp:
        power = full_load_power_w(fp, freq_hz=device.freq_hz, die_area_mm2=estimated,
                                  sram_bw_bytes_per_s=_sram_bw(device, fp),
                                  dram_bw_bytes_per_s=device.hbm_bw_bytes_per_s,
                                  link_bw_bytes_per_s=device.link_bw_bytes_per_s)
        estimated_tdp = sum(power.values())
    tdp = device.tdp_w if device.kind == "gpu" else estimated_tdp
    return DeviceCost(
        name=device.name, kind=device.kind, node_nm=device.node_nm, die_area_mm2=area,
        estimated_die_area_mm2=estimated, components=components, dies=dies, tdp_w=tdp,
        estimated_tdp_w=estimated_tdp, power_components=power,
        die_yield=die_yield(area / dies, device.node_nm),
        die_cost_usd=dies * die_cost_usd(area / dies, device.node_nm),
        memory_cost_usd=memory_cost_usd(device.hbm_capacity_bytes, memory_kind),
        package_cost_usd=tech.PACKAGE_COST_USD, memory_kind=memory_kind,
    )


def workload_energy_j(device: Device, compute_dtype: str, activity: dict[str, float]) -> float:
    """Energy of one device doing ``activity`` (keys: flops, vector_ops, dram_bytes, onchip_bytes,
    link_bytes, seconds), anchored to the datasheet TDP for GPUs."""
    cost = assess(device)
    energy = work_energy_j(node_nm=device.node_nm, memory_kind=cost.memory_kind, compute_dtype=compute_dtype,
                           static_w=cost.static_w, **activity)
    return energy * cost.energy_calibration
