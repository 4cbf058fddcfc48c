"""Cost layer: area, power and manufacturing cost of a design. Reads only the hardware layer."""
from ador.cost.area import GPU_FLOORPLANS, Floorplan, die_area, floorplan_of, sram_area_mm2
from ador.cost.report import DeviceCost, assess, workload_energy_components, workload_energy_j
from ador.cost.technology import RETICLE_LIMIT_MM2

__all__ = ["GPU_FLOORPLANS", "Floorplan", "die_area", "floorplan_of", "sram_area_mm2", "DeviceCost", "assess",
           "workload_energy_components", "workload_energy_j", "RETICLE_LIMIT_MM2"]
