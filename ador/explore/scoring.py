"""Scoring one design for a study: metrics, constraints (<= 0 feasible), the compact record."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ador.errors import AdorError
from ador.explore.config import Study
from ador.explore.metrics import ENERGY_METRICS, evaluate_design, feasibility, finite, serving_metrics
from ador.explore.record import REASONS, stored_metrics, trial_attrs
from ador.workload import get_model, get_precision

GPU_POLICY_FOR_CONCURRENT = "chunked"   # GPUs cannot split phases over engines; chunked prefill is their best


@dataclass(frozen=True)
class Outcome:
    values: list[float] | None          # None: the trial failed
    constraints: dict[str, float]       # name -> value, <= 0 feasible (Optuna's constraint API)
    user_attrs: dict[str, Any]


class Scorer:
    """Scores knob values for one study (holds the resolved model, precision, workload)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        spec = study.spec
        self.model = get_model(spec.model)
        self.precision = get_precision(spec.precision)
        self.constraints = study.all_constraints()
        self.baseline_constraints = study.all_constraints(iso=False)
        needed = set(study.metric_names) | {c.metric for c in self.constraints}
        self.need_energy = bool(needed & ENERGY_METRICS)
        self.keep = stored_metrics(study)

    def metrics(self, device) -> dict[str, float]:
        spec = self.study.spec
        runtime = self.study.runtime_for(device.kind)
        out = evaluate_design(device, self.model, self.precision, self.study.workload, tp=spec.tp, pp=spec.pp,
                              devices=spec.devices, need_energy=self.need_energy, runtime=runtime,
                              power_rule=spec.power_rule)
        load = self.study.serving
        if load is not None and device.kind == "gpu" and load.policy == "concurrent":
            load = dataclasses.replace(load, policy=GPU_POLICY_FOR_CONCURRENT)
        if load is not None and out["memory_utilisation"] <= 1.0:
            # the same requests (same seed) for every design, so designs compare on equal terms
            out.update(serving_metrics(device, self.model, self.precision, self.study.workload, load, tp=spec.tp,
                                       pp=spec.pp, devices=spec.devices, seed=spec.seed, runtime=runtime))
        return out

    @property
    def n_constraints(self) -> int:
        """Length of the constraint vector ``judge`` returns for a design."""
        return 1 + (2 if self.study.spec.reticle_limit else 0) + len(self.constraints)

    def constraint_names(self, design: bool = True) -> list[str]:
        """The names of ``judge``'s constraint values, in order (Optuna stores each by name)."""
        names = ["fits_memory"]
        if design and self.study.spec.reticle_limit:
            names += ["within_reticle", "shoreline"]
        for c in (self.constraints if design else self.baseline_constraints):
            names.append(f"{c.metric}<={c.max:g}" if c.max is not None else f"{c.metric}>={c.min:g}")
        return names

    def judge(self, metrics: dict[str, float], *, design: bool = True) -> tuple[list[float], list[str]]:
        """Constraint values (<= 0 feasible; named by ``constraint_names``) and the reasons a scored
        device misses them. Designs and GPU baselines are judged by the same constraints and SLOs; the
        die limits (reticle, shoreline) and the iso rules, which say what designs may be, apply to
        designs only (``design``)."""
        reticle = design and self.study.spec.reticle_limit
        reasons = feasibility(metrics, reticle=reticle)
        constraints = [metrics["memory_utilisation"] - 1.0]
        if reticle:
            from ador.cost import RETICLE_LIMIT_MM2
            constraints.append(metrics["die_area_mm2"] / metrics.get("dies", 1.0) / RETICLE_LIMIT_MM2 - 1.0)
            constraints.append(metrics["shoreline_utilisation"] - 1.0)
        for c in (self.constraints if design else self.baseline_constraints):
            v = metrics[c.metric]
            if c.max is not None:
                constraints.append((v - c.max) / abs(c.max) if c.max else v)
                if v > c.max:
                    reasons.append(f"{c.metric} {v:.4g} > {c.max:g}")
            else:
                assert c.min is not None                 # a constraint has a max or a min (checked on load)
                constraints.append((c.min - v) / abs(c.min) if c.min else -v)
                if v < c.min:
                    reasons.append(f"{c.metric} {v:.4g} < {c.min:g}")
        return constraints, reasons

    def __call__(self, values: dict[str, Any]) -> Outcome:
        """The trial's outcome for knob ``values``: a structural constraint broken, or a bad value
        (an AdorError while ``prepare`` builds what is scored), is a failed trial with its reason."""
        try:
            changes, broken = self.study.space.resolve(values)
            if broken:
                return Outcome(None, {}, {REASONS: [f"structural constraint: {c}" for c in broken]})
            prepared = self.prepare(changes)
        except AdorError as err:
            return Outcome(None, {}, {REASONS: [str(err)]})
        return self.finish(prepared)

    def prepare(self, changes: dict[str, Any]) -> Any:
        """What ``finish`` judges, built from the resolved knob values: the design's metrics."""
        return self.metrics(self.study.space.apply(changes))

    def finish(self, prepared: Any) -> Outcome:
        return self.outcome(prepared)

    def outcome(self, metrics: dict[str, float], *, is_design: bool = True) -> Outcome:
        """The trial's result from its metrics: judged, with named constraints and a compact record."""
        if not finite(metrics):
            # a device whose runtime reserve leaves no memory has an infinite memory_utilisation: its
            # reason is that it does not fit; any other non-finite figure is named as one
            reasons = feasibility(metrics, reticle=is_design and self.study.spec.reticle_limit)
            bad = [k for k, v in metrics.items()
                   if not math.isfinite(v) and not (k == "memory_utilisation" and v == math.inf)]
            if bad or not reasons:
                reasons.append(f"non-finite metrics: {', '.join(bad)}")
            return Outcome(None, {}, {REASONS: reasons})
        values, reasons = self.judge(metrics, design=is_design)
        constraints = dict(zip(self.constraint_names(is_design), values, strict=True))
        missing = [m for m in self.study.metric_names if m not in metrics]
        if missing:   # serving metrics of a design that cannot hold the model: nothing to serve with
            return Outcome(None, {}, trial_attrs(metrics, reasons or [f"no {', '.join(missing)}"], self.keep))
        return Outcome([metrics[m] for m in self.study.metric_names], constraints,
                       trial_attrs(metrics, reasons, self.keep))


def scorer_for(study: Study) -> Scorer:
    """The scorer a study needs: a system-level study (one with an offered ``load``) scores whole
    deployments, any other study one design at its fixed system."""
    if study.spec.load is not None:
        from ador.explore.system_study import SystemScorer
        return SystemScorer(study)
    return Scorer(study)
