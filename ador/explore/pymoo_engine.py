"""pymoo's NSGA-II as a second engine: pymoo proposes, ador scores, and every evaluation is
written into the same Optuna study (same parameters and distributions), so results, status,
reports and the dashboard see one study whichever engine ran it.

pymoo breeds a whole generation in numpy, so where every metric has a population formula
(ador/explore/batch.py) a generation is scored in one vectorised call and committed in one
transaction: the fastest persisted path (docs/performance.md)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from ador.explore.config import Study
from ador.explore.params import distributions, knob_values, param_name, params_of
from ador.explore.pareto import to_minimise
from ador.explore.space import Knob
from ador.explore.stored import Point, StoredTrials
from ador.progress import Progress

# a failed design (no metrics) is pushed behind every evaluated one by a large constraint violation;
# its objectives are never read by the ranking, and it is stored as FAIL, never as a number
_FAILED_VIOLATION = 1e9


@dataclass(frozen=True)
class _Var:
    name: str
    knob: Knob
    low: float
    high: float
    integer: bool
    decode: Callable[[float], Any]
    encode: Callable[[Any], float]


def _variables(space) -> list[_Var]:
    out = []
    for name, k in space.knobs.items():
        if k.type == "categorical":
            n = len(k.choices)
            out.append(_Var(name, k, 0, n - 1, True, lambda x, c=k.choices: c[int(round(x))],  # type: ignore[misc]
                            lambda v, c=k.choices: float(list(c).index(v))))  # type: ignore[misc]
        elif k.type == "pow2":
            lo, hi = math.log2(k.low), math.log2(k.high)
            out.append(_Var(name, k, lo, hi, True, lambda x: 2 ** int(round(x)), lambda v: math.log2(v)))
        elif k.type == "int":
            step = int(k.step or 1)
            n = int((k.high - k.low) // step)
            out.append(_Var(name, k, 0, n, True, lambda x, lo=int(k.low), s=step: lo + s * int(round(x)),  # type: ignore[misc]
                            lambda v, lo=int(k.low), s=step: (v - lo) / s))  # type: ignore[misc]
        elif k.type == "log_int":
            out.append(_Var(name, k, math.log(k.low), math.log(k.high), False,
                            lambda x, lo=int(k.low), hi=int(k.high): min(hi, max(lo, int(round(math.exp(x))))),  # type: ignore[misc]
                            lambda v: math.log(v)))
        elif k.type == "log_float":
            out.append(_Var(name, k, math.log(k.low), math.log(k.high), False, lambda x: math.exp(x),
                            lambda v: math.log(v)))
        else:
            def dec(x, k=k):
                if k.step:
                    x = k.low + round((x - k.low) / k.step) * k.step
                return min(k.high, max(k.low, x))
            out.append(_Var(name, k, k.low, k.high, False, dec, lambda v: float(v)))
    return out


def seed_population(points: Sequence[Point], directions: Sequence[str], size: int) -> list[int]:
    """The trial ids that seed a resumed pymoo run: the feasible stored trials ranked by
    non-dominated sorting in the study's directions (front first), ties within a rank by trial
    number, at most ``size``."""
    feasible = [p for p in points if p.feasible]
    if not feasible or size <= 0:
        return []
    import moocore
    ranks = moocore.pareto_rank(to_minimise([p.values for p in feasible], directions))
    order = sorted(range(len(feasible)), key=lambda i: (int(ranks[i]), feasible[i].number))
    return [feasible[i].trial_id for i in order[:size]]


def run_pymoo(study: Study, writer, reader: StoredTrials, n_trials: int, options: dict[str, Any],
              seed: int, progress: bool, label: str):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.population import Population
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.sampling.rnd import FloatRandomSampling

    from ador.explore.pareto import hv_reference, ratio_hypervolume
    from ador.explore.record import settings
    from ador.explore.history import RunStats
    from ador.explore.scoring import scorer_for

    variables = _variables(study.space)
    integer_cols = np.array([v.integer for v in variables])
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in study.directions])
    scorer = scorer_for(study)
    n_constraints = scorer.n_constraints
    from ador.explore import batch as batching
    # a generation scored in one vectorised call where every metric has a population formula (never a
    # system-level study, whose scorer prices whole deployments)
    vectorised = batching.ENABLED and batching.population_capable(study)
    batch = batching.BatchScorer(scorer) if vectorised else None

    class _Round(Repair):
        def _do(self, problem, X, **kwargs):
            X = np.array(X, dtype=float)
            X[:, integer_cols] = np.round(X[:, integer_cols])
            return X

    problem = Problem(n_var=len(variables), n_obj=len(study.directions), n_ieq_constr=n_constraints,
                      xl=np.array([v.low for v in variables]), xu=np.array([v.high for v in variables]))
    pop_size = int(options.get("population_size", 50))
    # fresh operator objects: pymoo's defaults are shared between instances
    sampling: Any = FloatRandomSampling()
    points = reader.points()
    best = reader.load(seed_population(points, study.directions, pop_size), user_attrs=False)
    # a resumed run's seeds are stored trials: pymoo is told their stored outcome, nothing is scored
    # or written again (key: the design's parameters)
    seeds = {tuple(sorted(t.params.items())): (np.array(t.values) * signs, list((t.constraints or {}).values()))
             for t in best if t.values is not None}
    if best:
        X0 = np.array([[v.encode(knob_values(study.space, t.params)[v.name]) for v in variables] for t in best])
        if len(X0) < pop_size:
            rng = np.random.default_rng(seed)
            extra = rng.uniform(problem.xl, problem.xu, size=(pop_size - len(X0), len(variables)))
            X0 = np.vstack([X0, extra])
        sampling = Population.new("X", X0)
    algorithm = NSGA2(pop_size=pop_size, sampling=sampling, crossover=SBX(prob=0.9, eta=15), mutation=PM(eta=20),
                      repair=_Round(), eliminate_duplicates=bool(options.get("eliminate_duplicates", True)))
    algorithm.setup(problem, seed=seed, termination=("n_evals", 10 ** 9))
    dists = distributions(study.space)
    stats = RunStats()
    bar = Progress(total=n_trials, label=label or f"{study.name} (pymoo-nsga2)") if progress else None
    feasible_points: list[Sequence[float]] = [p.values for p in points if p.feasible]
    hv = 0.0
    hv_ref = [v for _, v in hv_reference(settings(writer.durable).get("ador_baselines") or {},
                                         study.metric_names).values()]
    from ador.explore.design_id import key_hash, params_key
    from ador.explore.history import REPEAT_ATTR, answer_of
    # a design met before (stored, or scored in this run) is answered from its first trial, not
    # scored again: offspring that differ only in knobs the design makes inert are one design
    stored_designs = reader.designs()
    answers: dict[str, tuple[list[float] | None, dict[str, float], dict[str, Any]]] = {}

    def earlier(key: str):
        if key not in answers and key in stored_designs:
            durable_id, number = stored_designs.pop(key)         # looked up once
            loaded = reader.load([durable_id])
            # a stored trial without this study's constraints (an older ador, another client) answers
            # nothing: the design is scored again
            if loaded and (len(loaded[0].constraints) == n_constraints or loaded[0].state != TrialState.COMPLETE):
                values, constraints, attrs = answer_of(loaded[0], number)
                answers[key] = (values, constraints, {**attrs, "engine": "pymoo-nsga2"})
        return answers.get(key)

    def trial_of(values, constraints, attrs, p):
        if values is None:
            return optuna.trial.create_trial(state=TrialState.FAIL, params=p, distributions=dists, user_attrs=attrs)
        return optuna.trial.create_trial(values=values, params=p, distributions=dists, user_attrs=attrs,
                                         constraints=constraints)

    start = time.perf_counter()
    done = 0
    try:
        while done < n_trials:
            pop = algorithm.ask()
            if pop is None:
                # pymoo's mating found no offspring it had not seen (after its retries) and ended the
                # run: in a small space every design is taken; nothing is left to propose
                stats.stopped = (f"pymoo-nsga2 stopped after {done} of {n_trials} trials: its crossover and "
                                 f"mutation produced no design it had not seen (a space this small is taken "
                                 f"whole; `ador study enumerate` scores every design of it)")
                break
            X = pop.get("X")
            F = np.zeros((len(X), problem.n_obj))
            G = np.full((len(X), n_constraints), _FAILED_VIOLATION)   # past the budget: never stored
            designs = [{v.name: v.decode(xi) for v, xi in zip(variables, x)} for x in X]
            params = [params_of(study.space, design) for design in designs]
            new = []
            for i, p in enumerate(params):
                seed_outcome = seeds.pop(tuple(sorted(p.items())), None)
                if seed_outcome is not None and len(seed_outcome[1]) == n_constraints:
                    F[i], G[i] = seed_outcome
                else:
                    new.append(i)
            new = new[:n_trials - done]
            take = len(new)
            keys = {i: key_hash(params_key(params[i], dists, study.space)) for i in new}
            firsts: dict[str, int] = {}
            for i in new:
                if earlier(keys[i]) is None and keys[i] not in firsts:
                    firsts[keys[i]] = i
            score = list(firsts.values())
            outcomes = batch([designs[i] for i in score]) if batch is not None else [scorer(designs[i]) for i in score]
            trials = []
            for i, outcome in zip(score, outcomes):
                attrs = {**outcome.user_attrs, "engine": "pymoo-nsga2"}
                trials.append(trial_of(outcome.values, outcome.constraints, attrs, params[i]))
            # the generation in one transaction (as the batch path): its new designs and the repeats of
            # designs met before it; a repeat of a design first met in this generation needs that
            # trial's number, so those follow in a second one
            scored = set(score)
            known = [i for i in new if i not in scored and keys[i] in answers]
            later = [i for i in new if i not in scored and keys[i] not in answers]
            ids = writer.write_many(trials + [trial_of(*answers[keys[i]], params[i]) for i in known])
            for i, outcome, durable_id in zip(score, outcomes, ids):
                number = writer.recorder.number_of(durable_id)
                attrs = {**outcome.user_attrs, "engine": "pymoo-nsga2", REPEAT_ATTR: number}
                answers[keys[i]] = (outcome.values, dict(outcome.constraints), attrs)
            if later:
                writer.write_many([trial_of(*answers[keys[i]], params[i]) for i in later])
            stats.repeats += len(known) + len(later)
            for i in new:
                values, constraints, attrs = answers[keys[i]]
                if values is None:
                    stats.failed += 1
                    continue
                F[i] = np.array(values) * signs
                G[i] = list(constraints.values())
                stats.completed += 1
                if attrs.get("feasible"):
                    stats.feasible += 1
                    feasible_points.append(values)
            done += take
            if bar:
                if done // 50 > (done - take) // 50:
                    hv = ratio_hypervolume(feasible_points, study.directions, hv_ref)
                bar.update(done, feasible=stats.feasible, HV=f"{hv:.3f}")
            pop.set("F", F, "G", G)
            algorithm.tell(infills=pop)
    finally:
        if bar:
            bar.close()
        stats.seconds = time.perf_counter() - start
    return stats


__all__ = ["run_pymoo", "param_name"]
