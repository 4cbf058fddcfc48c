"""Headline peaks of any device (for listings and reports), computed the way the perf model sees it."""
from __future__ import annotations

from typing import Any

from ador.hardware.devices import Device
from ador.perf.constants import MAC_RATE_VS_FP16


def peak_flops(device: Device, compute_dtype: str = "fp16") -> float:
    """Dense matrix FLOP/s of all matrix engines together."""
    if device.kind == "gpu":
        return device.peak_flops(compute_dtype)
    macs = device.systolic.macs + device.mactree.macs
    return 2.0 * macs * device.freq_hz * MAC_RATE_VS_FP16[compute_dtype]


def device_peaks(device: Device) -> dict[str, Any]:
    return {
        "kind": device.kind,
        "fp16_tflops": peak_flops(device, "fp16") / 1e12,
        "fp8_tflops": peak_flops(device, "fp8") / 1e12,
        "hbm_tb_s": device.hbm_bw_bytes_per_s / 1e12,
        "hbm_gib": device.hbm_capacity_bytes / 1024 ** 3,
        "link_gb_s": device.link_bw_bytes_per_s / 1e9,
        "node_nm": device.node_nm,
    }
