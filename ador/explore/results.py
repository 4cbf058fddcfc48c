"""Reading a stored study's results through targeted queries (ador/explore/stored.py): counts by
state, the front (distinct feasible Pareto designs) from the completed trials' values, and only the
front's trials read whole. Nothing here loads every trial through Optuna's ORM."""
from __future__ import annotations

from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ador.errors import ConfigError
from ador.explore.config import Study
from ador.explore.params import distributions
from ador.explore.pareto import front_firsts, hv_reference, ratio_hypervolume
from ador.explore.record import baselines_of, settings
from ador.explore.space import SearchSpace
from ador.explore.stored import Point, StoredTrials


def reader(durable: optuna.Study) -> StoredTrials:
    return StoredTrials(durable._storage, durable._study_id)


def front_points(durable: optuna.Study, directions: Sequence[str] | None = None,
                 points: list[Point] | None = None, space: SearchSpace | None = None) -> list[Point]:
    """The study's front as ``front_trials`` counts it (feasible, non-dominated, one trial per
    distinct design: its parameters less the knobs ``space`` finds inert), in trial-number order,
    from the values of the completed trials (the parameters are read for the non-dominated trials
    alone)."""
    if directions is None:
        directions = [d.name.lower() for d in durable.directions]
    r = reader(durable)
    feasible = [p for p in (r.points() if points is None else points) if p.feasible]

    from ador.explore.design_id import DESIGN_KEY, internal_key
    dists = distributions(space) if space is not None else {}

    def keys_of(indices: list[int]) -> list[Any]:
        ids = [feasible[i].trial_id for i in indices]
        if space is None:          # the digests ador stored (what front_trials reads without a space)
            digests = r.system_attr(DESIGN_KEY)
            missing = [i for i in ids if i not in digests]
            raw = r.param_keys(missing) if missing else {}
            return [digests.get(i) or raw[i] for i in ids]
        keys = r.param_keys(ids)
        return [internal_key(keys[i], dists, space) for i in ids]
    return [feasible[i] for i in front_firsts([p.values for p in feasible], directions, keys_of)]


def study_front(durable: optuna.Study, directions: Sequence[str] | None = None,
                points: list[Point] | None = None, *, table: bool = False,
                space: SearchSpace | None = None) -> list[FrozenTrial]:
    """The front's trials (``front_points``), only they read whole (``table``: as a table of
    trials shows them, ``StoredTrials.load``)."""
    return reader(durable).load([p.trial_id for p in front_points(durable, directions, points, space)], table=table)


def status(durable: optuna.Study, front: list[FrozenTrial] | None = None,
           points: list[Point] | None = None, space: SearchSpace | None = None) -> dict[str, Any]:
    """Counts, the front's size and hypervolume (``front`` and ``points``, the completed trials'
    values, where the caller has read them already; without ``front`` none is read whole)."""
    r = reader(durable)
    made = settings(durable)
    directions = [d.name.lower() for d in durable.directions]
    if points is None:
        points = r.points()
    # counted after the points were read: a trial only moves on to a finished state, so with a study
    # running meanwhile the counts include every point (never fewer complete than feasible trials)
    counts = r.counts()
    front_values = [t.values for t in front] if front is not None else \
        [p.values for p in front_points(durable, directions, points, space)]
    names = durable.metric_names or []
    ref = hv_reference(made.get("ador_baselines") or {}, names)
    return {
        "study": durable.study_name, "n_trials": sum(counts.values()),
        "n_complete": counts.get(TrialState.COMPLETE, 0), "n_failed": counts.get(TrialState.FAIL, 0),
        "n_running": counts.get(TrialState.RUNNING, 0),
        "n_feasible": sum(1 for p in points if p.feasible), "n_pareto": len(front_values),
        "hypervolume": ratio_hypervolume(front_values, directions, [v for _, v in ref.values()]),
        "hypervolume_reference": {m: {"gpu": g, "value": v} for m, (g, v) in ref.items()},
        "objectives": durable.metric_names, "directions": directions,
        "model_version": made.get("ador_model_version"),
        "sampler": made.get("ador_sampler"), "created": made.get("ador_created"),
    }


def pareto_rows(study: Study, durable: optuna.Study, front: list[FrozenTrial] | None = None) -> list[dict[str, Any]]:
    """The front (distinct feasible Pareto designs) with their metrics and ratios against each
    baseline, best first on the first objective."""
    from ador.explore.metrics import ratio_vs
    from ador.explore.record import metrics_of
    baselines = baselines_of(durable)
    rows = []
    if front is None:
        front = study_front(durable, study.directions, space=study.space)
    for t in sorted(front, key=lambda t: (to_minimise_key(t.values, study.directions), t.number)):
        metrics = metrics_of(t, study.metric_names)
        row: dict[str, Any] = {"trial": t.number, **{m: metrics.get(m) for m in study.metric_names}}
        for extra in ("die_area_mm2", "ttft_ms", "tbt_p99_ms", "output_tok_s", "cost_usd"):
            row.setdefault(extra, metrics.get(extra))
        for gpu, base in baselines.items():
            for m in study.metric_names:
                bm, v = base.get("metrics", {}).get(m), metrics.get(m)
                row[f"{m}_x_vs_{gpu}"] = ratio_vs(m, v, bm) if bm is not None and v is not None else None
        rows.append(row)
    return rows


def to_minimise_key(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    return tuple(v if d == "minimize" else -v for v, d in zip(values, directions))


def find_trial(durable: optuna.Study, number: int) -> FrozenTrial:
    r = reader(durable)
    trial_id = r.id_of_number(number)
    found = r.load([trial_id]) if trial_id is not None else []
    if not found:
        raise ConfigError("trial", number, f"no such trial (0..{sum(r.counts().values()) - 1})")
    return found[0]


def trial_design(study: Study, durable: optuna.Study, number: int) -> dict[str, Any]:
    """A trial's design as a mapping, rebuilt from its parameters and the stored search space."""
    from ador.explore.record import design_mapping
    return design_mapping(study, find_trial(durable, number))
