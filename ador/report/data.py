"""Plot and table data computed from stored studies and evaluations (no drawing here)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from ador.explore.metrics import METRICS, ratio_vs
from ador.explore.pareto import hypervolume, normaliser, pareto_mask


@dataclass(frozen=True)
class Point:
    trial: int
    x: float
    y: float


@dataclass(frozen=True)
class FrontData:
    x_metric: str
    y_metric: str
    x_direction: str
    y_direction: str
    feasible: list[Point]
    infeasible: list[Point]
    pareto: list[Point]                         # feasible and non-dominated in (x, y), sorted by x
    baselines: dict[str, tuple[float, float]]   # GPU -> (x, y)
    baseline_reasons: dict[str, list[str]] = field(default_factory=dict)   # GPU -> why it misses the study
    study: str = ""


def _metric(t: optuna.trial.FrozenTrial, name: str) -> float | None:
    v = t.user_attrs.get("metrics", {}).get(name)
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def pareto_front_data(durable: optuna.Study, x_metric: str, y_metric: str) -> FrontData:
    """Any two metrics (stored on every trial), with the Pareto set recomputed in those two."""
    for m in (x_metric, y_metric):
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}")
    feasible: list[Point] = []
    infeasible: list[Point] = []
    for t in durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        x, y = _metric(t, x_metric), _metric(t, y_metric)
        if x is None or y is None:
            continue
        (feasible if t.user_attrs.get("feasible") else infeasible).append(Point(t.number, x, y))
    dirs = [METRICS[x_metric], METRICS[y_metric]]
    mask = pareto_mask([(p.x, p.y) for p in feasible], dirs) if feasible else np.array([], dtype=bool)
    pareto = sorted((p for p, m in zip(feasible, mask) if m), key=lambda p: (p.x, p.y))
    baselines, reasons = {}, {}
    for gpu, b in durable.user_attrs.get("ador_baselines", {}).items():
        m = b.get("metrics")
        if m and x_metric in m and y_metric in m:
            baselines[gpu] = (m[x_metric], m[y_metric])
            if not b.get("feasible", True):
                reasons[gpu] = list(b.get("infeasible_reasons", []))
    return FrontData(x_metric, y_metric, dirs[0], dirs[1], feasible, infeasible, pareto, baselines,
                     baseline_reasons=reasons, study=durable.study_name)


def projections(durable: optuna.Study) -> list[FrontData]:
    """Every pair of the study's objectives (3 objectives give 3 projections)."""
    names = durable.metric_names or []
    return [pareto_front_data(durable, a, b) for i, a in enumerate(names) for b in names[i + 1:]]


@dataclass(frozen=True)
class HvHistory:
    label: str
    trials: list[int]
    hypervolume: list[float]


def hypervolume_history(studies: Sequence[tuple[str, optuna.Study]], points: int = 60) -> list[HvHistory]:
    """Hypervolume of the feasible trials so far against trials run, for studies with the same
    objectives, normalised to one box (the range of all their feasible trials) so they compare."""
    directions: list[str] = []
    per_study = []
    everything = []
    for label, durable in studies:
        dirs = [d.name.lower() for d in durable.directions]
        if not directions:
            directions = dirs
        elif dirs != directions:
            raise ValueError("studies compared in one hypervolume chart need the same objectives")
        trials = sorted(durable.get_trials(deepcopy=False), key=lambda t: t.number)
        per_study.append((label, trials))
        everything += [t.values for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    if not everything:
        return [HvHistory(label, [], []) for label, _ in per_study]
    scale = normaliser(everything, directions)
    out = []
    for label, trials in per_study:
        n = len(trials)
        marks = sorted({max(1, round(n * k / points)) for k in range(1, points + 1)}) if n else []
        xs, ys = [], []
        feasible: list = []
        i = 0
        for mark in marks:
            while i < mark:
                t = trials[i]
                if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible"):
                    feasible.append(t.values)
                i += 1
            xs.append(mark)
            ys.append(hypervolume(feasible, directions, scale=scale) if feasible else 0.0)
        out.append(HvHistory(label, xs, ys))
    return out


@dataclass(frozen=True)
class Breakdown:
    label: str
    stage: str                    # "prefill" or "decode"
    total_ms: float
    parts_ms: dict[str, float]    # operator name -> ms (all layers)


def breakdown_data(results: Sequence[tuple[str, Any]]) -> list[Breakdown]:
    """Per-operator time of each evaluation's prefill and decode step (Evaluation objects)."""
    out = []
    for label, r in results:
        for stage, res in (("prefill", r.prefill), ("decode", r.decode)):
            parts: dict[str, float] = {}
            for t in res.breakdown:
                parts[t.name] = parts.get(t.name, 0.0) + t.time_s * 1e3
            out.append(Breakdown(label, stage, res.time_s * 1e3, parts))
    return out


@dataclass(frozen=True)
class RooflineData:
    label: str
    peak_flops: float             # FLOP/s of the matrix engines
    bandwidth: float              # DRAM bytes/s
    ops: list[dict[str, Any]] = field(default_factory=list)   # name, stage, intensity, flops_per_s, bound


def roofline_data(label: str, device, evaluation, compute_dtype: str = "fp16") -> RooflineData:
    """Operators of both stages placed by arithmetic intensity (FLOPs per DRAM byte) and the
    FLOP/s they achieve in the model, under the device's compute and bandwidth roofs."""
    from ador.perf.peaks import peak_flops
    ops = []
    for stage, res in (("prefill", evaluation.prefill), ("decode", evaluation.decode)):
        for t in res.breakdown:
            if t.flops <= 0 or t.dram_bytes <= 0 or t.time_s <= 0:
                continue
            ops.append({"name": t.name, "stage": stage, "intensity": t.flops / t.dram_bytes,
                        "flops_per_s": t.flops / t.time_s, "bound": t.bound, "time_ms": t.time_s * 1e3})
    return RooflineData(label, peak_flops(device, compute_dtype), device.hbm_bw_bytes_per_s, ops)


def importances(durable: optuna.Study) -> dict[str, dict[str, float]]:
    """Optuna's PED-ANOVA importance (no scikit-learn needed) of each knob for each objective,
    over the feasible completed trials."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    out = {}
    trials = [t for t in durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.user_attrs.get("feasible")]
    if len(trials) < 10:
        return {}
    view = optuna.create_study(directions=durable.directions)
    view.add_trials(trials)
    import warnings
    names = durable.metric_names or [f"objective {i}" for i in range(len(durable.directions))]
    for i, (name, direction) in enumerate(zip(names, durable.directions)):
        sign = 1.0 if direction == optuna.study.StudyDirection.MINIMIZE else -1.0   # PED-ANOVA: lower is better
        with warnings.catch_warnings():   # PED-ANOVA reminds that lower targets are better: handled by sign
            warnings.simplefilter("ignore", UserWarning)
            out[name] = get_param_importances(view, evaluator=PedAnovaImportanceEvaluator(),
                                              target=lambda t, i=i, sign=sign: sign * t.values[i])  # type: ignore[misc]
    return out


def recommended(durable: optuna.Study) -> dict[str, dict[str, Any]]:
    """Three designs people ask for: the one that meets every constraint (SLOs included) at the
    highest area efficiency, the lowest-latency one, and the cheapest one (feasible trials only)."""
    trials = [t for t in durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.user_attrs.get("feasible")]
    if not trials:
        return {}
    picks = {
        "best area efficiency meeting the SLOs": max(trials, key=lambda t: _metric(t, "output_tok_s_per_mm2") or 0),
        "lowest latency (p99 TBT)": min(trials, key=lambda t: _metric(t, "tbt_p99_ms") or math.inf),
        "lowest cost": min(trials, key=lambda t: _metric(t, "cost_usd") or math.inf),
    }
    baselines = durable.user_attrs.get("ador_baselines", {})
    out = {}
    for why, t in picks.items():
        metrics = t.user_attrs["metrics"]
        ratios = {gpu: {m: ratio_vs(m, metrics[m], b["metrics"][m]) for m in
                        ("tbt_p99_ms", "ttft_ms", "output_tok_s_per_mm2", "output_tok_s", "cost_usd")
                        if m in b.get("metrics", {})}
                  for gpu, b in baselines.items() if "metrics" in b}
        out[why] = {"trial": t.number, "metrics": metrics, "design": t.user_attrs["design"], "x_vs": ratios}
    return out
