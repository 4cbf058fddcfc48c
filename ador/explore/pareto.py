"""Pareto fronts, the knee and its corners, and the one hypervolume definition (moocore), on
objective vectors with stated directions."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from ador.explore.space import SearchSpace


def to_minimise(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return np.asarray(points, dtype=float).reshape(-1, len(directions)) * sign


def pareto_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """True for points no other point dominates (duplicates all stay); moocore's dimension sweep,
    O(n log n) for up to 3 objectives."""
    p = to_minimise(points, directions)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    if p.shape[1] == 1:
        return p[:, 0] == p[:, 0].min()
    import moocore
    return np.asarray(moocore.is_nondominated(p, keep_weakly=True), dtype=bool)


def front_firsts(values: Sequence[Sequence[float]], directions: Sequence[str],
                 keys_of: Callable[[list[int]], Sequence[Any]]) -> list[int]:
    """The study's front as ador counts it everywhere (status, best, tables, plots, reports), as
    indices into ``values`` (feasible completed trials in trial-number order): those no other
    dominates, then the first of each distinct design. ``keys_of`` is asked once, for the design
    keys of the non-dominated indices only (the reading commands read parameters for the front
    alone). A design's trials share their values when ador scored them (a repeat is answered from
    the first), so the order, dominance first, only matters for trials of other clients."""
    if not len(values):
        return []
    on = [i for i, m in enumerate(pareto_mask(values, directions)) if m]
    seen: set = set()
    out = []
    for i, key in zip(on, keys_of(on)):
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


def front_trials(trials: Sequence[FrozenTrial], directions: Sequence[str],
                 feasible: Callable[[FrozenTrial], bool] | None = None,
                 space: SearchSpace | None = None) -> list[FrozenTrial]:
    """``front_firsts`` of whole trials, in trial-number order; a design is its parameters, less
    the knobs ``space`` finds inert (ador/explore/design_id.py); without ``space``, the digest ador
    stored with the trial, which is that (the parameters where none is stored)."""
    if feasible is None:
        from ador.explore.record import is_feasible
        feasible = is_feasible
    done = [t for t in sorted(trials, key=lambda t: t.number) if feasible(t) and t.values is not None]

    from ador.explore.design_id import front_key

    def keys_of(indices: list[int]) -> list[Any]:
        return [front_key(done[i], space) for i in indices]
    return [done[i] for i in front_firsts([t.values for t in done], directions, keys_of)]


# --- the knee and the corners ----------------------------------------------------------------

def normalised(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Each objective scaled over ``points`` to [0, 1] with 0 the best value (the ideal point)
    and 1 the worst (the nadir); an objective all points share becomes 0."""
    p = to_minimise(points, directions)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (p - lo) / span


def knee_index(points: Sequence[Sequence[float]], directions: Sequence[str]) -> int:
    """The knee of a front: the point closest (Euclidean) to the ideal point after each objective
    is normalised over the front to [0, 1] (0 = best value on the front, 1 = worst). Ties go to
    the earlier point. Give it a front: a point of a front is never dominated."""
    q = normalised(points, directions)
    return int(np.argmin(np.sqrt((q ** 2).sum(axis=1))))


def corner_index(points: Sequence[Sequence[float]], directions: Sequence[str], objective: int) -> int:
    """The point best on ``objective``, ties broken by the other objectives in order (so the pick
    is never dominated by a point that equals it there)."""
    p = to_minimise(points, directions)
    order = [objective] + [i for i in range(p.shape[1]) if i != objective]
    return int(np.lexsort(tuple(p[:, i] for i in reversed(order)))[0])


# --- hypervolume -----------------------------------------------------------------------------

HV_DEFINITION = ("hypervolume: each objective as a multiple of the reference GPU's value, oriented so that "
                 "higher is better (the \"x vs GPU\" ratios), over the feasible designs; reference point 0 "
                 "on every ratio, so a design equal to the GPU alone scores 1")


def hv_reference(baselines: Mapping[str, Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, tuple[str, float]]:
    """Objective -> (GPU, its value): the study's first baseline with a finite, non-zero value of
    that objective (fixed when the study is created, so every hypervolume of a study agrees).
    An objective no baseline has is counted in its own units (reference value 1)."""
    out = {}
    for m in metrics:
        for gpu, base in baselines.items():
            v = (base.get("metrics") or {}).get(m)
            if isinstance(v, (int, float)) and math.isfinite(v) and v != 0:
                out[m] = (gpu, float(v))
                break
        else:
            out[m] = ("", 1.0)
    return out


def hv_reference_label(reference: Mapping[str, tuple[str, float]]) -> str:
    """Which GPU the ratios are to (one name when one GPU serves every objective)."""
    gpus = {g or "own units" for g, _ in reference.values()}
    if len(gpus) == 1:
        return f"x {gpus.pop()}"
    return ", ".join(f"{m}: x {g or 'own units'}" for m, (g, _) in reference.items())


def ratios(points: Sequence[Sequence[float]], directions: Sequence[str],
           reference: Sequence[float]) -> np.ndarray:
    """Objective vectors as multiples of ``reference`` with higher better: value / ref for a
    maximised objective, ref / value for a minimised one (0 for a minimised value of 0 or less)."""
    p = np.asarray(points, dtype=float).reshape(-1, len(directions))
    ref = np.asarray(reference, dtype=float)
    out = np.empty_like(p)
    for i, d in enumerate(directions):
        if d == "maximize":
            out[:, i] = p[:, i] / ref[i]
        else:
            with np.errstate(divide="ignore"):
                out[:, i] = np.where(p[:, i] > 0, ref[i] / np.where(p[:, i] > 0, p[:, i], 1.0), 0.0)
    return out


def ratio_hypervolume(points: Sequence[Sequence[float]], directions: Sequence[str],
                      reference: Sequence[float]) -> float:
    """The hypervolume of ``points`` (feasible objective vectors) by ``HV_DEFINITION``."""
    if len(points) == 0:
        return 0.0
    import moocore
    r = ratios(points, directions, reference)
    r = r[np.all(np.isfinite(r), axis=1) & np.all(r > 0, axis=1)]
    if len(r) == 0:
        return 0.0
    return float(moocore.hypervolume(-r, ref=np.zeros(r.shape[1])))


# --- normalised hypervolume (sampler comparisons on a common box) ----------------------------

def normaliser(points: Sequence[Sequence[float]], directions: Sequence[str]):
    """Scale to [0, 1] per objective over ``points`` (in the minimising sense), for comparable HVs."""
    p = to_minimise(points, directions)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lambda q: (to_minimise(q, directions) - lo) / span


def hypervolume(points: Sequence[Sequence[float]], directions: Sequence[str], *, scale=None,
                ref: float = 1.1) -> float:
    """Exact hypervolume of ``points`` (already-feasible ones) after ``scale`` (default: their own
    [0, 1] box), against the reference point ``ref`` in every normalised objective. Used to
    compare samplers against an exact front on one box (benchmarks); studies report
    ``ratio_hypervolume``."""
    if len(points) == 0:
        return 0.0
    import moocore
    q = (scale or normaliser(points, directions))(points)
    q = q[np.all(q < ref, axis=1)]
    if len(q) == 0:
        return 0.0
    return float(moocore.hypervolume(q, ref=np.full(q.shape[1], ref)))
