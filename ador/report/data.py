"""Plot and table data computed from stored studies and evaluations (no drawing here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import optuna
from optuna.trial import TrialState

from ador.explore.metrics import METRICS, ratio_vs
from ador.explore.design_id import front_key
from ador.explore.pareto import (HV_DEFINITION, corner_index, front_firsts, front_trials, hv_reference,
                                 hv_reference_label, knee_index, ratio_hypervolume)
from ador.explore.record import baselines_of, design_mapping, is_feasible, metric_of, metrics_of

if TYPE_CHECKING:
    from ador.explore.config import Study


@dataclass(frozen=True)
class Point:
    trial: int
    x: float
    y: float


@dataclass(frozen=True)
class Limit:
    """A bound a plotted metric must meet (an SLO or a constraint), drawn as a line."""
    axis: str                    # "x" or "y"
    value: float
    label: str


@dataclass(frozen=True)
class FrontData:
    x_metric: str
    y_metric: str
    x_direction: str
    y_direction: str
    feasible: list[Point]
    infeasible: list[Point]
    pareto: list[Point]                         # feasible, non-dominated in (x, y), one per design, sorted by x
    baselines: dict[str, tuple[float, float]]   # GPU -> (x, y)
    baseline_reasons: dict[str, list[str]] = field(default_factory=dict)   # GPU -> why it misses the study
    study: str = ""
    limits: list[Limit] = field(default_factory=list)
    picks: dict[str, Point] = field(default_factory=dict)   # the knee and the corners (study's objectives)


def limits_for(study: Study, metrics: Sequence[str]) -> list[Limit]:
    """The study's SLOs and constraints on ``metrics``, as lines for a plot of those metrics."""
    from ador.slo import SLO_KEYS
    slo_metric = {(s.static_metric if study.serving is None else s.serving_metric): key
                  for key, s in SLO_KEYS.items() if getattr(study.spec.slo, key) is not None}
    out = []
    for c in study.all_constraints():
        if c.metric in metrics:
            bound = c.max if c.max is not None else c.min
            assert bound is not None
            what = f"SLO {slo_metric[c.metric]}" if c.metric in slo_metric else f"constraint {c.metric}"
            out.append(Limit("x" if c.metric == metrics[0] else "y", bound,
                             f"{what} {'<=' if c.max is not None else '>='} {bound:g}"))
    return out


def pareto_front_data(durable: optuna.Study, x_metric: str, y_metric: str, study: Study | None = None) -> FrontData:
    """Any two metrics (stored on every trial), with the Pareto set recomputed in those two; with
    ``study``, its SLO and constraint lines and its knee and corners."""
    for m in (x_metric, y_metric):
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}")
    feasible: list[Point] = []
    infeasible: list[Point] = []
    keys: list[tuple] = []
    trials = durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    objectives = durable.metric_names or []
    for t in trials:
        x, y = metric_of(t, x_metric, objectives), metric_of(t, y_metric, objectives)
        if x is None or y is None:
            continue
        ok = is_feasible(t)
        (feasible if ok else infeasible).append(Point(t.number, x, y))
        if ok:
            # a design as the front counts it everywhere (ador/explore/design_id.py)
            keys.append(front_key(t, study.space if study is not None else None))
    dirs = [METRICS[x_metric], METRICS[y_metric]]
    # the front as ador counts it everywhere: non-dominated first, then the first trial of a design
    firsts = front_firsts([(p.x, p.y) for p in feasible], dirs, lambda idx: [keys[i] for i in idx])
    pareto = sorted((feasible[i] for i in firsts), key=lambda p: (p.x, p.y))
    baselines, reasons = {}, {}
    for gpu, b in baselines_of(durable).items():
        bm = b.get("metrics")
        if bm and x_metric in bm and y_metric in bm:
            baselines[gpu] = (bm[x_metric], bm[y_metric])
            if not b.get("feasible", True):
                reasons[gpu] = list(b.get("infeasible_reasons", []))
    limits: list[Limit] = []
    marks: dict[str, Point] = {}
    if study is not None:
        limits = limits_for(study, [x_metric, y_metric])
        by_number = {p.trial: p for p in feasible}
        for label, t in picks(study, trials).items():
            if t.number in by_number:
                marks[label] = by_number[t.number]
    return FrontData(x_metric, y_metric, dirs[0], dirs[1], feasible, infeasible, pareto, baselines,
                     baseline_reasons=reasons, study=durable.study_name, limits=limits, picks=marks)


def projections(durable: optuna.Study, study: Study | None = None) -> list[FrontData]:
    """Every pair of the study's objectives (3 objectives give 3 projections)."""
    names = durable.metric_names or []
    return [pareto_front_data(durable, a, b, study) for i, a in enumerate(names) for b in names[i + 1:]]


# --- the knee and the corners ----------------------------------------------------------------

KNEE = "knee"


def picks(study: Study, trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, optuna.trial.FrozenTrial]:
    """The designs a report recommends, all on the study's front (distinct feasible Pareto
    designs, so never a dominated one): the knee (closest to the ideal point once each objective
    is normalised over the front; ador/explore/pareto.py) and, beside it, the best design on each
    objective ("lowest tbt_p99_ms", "highest output_tok_s_per_mm2", ...)."""
    front = front_trials(trials, study.directions, space=study.space)
    if not front:
        return {}
    values = [t.values for t in front]
    out = {KNEE: front[knee_index(values, study.directions)]}
    for i, (m, d) in enumerate(zip(study.metric_names, study.directions)):
        out[f"{'lowest' if d == 'minimize' else 'highest'} {m}"] = front[corner_index(values, study.directions, i)]
    return out


@dataclass(frozen=True)
class HvHistory:
    label: str
    trials: list[int]
    hypervolume: list[float]


def hypervolume_history(studies: Sequence[tuple[str, optuna.Study]], points: int = 60) -> list[HvHistory]:
    """Hypervolume (ador/explore/pareto.py's one definition: ratios to the first study's reference
    GPU) of the feasible trials so far against trials run, for studies with the same objectives."""
    directions: list[str] = []
    per_study = []
    reference: list[float] = []
    for label, durable in studies:
        dirs = [d.name.lower() for d in durable.directions]
        if not directions:
            directions = dirs
            ref = hv_reference(baselines_of(durable), durable.metric_names or [])
            reference = [v for _, v in ref.values()] if ref else [1.0] * len(dirs)
        elif dirs != directions:
            raise ValueError("studies compared in one hypervolume chart need the same objectives")
        per_study.append((label, sorted(durable.get_trials(deepcopy=False), key=lambda t: t.number)))
    out = []
    for label, trials in per_study:
        n = len(trials)
        marks = sorted({max(1, round(n * k / points)) for k in range(1, points + 1)}) if n else []
        xs, ys = [], []
        feasible: list = []
        i = 0
        for mark in marks:
            while i < mark:
                if is_feasible(trials[i]):
                    feasible.append(trials[i].values)
                i += 1
            xs.append(mark)
            ys.append(ratio_hypervolume(feasible, directions, reference))
        out.append(HvHistory(label, xs, ys))
    return out


def hv_caption(durable: optuna.Study) -> str:
    """The hypervolume definition with this study's reference GPU (for plots and reports)."""
    ref = hv_reference(baselines_of(durable), durable.metric_names or [])
    return f"{HV_DEFINITION}; reference: {hv_reference_label(ref)}"


@dataclass(frozen=True)
class Breakdown:
    label: str
    stage: str                    # "prefill" or "decode"
    total_ms: float
    parts_ms: dict[str, float]    # operator name -> ms (all layers)

    @property
    def overhead_ms(self) -> float:
        """Time of the stage no operator accounts for (the runtime's per-step overhead)."""
        return max(0.0, self.total_ms - sum(self.parts_ms.values()))


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
    trials = [t for t in durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
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


def recommended(study: Study, durable: optuna.Study) -> dict[str, dict[str, Any]]:
    """The knee and the corners (``picks``) with their metrics, designs and ratios against each
    GPU baseline."""
    baselines = baselines_of(durable)
    out = {}
    for why, t in picks(study, durable.get_trials(deepcopy=False)).items():
        metrics = metrics_of(t, study.metric_names)
        ratios = {gpu: {m: ratio_vs(m, metrics[m], b["metrics"][m]) for m in
                        dict.fromkeys([*study.metric_names, "tbt_p99_ms", "ttft_ms", "output_tok_s_per_mm2",
                                       "output_tok_s", "cost_usd"])
                        if m in b.get("metrics", {}) and m in metrics}
                  for gpu, b in baselines.items() if "metrics" in b}
        out[why] = {"trial": t.number, "metrics": metrics, "design": design_mapping(study, t), "x_vs": ratios}
    return out
