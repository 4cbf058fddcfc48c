"""What pricing the HGX boards' NVSwitch as a reducing switch does to the fit and the held-out checks.

    python -c "from benchmarks import nvls_fit; print(nvls_fit.run())"   # about 1 min
    python -c "from benchmarks import nvls_fit; print(nvls_fit.ratio_effect())"

H100, H200 and B200 boards reduce in the switch (NVLink SHARP: NCCL's NVLS all-reduce), a topology the
model knows (``reducing_switch``: ``ador.perf.collectives``) but the presets do not use. This fits the
public rows (``ador/data/measured.csv``) twice, with the presets as shipped and with those three boards
as reducing switches, and predicts with each fit what no fit sees: our own H100/H200 rows
(``measured-own-gpu.csv``), NVIDIA NIM's batch-1 rows (``measured-nim-h100.csv``) and the published
all-reduce timings (``allreduce.csv``). docs/validation.md ("One all-reduce") quotes the figures;
nothing here changes the shipped calibration.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ador.hardware import GPUS, PRESETS
from ador.hardware.presets import NVLS_BOARDS
from ador.perf.collectives import REDUCING_SWITCH
from ador.validation import calibrate, collectives
from ador.validation.data import DEFAULT_DATA, load_measurements
from ador.validation.predict import summarise

HELD_OUT = {"own": DEFAULT_DATA.parent / "measured-own-gpu.csv", "nim": DEFAULT_DATA.parent / "measured-nim-h100.csv"}


def _fit(public: list, held_out: dict[str, list], devices: dict) -> dict[str, Any]:
    f = calibrate.fit(public)
    out: dict[str, Any] = {"public_mape_pct": round(f.mape_pct, 2)}
    for name, rows in held_out.items():
        results = calibrate.evaluate_rows(rows, f.values, fitted_on=public)
        out[f"{name}_mape_pct"] = round(summarise(results)["mape_pct"], 2)
        bf16 = [r for r in results if r.row.precision == "bf16"]
        if bf16:
            out[f"{name}_bf16_mape_pct"] = round(summarise(bf16)["mape_pct"], 2)
    profile = calibrate.runtimes_from(f.values, rows=public)[collectives.DEFAULT_PROFILE]
    out["allreduce_mape_pct"] = round(collectives.compare(devices=devices, profile=profile)["mape_pct"], 1)
    out.update({k: round(f.values[k], 3) for k in ("link_efficiency", "GH100.tensor", "hbm.hbm3", "hbm.hbm3e",
                                                   "dequant")})
    out["collective_latency_us"] = round(1e6 * f.values["collective_latency_s"], 1)
    return out


def run() -> dict[str, Any]:
    public = load_measurements(DEFAULT_DATA)
    held_out = {name: load_measurements(path) for name, path in HELD_OUT.items()}
    out: dict[str, Any] = {"as_shipped": _fit(public, held_out, dict(PRESETS))}
    reducing = collectives.nvls_presets()
    # the in-switch all-reduce alone, with the shipped constants
    out["reducing_switch_shipped_constants_allreduce_mape_pct"] = round(
        collectives.compare(devices=reducing)["mape_pct"], 1)
    specs = calibrate._GPU_SPECS
    try:
        boards: Any = tuple(dataclasses.replace(s, topology=REDUCING_SWITCH) if s.name in NVLS_BOARDS else s
                            for s in specs)
        calibrate._GPU_SPECS = boards
        out["reducing_switch"] = _fit(public, held_out, reducing)
    finally:
        calibrate._GPU_SPECS = specs
    return out


def ratio_effect() -> dict[str, dict[str, float]]:
    """How much faster each board's GPU gets at the headline's question (Llama-3-70B fp16 on 8 GPUs,
    batch 128, 2,048 + 256 tokens, the `tensorrt-llm` profile, shipped calibration) when its switch
    reduces: the factor by which a ratio against it (design / GPU) would shrink."""
    from ador.explore.metrics import Workload, evaluate_design
    from ador.hardware.runtime import runtime_profiles
    from ador.workload import get_model, get_precision
    runtime, model, precision = runtime_profiles()["tensorrt-llm"], get_model("llama-3-70b"), get_precision("fp16")
    out = {}
    for name in NVLS_BOARDS:
        got = [evaluate_design(dataclasses.replace(GPUS[name], topology=topology), model, precision,
                               Workload(128, 2048, 256), tp=8, devices=8, runtime=runtime, need_energy=False)
               for topology in ("switch", REDUCING_SWITCH)]
        out[name] = {"tbt_p99_x": got[0]["tbt_p99_ms"] / got[1]["tbt_p99_ms"],
                     "ttft_x": got[0]["ttft_ms"] / got[1]["ttft_ms"],
                     "output_tok_s_x": got[1]["output_tok_s"] / got[0]["output_tok_s"]}
    return out
