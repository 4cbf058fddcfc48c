"""Batch ask / score / tell: a generation (NSGA-II, NSGA-III: the population size) or a batch of
``BATCH_TRIALS`` trials (any other sampler) is asked through Optuna's public ask/tell, scored in one
vectorised call (``ador.explore.vector``) and told; every trial is then committed by ador's
recorder (``TrialWriter.write_many``): the batch in one transaction (a second one for repeats of a
design first met in the same batch), so a generation costs one commit (one fsync) rather than one
per trial; each trial is durable once its transaction commits, and trials of an interrupted batch
that were not committed are asked again on resume (never stored, so none is lost).

A study runs this way whenever every metric it needs has a population formula: no serving
simulation, no system-level knobs, no offered load. Scores equal the one-design path's (a test
holds them equal); designs the population path cannot price (rejected by the space's rules, or
with a metric that is not finite) are scored one by one, so their stored reasons are the same.
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import optuna

from ador.errors import AdorError
from ador.explore.columns import design_arrays
from ador.explore.metrics import SERVING_METRICS, finite
from ador.explore.space import SYSTEM_KNOBS
from ador.explore.vector import feasibility_codes, population_metrics

if TYPE_CHECKING:
    from ador.explore.config import Study
    from ador.explore.history import History, RunStats
    from ador.explore.scoring import Outcome, Scorer

BATCH_TRIALS = 64                       # trials asked together by samplers without generations
GENERATIONAL = {"nsga2": 50, "nsga3": 50}   # sampler -> its default population size
SEQUENTIAL = {"gp"}                      # samplers that gain from seeing every result before the next ask
ENABLED = True                           # False: every study one trial at a time (benchmarks compare the two)


def batch_size(study: Study, sampler: str, options: dict[str, Any]) -> int:
    """How many trials to ask and score together (0: one at a time, the scalar path)."""
    if not ENABLED or sampler in SEQUENTIAL or not population_capable(study):
        return 0
    if sampler in GENERATIONAL:
        return int(options.get("population_size", GENERATIONAL[sampler]))
    return BATCH_TRIALS


def population_capable(study: Study) -> bool:
    """Every metric of the study's objectives and constraints has a population formula."""
    if study.spec.load is not None or study.serving is not None:
        return False
    if any(k in SYSTEM_KNOBS for k in study.space.knobs):
        return False
    needed = set(study.metric_names) | {c.metric for c in study.all_constraints()}
    return not needed & SERVING_METRICS


class BatchScorer:
    """Scores many knob-value sets at once for a ``Scorer``'s study, with the scorer's judgement."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        study = scorer.study
        self.study = study
        self.runtime = study.runtime_for("ador")

    def metrics(self, arrays) -> dict[str, np.ndarray]:
        spec = self.study.spec
        return population_metrics(arrays, self.scorer.model, self.scorer.precision, self.study.workload, tp=spec.tp,
                                  pp=spec.pp, devices=spec.devices, runtime=self.runtime,
                                  power_rule=spec.power_rule, need_energy=self.scorer.need_energy)

    def feasible(self, metrics: dict[str, np.ndarray]) -> np.ndarray:
        """For every design, whether ``Scorer.outcome`` would call it feasible: every metric
        finite, no feasibility code (memory, and the die limits where the study applies them),
        every constraint of the study met."""
        ok = np.ones(len(metrics["memory_utilisation"]), dtype=bool)
        for values in metrics.values():
            ok &= np.isfinite(values)
        ok &= feasibility_codes(metrics, reticle=self.study.spec.reticle_limit) == 0
        for c in self.scorer.constraints:
            v = metrics[c.metric]
            ok &= (v <= c.max) if c.max is not None else (v >= c.min)
        return ok

    def system_ok(self, arrays) -> np.ndarray:
        """Whether each design makes the study's system (``System`` checks its links against the
        tensor-parallel group), asked of ``System`` once per distinct set of links."""
        from ador.hardware import Links, System
        spec = self.study.spec
        links = arrays.links
        rows = np.rec.fromarrays([links.count, links.bw_bytes_per_s_per_link, links.latency_s, arrays.topology])
        uniq, inverse = np.unique(rows, return_inverse=True)
        ok = np.ones(len(uniq), dtype=bool)
        for k, (count, bw, latency, topology) in enumerate(uniq.tolist()):
            chip = dataclasses.replace(self.study.space.base, links=Links(int(count), bw, latency, topology))
            try:
                System.of(chip, tp=spec.tp, pp=spec.pp, devices=spec.devices)
            except AdorError:
                ok[k] = False
        return ok[inverse.reshape(-1)]

    def __call__(self, values: Sequence[dict[str, Any]]) -> list[Outcome]:
        if not values:
            return []
        space = self.study.space
        columns = {k: np.array([v[k] for v in values]) for k in space.knobs}
        designs = design_arrays(space, columns)
        try:
            metrics = self.metrics(designs.arrays) if designs.arrays.n else {}
        except AdorError:                     # e.g. dies that cannot split the model: each design says why
            metrics = {"memory_utilisation": np.full(designs.arrays.n, np.nan)}
        system_ok = self.system_ok(designs.arrays)
        out = []
        j = 0
        for i, v in enumerate(values):
            if designs.valid[i]:
                j += 1
            if not designs.valid[i] or not system_ok[j - 1]:
                out.append(self.scorer(v))           # the one-design path says why
                continue
            m = {k: float(a[j - 1]) for k, a in metrics.items()}
            out.append(self.scorer.outcome(m) if finite(m) else self.scorer(v))
        return out


def run_batches(study: Study, mem: optuna.Study, history: History, n_trials: int, size: int, progress: bool,
                label: str, made: dict[str, Any]) -> RunStats:
    """``n_trials`` trials in batches of ``size``: ask them all, score in one call those whose design
    was not met before, tell each and commit each (the loop of ``runner.run_trials``, a batch at a
    time; a design met before, in an earlier batch or earlier in this one, is answered from its
    first trial as there)."""
    from ador.explore.history import RunStats, tell
    from ador.explore.pareto import hv_reference, ratio_hypervolume
    from ador.explore.design_id import params_key
    from ador.explore.params import distributions, knob_values
    from ador.explore.runner import SYNC_EVERY_S
    from ador.explore.scoring import Scorer
    from ador.progress import Progress
    score = BatchScorer(Scorer(study))
    dists = distributions(study.space)
    stats = RunStats()
    bar = Progress(total=n_trials, label=label) if progress else None
    feasible_points: list[Sequence[float]] = [p.values for p in history.stored.points() if p.feasible] if bar else []
    hv_ref = [v for _, v in hv_reference(made.get("ador_baselines") or {}, study.metric_names).values()]
    start = time.perf_counter()
    hv, hv_at, pulled_at = 0.0, 0.0, start
    done = 0
    try:
        open_slots = getattr(mem.sampler, "open_slots", None)     # generational samplers
        while done < n_trials:
            want = min(size, n_trials - done)
            if open_slots is not None:
                want = min(want, open_slots(mem))
            trials = [mem.ask(dists) for _ in range(want)]
            params = [t.params for t in trials]          # a copy per read: read once
            keys = [params_key(p, dists, study.space) for p in params]    # a design, less its inert knobs
            answers = {}                         # trial -> the answer of a design met in an earlier batch
            firsts: dict[tuple, int] = {}        # each design not met before -> its first trial, scored once
            for i, p in enumerate(params):
                answer = history.repeat_of(p, dists)
                if answer is not None:
                    answers[i] = answer
                else:
                    firsts.setdefault(keys[i], i)
            fresh = sorted(firsts.values())
            scored = dict(zip(fresh, score([knob_values(study.space, params[i]) for i in fresh])))
            # stored in one transaction: the new designs and the repeats of earlier batches; then,
            # answered from those, the repeats within this batch (rare: NSGA-II breeds them away)
            first = [i for i in range(len(trials)) if i in answers or i in scored]
            within = [i for i in range(len(trials)) if i not in answers and i not in scored]
            for group in (first, within):
                if not group:
                    continue
                for i in group:
                    answer = answers[i] if i in answers else None if i in scored else \
                        history.repeat_of(params[i], dists)
                    if answer is not None:
                        values, constraints, attrs = answer
                        stats.repeats += 1
                    else:      # scored in this batch (its first occurrence), or alone if history lost it
                        outcome = scored[i] if i in scored else score.scorer(knob_values(study.space, params[i]))
                        values, constraints, attrs = outcome.values, outcome.constraints, outcome.user_attrs
                    if tell(mem, trials[i], values, constraints, attrs, stats) and bar and values is not None:
                        feasible_points.append(values)
                history.write_many([mem._storage.get_trial(trials[i]._trial_id) for i in group])
            done += len(trials)
            now = time.perf_counter()
            if now - pulled_at > SYNC_EVERY_S:
                history.pull()
                pulled_at = now
            if bar:
                if now - hv_at > 1.0:
                    hv, hv_at = ratio_hypervolume(feasible_points, study.directions, hv_ref), now
                bar.update(done, feasible=stats.feasible, HV=f"{hv:.3f}")
    finally:
        if bar:
            bar.close()
        stats.seconds = time.perf_counter() - start
    return stats
