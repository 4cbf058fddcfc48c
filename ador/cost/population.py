"""Area, package, power and cost of a population of ADOR designs at once (numpy over designs).

The same functions as ``ador.cost.report.assess`` for one design, run with ``X`` = NUMPY on a
namespace of arrays shaped like an ``AdorChip`` (``ador.perf.population.chip_arrays``); a test holds
the two paths equal.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from ador.cost import technology as tech
from ador.cost.area import device_area, floorplan_of_chip, io_phy_mm2
from ador.cost.package import package_of, shoreline_utilisation
from ador.cost.power import full_load_power_w
from ador.cost.price import die_cost_usd, die_yield, memory_cost_usd
from ador.cost.report import DEFAULT_POWER_RULE, power_scale, work_energy_scale
from ador.ops import NUMPY


def assess_population(ca: SimpleNamespace, power_rule: str = DEFAULT_POWER_RULE) -> dict[str, np.ndarray]:
    """Per design: die area (all dies) and package area (mm2), dies, TDP (W), the power rule's energy scale, cost (USD),
    static power (W) and shoreline utilisation."""
    X = NUMPY
    fp = floorplan_of_chip(cast(Any, ca), X)          # the arrays stand in for a chip's fields
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        area = sum(device_area(fp, X).values())
        estimate = sum(full_load_power_w(fp, freq_hz=ca.freq_hz, die_area_mm2=area,
                                         sram_bw_bytes_per_s=ca.sram.bw_bytes_per_s,
                                         dram_bw_bytes_per_s=ca.hbm.bw_bytes_per_s,
                                         link_bw_bytes_per_s=ca.links.bw_bytes_per_s, X=X).values())
        scale = power_scale("ador", power_rule, None, 1.0)
        work_scale = work_energy_scale("ador", power_rule, None, 1.0)
        pkg = package_of(die_area_mm2=area, dies=ca.dies, memory_kind=ca.memory_kind, memory_sites=ca.hbm.stacks,
                         floorplan=fp, io_phy_mm2=io_phy_mm2(fp, X), X=X)
        cost = ca.dies * die_cost_usd(area / ca.dies, ca.node_nm, X) \
            + memory_cost_usd(ca.hbm.capacity_bytes, ca.memory_kind, X) + tech.PACKAGE_COST_USD
        return {"die_area_mm2": area, "package_area_mm2": pkg.package_area_mm2, "tdp_w": estimate * scale,
                "energy_scale": np.full(ca.n, work_scale), "cost_usd": cost, "static_w": area * tech.STATIC_W_PER_MM2,
                "die_yield": die_yield(area / ca.dies, ca.node_nm, X), "dies": ca.dies,
                "shoreline_utilisation": shoreline_utilisation(pkg, X)}
