"""From the stored studies to every figure the report shows (computation only; report.py renders).

The headline row is the symmetric study's knee against 8 x A100 under that study's rules, as a
median over seeds with its range and the model-error interval (ador/validation/uncertainty.py).
The ladder pairs each seed's paper-study knee with the same seed's symmetric knee
(ador/explore/fairness.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ador.errors import AdorError
from ador.explore import fairness
from ador.hardware import GPUS
from ador.headline import sensitivity
from ador.headline.compare import Versus, area_basis, score, versus
from ador.headline.picks import Pick, Searched, Spread, feasible_population, load, median_seed
from ador.report.data import KNEE
from ador.headline.plan import (BASELINES, BATCHES, PAPER, REFERENCE, SEEDS, SERVING, SERVING_CHUNKED,
                                SERVING_CONCURRENT, SERVING_ROLES, STATIC_ROLES, SYMMETRIC)
from ador.headline.serving_view import Served, ServingLine, serve
from ador.report import binds
from ador.validation import collectives, uncertainty
from ador.validation.coverage import SERVING_DECODE_METRIC, Coverage, ServingCoverage, coverage, serving_coverage
from ador.validation.data import load_measurements
from ador.validation.ratios import summary as ratio_summary
from ador.validation.serving import shipped_rows
from ador.workload import decode_step, get_model, get_precision
from ador.workload.ops import ALLREDUCE


@dataclass(frozen=True)
class Headline:
    searched: dict[str, Searched]
    ratios: dict[str, dict[str, Spread]]       # role -> {"tbt_x", "area_eff_x", ...} over seeds, vs the reference
    picked: dict[str, list[tuple[Pick, Versus]]]   # static role -> every seed's knee and corners vs the reference
    named_seed: dict[str, int]                 # role -> the seed whose knee the report names
    ladders: dict[int, list[fairness.Row]]     # seed -> the ladder of that seed's paper and symmetric knees
    baselines: list[Versus]                    # the named symmetric design against every baseline GPU
    batches: dict[int, list[Versus]]           # seed -> symmetric knee vs A100/H100 at each batch
    sensitivity: list[sensitivity.Line]
    bands: dict[str, list[uncertainty.Band]]   # "tbt_x" / "area_eff_x" / "ttft_x" -> the errors combined
    coverage: dict[str, Coverage]              # GPU -> its measured decode rows near the question
    serving_coverage: dict[str, ServingCoverage]   # GPU -> its held-out serving runs near the question
    allreduce: collectives.StepCheck | None    # the A100's decode all-reduce beside published timings (TP > 1)
    serving_ratios: list[dict[str, Any]]       # measured vs predicted TPOT ratios between GPUs on those runs
    anatomy: dict[str, binds.Anatomy]          # "design" / "baseline" decode, "design prefill" / "baseline prefill"
    served: list[Served]
    serving_capacity: dict[str, Spread]        # serving role -> the knees' capacities over seeds

    def interval(self, key: str) -> tuple[float, float]:
        return uncertainty.interval(self.ratios[SYMMETRIC][key].median, *self.bands[key])


SERVING_RATIO_FAMILY = {"TPOT (mean)": (SERVING_DECODE_METRIC,)}   # what the held-out serving check compares
RATIOS = {"tbt_x": "tbt_p99_ms", "area_eff_x": "area_eff", "ttft_x": "ttft_ms", "throughput_x": "output_tok_s",
          "energy_x": "energy_per_token_j", "cost_x": "cost_per_mtok_usd"}


def _picked(s: Searched) -> list[tuple[Pick, Versus]]:
    """Every seed's knee and corners against the reference GPU under the study's rules (the GPU
    scored once)."""
    gpu = score(GPUS[REFERENCE], s.study)
    fits = gpu["memory_utilisation"] <= 1
    return [(p, Versus(REFERENCE, s.study.workload.batch, score(p.design, s.study), gpu, fits))
            for seed in s.seeds for p in [s.knees[seed], *s.corners[seed]]]


def _ratios(picked: list[tuple[Pick, Versus]]) -> dict[str, Spread]:
    per_seed = {p.seed: v for p, v in picked if p.which == KNEE}
    return {name: Spread({seed: v.x(key) or 0.0 for seed, v in per_seed.items()}) for name, key in RATIOS.items()}


def collect(storage_dir: str | Path, *, seeds: Sequence[int] = SEEDS, serving: bool = True) -> Headline:
    roles = STATIC_ROLES + (SERVING_ROLES if serving else ())
    searched = {role: load(role, storage_dir, seeds) for role in roles}
    sym, paper = searched[SYMMETRIC], searched[PAPER]
    if not sym.knees or not paper.knees:
        raise AdorError("trials: the headline's static studies have no feasible design: run more trials")
    picked = {role: _picked(searched[role]) for role in STATIC_ROLES}
    ratios = {role: _ratios(picked[role]) for role in STATIC_ROLES}
    named = {role: median_seed(ratios[role]["tbt_x"]) for role in STATIC_ROLES}
    study = sym.study
    spec = study.spec
    model, precision = get_model(spec.model), get_precision(spec.precision)
    a100 = GPUS[REFERENCE]
    ladders = {seed: fairness.ladder(paper.knees[seed].design, a100, model, precision, paper.study.workload,
                                     tp=spec.tp, devices=spec.devices, gpu_runtime=study.runtime_for("gpu"),
                                     reoptimised=sym.knees[seed].design)
               for seed in sorted(set(sym.knees) & set(paper.knees))}
    design = sym.knees[named[SYMMETRIC]].design
    w = study.workload
    anatomy = {}
    for key, device in (("design", design), ("baseline", a100)):
        rt = study.runtime_for(device.kind)
        label = f"{spec.devices} x {'the design' if key == 'design' else device.name}"
        anatomy[key] = binds.decode_anatomy(device, model, precision, tp=spec.tp, batch=w.batch, input_len=w.input_len,
                                            output_len=w.output_len, runtime=rt, devices=spec.devices, label=label)
        anatomy[key + " prefill"] = binds.prefill_anatomy(
            device, model, precision, tp=spec.tp, batch=w.batch, input_len=w.input_len, runtime=rt,
            devices=spec.devices, label=label)
    rows = load_measurements()
    params_b = model.active_params() / 1e9
    cov = {g: coverage(rows, hardware=g, family="decode", params_b=params_b, batch=w.batch) for g in BASELINES}
    served_cov = {g: serving_coverage(shipped_rows(), hardware=g, params_b=params_b, tp=spec.tp, batch=w.batch,
                                      precision=spec.precision) for g in BASELINES}
    bands = {"tbt_x": [uncertainty.gpu_band("decode"), uncertainty.design_band("decode")],
             "ttft_x": [uncertainty.gpu_band("prefill"), uncertainty.design_band("prefill")],
             "area_eff_x": [uncertainty.gpu_band("decode"), uncertainty.design_band("decode"), uncertainty.area_band()]}
    served: list[Served] = []
    capacity: dict[str, Spread] = {}
    if serving:
        served, capacity = _serving(searched, design)
    return Headline(searched, ratios, picked, named, ladders, versus(design, study, gpus=list(BASELINES)),
                    {seed: versus(k.design, study, gpus=[REFERENCE, "h100-sxm-80gb"], batches=BATCHES)
                     for seed, k in sym.knees.items()},
                    sensitivity.table(design, study, population=feasible_population(SYMMETRIC, storage_dir,
                                                                                    named[SYMMETRIC])),
                    bands, cov, served_cov, _allreduce(study),
                    ratio_summary([r for c in served_cov.values() for r in c.results], SERVING_RATIO_FAMILY),
                    anatomy, served, capacity)


def _allreduce(study) -> collectives.StepCheck | None:
    """The A100's decode-step all-reduce at the question's batch (mid-generation KV), under the GPU's
    runtime, beside the published all-reduce timings of 8 x A100 near its size (None at TP 1)."""
    spec, w = study.spec, study.workload
    ops = [op for op in decode_step(get_model(spec.model), get_precision(spec.precision), spec.tp, w.batch,
                                    w.input_len + w.output_len // 2) if op.kind == ALLREDUCE]
    if not ops:
        return None
    return collectives.step_check(REFERENCE, spec.tp, max(op.comm_bytes for op in ops),
                                  round(sum(op.count for op in ops)),
                                  study.runtime_for("gpu"))


def _serving(searched: dict[str, Searched], static_design) -> tuple[list[Served], dict[str, Spread]]:
    study = searched[SERVING_CONCURRENT].study
    spec = study.spec
    gpu_rt, design_rt = study.runtime_for("gpu"), study.runtime_for("ador")
    lines = [ServingLine("8 x A100, chunked prefill", GPUS[REFERENCE], "chunked", gpu_rt)]
    for role, policy in ((SERVING_CONCURRENT, "concurrent"), (SERVING_CHUNKED, "chunked")):
        s = searched[role]
        if s.knees:
            seed = median_seed(Spread({k: p.metrics.get("serving_tbt_p99_ms", 0.0) for k, p in s.knees.items()}))
            lines.append(ServingLine(f"8 x design searched under {policy} (seed {seed})", s.knees[seed].design, policy,
                                     design_rt, seed))
    lines += [ServingLine("8 x static-batch design, concurrent", static_design, "concurrent", design_rt),
              ServingLine("8 x static-batch design, chunked prefill", static_design, "chunked", design_rt),
              ServingLine("8 x A100, continuous batching", GPUS[REFERENCE], "continuous", gpu_rt)]
    lines += [ServingLine(f"8 x {g}, chunked prefill", GPUS[g], "chunked", gpu_rt) for g in BASELINES[1:]]
    served = serve(lines, spec.model, spec.precision, tp=spec.tp, devices=spec.devices or spec.tp, common_rate=None)
    from ador.headline.serving_view import capacity
    caps = {}
    for role, policy in ((SERVING_CONCURRENT, "concurrent"), (SERVING_CHUNKED, "chunked")):
        s = searched[role]
        if s.knees:
            caps[role] = Spread({seed: capacity(ServingLine(role, k.design, policy, design_rt, seed), spec.model,
                                                spec.precision, tp=spec.tp, devices=spec.devices or spec.tp)
                                 for seed, k in s.knees.items()})
    return served, caps


def to_json(h: Headline) -> dict[str, Any]:
    """The report's figures as data (docs/results/llama3-70b-8dev.json)."""
    def spread(s: Spread) -> dict[str, Any]:
        return {"median": s.median, "low": s.low, "high": s.high, "by_seed": {str(k): v for k, v in s.values.items()}}
    return {
        "serving_plan": dataclasses.asdict(SERVING),
        "ratios_vs_a100": {role: {k: spread(v) for k, v in r.items()} for role, r in h.ratios.items()},
        "interval_vs_a100": {k: h.interval(k) for k in h.bands},
        "named_seed": h.named_seed,
        "trials": {role: s.trials for role, s in h.searched.items()},
        "ladder": {str(seed): [r.to_dict() for r in rows] for seed, rows in h.ladders.items()},
        "baselines": [{"gpu": v.gpu, "batch": v.batch, "design": v.design, "gpu_metrics": v.baseline}
                      for v in h.baselines],
        "sensitivity": [vars(line) for line in h.sensitivity],
        "serving": [{"label": s.line.label, "policy": s.line.policy, "capacity_rps": s.capacity_rps,
                     "at_rate_rps": s.at_rate_rps, "ttft_p99_ms": s.ttft_p99_ms, "tbt_p99_ms": s.tbt_p99_ms,
                     "goodput_rps": s.goodput_rps} for s in h.served],
        "serving_capacity": {role: spread(s) for role, s in h.serving_capacity.items()},
        "area_basis": area_basis(h.searched[SYMMETRIC].study),
        "allreduce": dataclasses.asdict(h.allreduce) if h.allreduce else None,
        "serving_ratios": h.serving_ratios,
        "serving_coverage": {g: {"tp": c.tp, "batch": c.batch, "runs": [
            {"id": r.row.id, "precision": r.row.precision, "extrapolated": r.extrapolated, "error_pct": r.error_pct}
            for r in c.results]} for g, c in h.serving_coverage.items()},
    }

