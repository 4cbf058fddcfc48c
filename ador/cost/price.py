"""Manufacturing cost of a device: dies per wafer, yield, wafer price, memory and package."""
from __future__ import annotations

import math

from ador.cost import technology as tech
from ador.errors import ConfigError


def dies_per_wafer(die_area_mm2: float) -> float:
    """Whole dies on a 300 mm wafer, with the usual edge-loss term (LLMCompass/Moonwalk)."""
    r = tech.WAFER_DIAMETER_MM / 2
    n = math.pi * r * r / die_area_mm2 - math.pi * tech.WAFER_DIAMETER_MM / math.sqrt(2 * die_area_mm2)
    if n < 1:
        raise ConfigError("die_area_mm2", round(die_area_mm2, 1),
                          f"too large for a 300 mm wafer, let alone the {tech.RETICLE_LIMIT_MM2:.0f} mm2 reticle")
    return n


def die_yield(die_area_mm2: float, node_nm: int) -> float:
    """Negative-binomial yield (1 + A*D/alpha)^-alpha."""
    d = tech.node_table(tech.DEFECTS_PER_MM2, node_nm, "defect density")
    return (1 + die_area_mm2 * d / tech.YIELD_CLUSTER_ALPHA) ** -tech.YIELD_CLUSTER_ALPHA


def die_cost_usd(die_area_mm2: float, node_nm: int) -> float:
    wafer = tech.node_table(tech.WAFER_COST_USD, node_nm, "wafer cost")
    return wafer / (dies_per_wafer(die_area_mm2) * die_yield(die_area_mm2, node_nm))


def memory_cost_usd(capacity_bytes: float, memory_kind: str) -> float:
    return capacity_bytes / 1e9 * tech.MEMORY_USD_PER_GB[memory_kind]
