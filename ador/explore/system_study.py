"""System-level studies: every trial a whole deployment (device, split, precision, scheduler, replicas).

A study with an offered ``load`` (and its ``economics``) asks the operator's question: what is the
cheapest (smallest, lowest-power) system that serves this load within these p99 SLOs? The search
space's system knobs (``system.device``, ``system.tp``, ``system.pp``, ``system.precision``,
``serving.policy``, ``serving.max_batch``, ``serving.chunk_tokens``) choose the deployment; a GPU
preset is a candidate like a design, under the same runtime profile, so one front holds both. The
chip knobs describe the design and matter only when ``system.device`` is ``design``.
"""
from __future__ import annotations

from typing import Any

from ador.errors import AdorError
from ador.explore.config import Study
from ador.explore.runner import Outcome, Scorer
from ador.explore.space import DESIGN, system_values
from ador.explore.system import Candidate, describe, score_candidate
from ador.hardware import GPUS
from ador.serving import SchedulerConfig
from ador.workload import get_precision

SLO_CONSTRAINTS = 2     # p99 TTFT and p99 TBT at the offered load, after the chip's own constraints


class SystemScorer(Scorer):
    def __init__(self, study: Study) -> None:
        super().__init__(study)
        spec = study.spec
        assert spec.load is not None and spec.economics is not None    # checked when the study is resolved
        self.load, self.economics = spec.load, spec.economics
        self.default_policy = spec.workload.policy
        self._memo: dict[tuple, tuple[dict[str, float] | None, list[str]]] = {}

    def candidate(self, changes: dict[str, Any]) -> Candidate:
        spec = self.study.spec
        knobs = system_values(changes)
        name = knobs.get("system.device", DESIGN)
        device = self.study.space.apply(changes) if name == DESIGN else GPUS[name]
        defaults = SchedulerConfig()
        return Candidate(device, tp=int(knobs.get("system.tp", spec.tp)), pp=int(knobs.get("system.pp", spec.pp)),
                         precision=get_precision(knobs.get("system.precision", spec.precision)),
                         runtime=self.study.runtime_for(device.kind),
                         policy=knobs.get("serving.policy", self.default_policy),
                         max_batch=int(knobs.get("serving.max_batch", defaults.max_batch)),
                         chunk_tokens=int(knobs.get("serving.chunk_tokens", defaults.chunk_tokens)))

    def score(self, c: Candidate) -> tuple[dict[str, float] | None, list[str]]:
        """The candidate's metrics; a GPU deployment met again (the chip knobs do not matter to it) is
        answered from memory."""
        key = (c.device, c.tp, c.pp, c.precision.name, c.policy, c.max_batch, c.chunk_tokens)
        if key not in self._memo:
            self._memo[key] = score_candidate(c, self.model, self.load, self.economics,
                                              power_rule=self.study.spec.power_rule, seed=self.study.spec.seed)
        return self._memo[key]

    def metrics(self, device) -> dict[str, float]:
        """A device at the study's own split, precision and policy (for listed baselines)."""
        spec = self.study.spec
        metrics, reasons = self.score(Candidate(device, spec.tp, spec.pp, get_precision(spec.precision),
                                                self.study.runtime_for(device.kind), policy=self.default_policy))
        if metrics is None:
            raise AdorError("; ".join(reasons))
        return metrics

    @property
    def n_constraints(self) -> int:
        return super().n_constraints + SLO_CONSTRAINTS

    def constraint_names(self, design: bool = True) -> list[str]:
        """A GPU's vector has the design's length (``judge`` pads it), then the p99 SLOs."""
        return super().constraint_names(design=True) + [f"serving_ttft_p99_ms<={self.load.ttft_slo_ms:g}",
                                                        f"serving_tbt_p99_ms<={self.load.tbt_slo_ms:g}"]

    def judge(self, metrics: dict[str, float], *, design: bool = True) -> tuple[list[float], list[str]]:
        """The chip's constraints (die limits only for a design; a GPU's are met: zeros keep the
        vector's length) and the p99 SLOs at the offered load."""
        constraints, reasons = super().judge(metrics, design=design)
        if not design and self.study.spec.reticle_limit:
            constraints = constraints[:1] + [0.0, 0.0] + constraints[1:]
        load = self.load
        for metric, slo, what in (("serving_ttft_p99_ms", load.ttft_slo_ms, "TTFT"),
                                  ("serving_tbt_p99_ms", load.tbt_slo_ms, "TBT")):
            constraints.append(metrics[metric] / slo - 1.0)
            if metrics[metric] > slo:
                reasons.append(f"p99 {what} {metrics[metric]:.4g} ms > {slo:g} ms at {load.rate_rps:g} req/s")
        return constraints, reasons

    def prepare(self, changes: dict[str, Any]) -> Candidate:
        """The deployment the knob values describe (scored by ``finish``)."""
        return self.candidate(changes)

    def finish(self, c: Candidate) -> Outcome:
        metrics, reasons = self.score(c)
        if metrics is None:
            return Outcome(None, {}, {"system": describe(c), "infeasible_reasons": reasons})
        out = self.outcome(metrics, is_design=c.device.kind == "ador")
        out.user_attrs["system"] = describe(c)
        return out


def strata(study: Study, sampler: str) -> list[dict[str, Any]]:
    """The device strata a system-level study samples in turn (empty for any other study, and
    for the grid sampler, which visits every device anyway).

    Left to itself, a sampler sees a GPU deployment scored in a few knob values and a design only
    after it searches the whole chip space, so a front of 400 trials held 8 designs, and a "what to
    buy" built on it compared the cheapest GPU with whatever design came first. Each trial is
    therefore asked with ``system.device`` fixed (Optuna's ``enqueue_trial`` with a partial set of
    parameters; the sampler chooses every other knob): half the trials deploy the design, the other
    half go to the GPUs in turn."""
    knob = study.space.knobs.get("system.device")
    if study.spec.load is None or knob is None or sampler == "grid":
        return []
    choices = list(knob.choices or ())
    gpus = [c for c in choices if c != DESIGN]
    if DESIGN not in choices or not gpus:
        return [{"system.device": c} for c in choices]
    return [{"system.device": v} for g in gpus for v in (DESIGN, g)]

