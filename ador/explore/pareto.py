"""Pareto fronts and exact hypervolume (moocore), on objective vectors with stated directions."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def to_minimise(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return np.asarray(points, dtype=float).reshape(-1, len(directions)) * sign


def pareto_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """True for points no other point dominates (duplicates all stay)."""
    p = to_minimise(points, directions)
    n = len(p)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated = np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)
        if dominated.any():
            mask[i] = False
    return mask


def normaliser(points: Sequence[Sequence[float]], directions: Sequence[str]):
    """Scale to [0, 1] per objective over ``points`` (in the minimising sense), for comparable HVs."""
    p = to_minimise(points, directions)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lambda q: (to_minimise(q, directions) - lo) / span


def hypervolume(points: Sequence[Sequence[float]], directions: Sequence[str], *, scale=None,
                ref: float = 1.1) -> float:
    """Exact hypervolume of ``points`` (already-feasible ones) after ``scale`` (default: their own
    [0, 1] box), against the reference point ``ref`` in every normalised objective."""
    if len(points) == 0:
        return 0.0
    import moocore
    q = (scale or normaliser(points, directions))(points)
    q = q[np.all(q < ref, axis=1)]
    if len(q) == 0:
        return 0.0
    return float(moocore.hypervolume(q, ref=np.full(q.shape[1], ref)))
