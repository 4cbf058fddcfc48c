"""Every study metric for a whole population of designs in one call (numpy over designs).

``evaluate_design`` (``ador.explore.metrics``) scores one design; ``population_metrics`` scores a
generation, a batch of trials or a chunk of an enumerated space with the same formulas run on arrays
(``ador.perf.population``, ``ador.cost.population``) and returns the same keys. A property test
holds the two paths equal design by design.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import numpy as np

from ador.cost.population import assess_population
from ador.cost.power import work_energy_j
from ador.cost.report import DEFAULT_POWER_RULE
from ador.hardware.devices import AdorChip
from ador.hardware.runtime import RuntimeProfile, get_runtime
from ador.ops import NUMPY
from ador.perf.population import by_dies, chip_arrays, evaluate_population
from ador.workload import ModelSpec, Precision, decode_step, prefill
from ador.perf.collectives import die_link_bytes
from ador.workload.ops import COLLECTIVES, DIE_ALLGATHER, DIE_ALLREDUCE, DIE_COLLECTIVES


def _activity(ops) -> dict[str, float]:
    """Work of one device in a stage, as ``StageResult.activity`` counts it (design-independent)."""
    out = {"flops": 0.0, "vector_ops": 0.0, "dram_bytes": 0.0, "onchip_bytes": 0.0, "link_bytes": 0.0,
           DIE_ALLREDUCE: 0.0, DIE_ALLGATHER: 0.0}     # die-level payloads: their traffic depends on the dies
    for op in ops:
        c = op.count
        dram = (op.weight_bytes + op.kv_bytes) * c
        out["flops"] += op.flops * c
        out["vector_ops"] += op.vector_ops * c
        out["dram_bytes"] += dram
        out["onchip_bytes"] += op.bytes_total * c - dram
        if op.kind in COLLECTIVES:
            out[op.kind if op.kind in DIE_COLLECTIVES else "link_bytes"] += op.comm_bytes * c
    return out


def population_metrics(chips: Sequence[AdorChip] | SimpleNamespace, model: ModelSpec, precision: Precision,
                       workload, *, tp: int, pp: int = 1, devices: int | None = None,
                       runtime: RuntimeProfile | str | None = None, power_rule: str = DEFAULT_POWER_RULE,
                       need_energy: bool = True) -> dict[str, np.ndarray]:
    """The metrics ``evaluate_design`` gives, one array entry per design."""
    ca = chips if isinstance(chips, SimpleNamespace) else chip_arrays(chips)
    runtime = get_runtime(runtime)
    split = by_dies(ca, lambda part: population_metrics(part, model, precision, workload, tp=tp, pp=pp,
                                                        devices=devices, runtime=runtime, power_rule=power_rule,
                                                        need_energy=need_energy))
    if split is not None:
        return split
    devices = devices or tp * pp
    replicas = devices // (tp * pp)
    w = workload
    perf = evaluate_population(ca, model, precision, batch=w.batch, input_len=w.input_len, output_len=w.output_len,
                               tp=tp, pp=pp, runtime=runtime, p99=True)
    cost = assess_population(ca, power_rule)
    output_tok_s = replicas * perf["output_tok_s"]
    out = {
        "ttft_ms": perf["ttft_s"] * 1e3,
        "tbt_ms": perf["tbt_s"] * 1e3,
        "tbt_p99_ms": perf["tbt_p99_s"] * 1e3,
        "e2e_ms": perf["e2e_s"] * 1e3,
        "output_tok_s": output_tok_s,
        "output_tok_s_per_device": output_tok_s / devices,
        "output_tok_s_per_mm2": output_tok_s / (cost["die_area_mm2"] * devices),
        "output_tok_s_per_package_mm2": output_tok_s / (cost["package_area_mm2"] * devices),
        "memory_utilisation": perf["memory_utilisation"],
        "die_area_mm2": cost["die_area_mm2"],
        "dies": cost["dies"].astype(float),
        "system_die_area_mm2": cost["die_area_mm2"] * devices,
        "package_area_mm2": cost["package_area_mm2"],
        "system_package_area_mm2": cost["package_area_mm2"] * devices,
        "tdp_w": cost["tdp_w"],
        "cost_usd": cost["cost_usd"] * devices,
        "shoreline_utilisation": cost["shoreline_utilisation"],
        "hbm_bandwidth_tb_s": ca.hbm.bw_bytes_per_s / 1e12,
        "hbm_stacks": ca.hbm.stacks.astype(float),
        "link_bandwidth_gb_s": ca.links.bw_bytes_per_s / 1e9,
    }
    if need_energy:
        dies = int(ca.dies[0]) if ca.n else 1        # one die count per call (by_dies)
        from ador.perf.evaluate import decode_kv_points, prefilled_tokens
        prompt = prefilled_tokens(runtime, w.input_len)
        pre = _activity(prefill(model, precision, tp, w.batch, prompt, pp, dies) if prompt else ())
        # the decode step that emits the first token where the runtime's prefill stops one token short
        first = _activity(decode_step(model, precision, tp, w.batch, w.input_len, pp, dies)
                          if runtime.first_token_from_decode else ())
        mid_kv = decode_kv_points(w.input_len, w.output_len)[1]
        dec = _activity(decode_step(model, precision, tp, w.batch, mid_kv, pp, dies))
        steps = w.output_len - 1
        work = {k: pre[k] + first[k] + steps * dec[k] for k in pre}
        work["d2d_bytes"] = sum(die_link_bytes(kind, work.pop(kind), ca.dies) for kind in DIE_COLLECTIVES)
        seconds = perf["prefill_s"] + perf["first_step_s"] + steps * perf["decode_mid_s"]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_device_j = work_energy_j(node_nm=ca.node_nm, memory_kind=ca.memory_kind,
                                         compute_dtype=precision.compute_dtype, seconds=seconds,
                                         static_w=cost["static_w"], X=NUMPY, **work) * cost["energy_scale"]
            out["energy_per_token_j"] = per_device_j * tp * pp / (w.batch * w.output_len)
            out["output_tok_s_per_w"] = output_tok_s / (per_device_j / perf["e2e_s"] * devices)
    return out


def feasibility_codes(metrics: dict[str, np.ndarray], *, reticle: bool = True) -> np.ndarray:
    """For every design, the sum of the codes of the ``FEASIBILITY_CHECKS`` it fails (0: feasible);
    ``feasibility_reasons`` turns one design's code back into the reasons ``feasibility`` gives."""
    from ador.explore.metrics import FEASIBILITY_CHECKS
    code = np.zeros(len(metrics["memory_utilisation"]), dtype=np.uint8)
    for bit, die_only, test, _ in FEASIBILITY_CHECKS:
        if reticle or not die_only:
            code |= np.where(test(metrics), bit, 0).astype(np.uint8)
    return code


def feasibility_reasons(code: int, metrics: dict[str, float]) -> list[str]:
    """The reasons of one design's feasibility code, worded as ``feasibility`` words them."""
    from ador.explore.metrics import FEASIBILITY_CHECKS
    return [reason(metrics) for bit, _, _, reason in FEASIBILITY_CHECKS if code & bit]
