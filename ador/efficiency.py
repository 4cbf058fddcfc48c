"""Efficiency of a design on a workload: joins a performance result with the device's cost model.

Kept apart from ``perf`` and ``cost`` (which know nothing of each other) so both stay one layer.
Area efficiency is given per mm2 of die (compute silicon) and per mm2 of package (dies plus HBM
stacks on the interposer), by the same rule for GPUs and designs.
"""
from __future__ import annotations

from typing import Any

from ador.cost import assess, workload_energy_j
from ador.cost.report import DEFAULT_POWER_RULE
from ador.hardware.system import System
from ador.perf.evaluate import Evaluation
from ador.workload.precision import get_precision


def efficiency(system: System, result: Evaluation, *, energy: bool = True,
               power_rule: str = DEFAULT_POWER_RULE) -> dict[str, Any]:
    """Area efficiency (output tokens/s per mm2 of all dies, and of all packages), cost, and with
    ``energy`` (which needs the evaluation's breakdown) energy per output token and power."""
    cost = assess(system.device, power_rule)
    total_area = cost.die_area_mm2 * system.devices
    total_package = cost.package_area_mm2 * system.devices
    out = {
        "die_area_mm2_per_device": cost.die_area_mm2,
        "system_die_area_mm2": total_area,
        "package_area_mm2_per_device": cost.package_area_mm2,
        "system_package_area_mm2": total_package,
        "output_tok_s_per_mm2": result.output_tok_s / total_area,
        "output_tok_s_per_package_mm2": result.output_tok_s / total_package,
        "tdp_w_per_device": cost.tdp_w,
        "cost_usd_per_device": cost.cost_usd,
        "system_cost_usd": cost.cost_usd * system.devices,
        "shoreline_utilisation": cost.package.shoreline_utilisation if cost.package else 0.0,
    }
    if energy:
        per_device_j = workload_energy_j(system.device, get_precision(result.precision).compute_dtype,
                                         result.activity(), power_rule)
        out["energy_per_output_token_j"] = per_device_j * system.tp * system.pp / (result.batch * result.output_len)
        out["avg_power_w_per_device"] = per_device_j / result.e2e_s
        out["output_tok_s_per_w"] = result.output_tok_s / (per_device_j / result.e2e_s * system.devices)
    return out
