"""Manufacturing cost of a device: dies per wafer, yield, wafer price, memory and package."""
from __future__ import annotations

import math

from ador.cost import technology as tech
from ador.cost.area import node_value
from ador.errors import ConfigError
from ador.ops import SCALAR


def dies_per_wafer(die_area_mm2, X=SCALAR):
    """Whole dies on a 300 mm wafer, with the usual edge-loss term (LLMCompass/Moonwalk). A die too
    large for a wafer is an error for one design, and zero dies (infinite cost) in a population."""
    r = tech.WAFER_DIAMETER_MM / 2
    n = math.pi * r * r / die_area_mm2 - math.pi * tech.WAFER_DIAMETER_MM / (2 * die_area_mm2) ** 0.5
    if X is SCALAR and n < 1:
        raise ConfigError("die_area_mm2", round(die_area_mm2, 1),
                          f"too large for a 300 mm wafer, let alone the {tech.RETICLE_LIMIT_MM2:.0f} mm2 reticle")
    return X.where(n >= 1, n, 0.0)


def die_yield(die_area_mm2, node_nm, X=SCALAR):
    """Negative-binomial yield (1 + A*D/alpha)^-alpha."""
    d = node_value(tech.DEFECTS_PER_MM2, node_nm, "defect density", X)
    return (1 + die_area_mm2 * d / tech.YIELD_CLUSTER_ALPHA) ** -tech.YIELD_CLUSTER_ALPHA


def die_cost_usd(die_area_mm2, node_nm, X=SCALAR):
    wafer = node_value(tech.WAFER_COST_USD, node_nm, "wafer cost", X)
    return wafer / (dies_per_wafer(die_area_mm2, X) * die_yield(die_area_mm2, node_nm, X))


def memory_cost_usd(capacity_bytes, memory_kind, X=SCALAR):
    return capacity_bytes / 1e9 * X.lookup(tech.MEMORY_USD_PER_GB, memory_kind)
