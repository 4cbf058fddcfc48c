"""Efficiency of a design on a workload: joins a performance result with the device's cost model.

Kept apart from ``perf`` and ``cost`` (which know nothing of each other) so both stay one layer.
"""
from __future__ import annotations

from typing import Any

from ador.cost import assess, workload_energy_j
from ador.hardware.system import System
from ador.perf.evaluate import Evaluation
from ador.workload.precision import get_precision


def efficiency(system: System, result: Evaluation, *, energy: bool = True) -> dict[str, Any]:
    """Area efficiency (output tokens/s per mm2 of all dies), cost, and with ``energy`` (which needs
    the evaluation's breakdown) energy per output token and power."""
    cost = assess(system.device)
    total_area = cost.die_area_mm2 * system.devices
    out = {
        "die_area_mm2_per_device": cost.die_area_mm2,
        "system_die_area_mm2": total_area,
        "output_tok_s_per_mm2": result.output_tok_s / total_area,
        "tdp_w_per_device": cost.tdp_w,
        "cost_usd_per_device": cost.cost_usd,
        "system_cost_usd": cost.cost_usd * system.devices,
    }
    if energy:
        per_device_j = workload_energy_j(system.device, get_precision(result.precision).compute_dtype,
                                         result.activity())
        out["energy_per_output_token_j"] = per_device_j * system.tp * system.pp / (result.batch * result.output_len)
        out["avg_power_w_per_device"] = per_device_j / result.e2e_s
        out["output_tok_s_per_w"] = result.output_tok_s / (per_device_j / result.e2e_s * system.devices)
    return out
