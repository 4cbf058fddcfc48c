"""MOTPE's "below" trials (the best by non-dominated rank) without ranking the whole study on each ask.

Optuna's multi-objective TPE ranks every feasible trial by non-dominated sorting on every ``ask``
(``_fast_non_domination_rank``): 17-25 ms at 20,000 trials of two or three objectives, which is
most of a trial's cost there. When the below set has a fixed size (ador's ``below_limit``), the
ranking can be kept to a small pool, with the same result:

- a trial's rank is the length of the longest chain of trials dominating it; its dominators have
  lower ranks. So a pool that holds every trial of rank < ``floor`` ranks each of them exactly as
  the whole study does, and ranks every other pool member at ``floor`` or above;
- a new trial can only add to chains: ranks never fall, so a trial left out of the pool at rank
  >= r stays at rank >= r, and ``floor`` (the least such r) stays a valid bound;
- so while the fronts the selection reads (up to the one that completes the below set) are all
  below ``floor``, selecting from the pool is selecting from the study. When they are not, the
  whole study is ranked once again (``rebuilds`` counts it) and the pool starts afresh.

After each selection the pool keeps the fronts that hold ``margin`` times the below set's size in
distinct points and drops the rest (what Optuna's ranking lumps together past its ``n_below``),
lowering ``floor`` to their rank; it also keeps no more than ``size + 1`` copies of one point (a
design repeated and told again: the selection takes the earliest copies, and the later ones change
neither its counts nor its cut). The pool's rows are kept in trial order, so trials told out of
order are handled too. tests/test_tpe_split.py checks the selection against ranking the whole
study after every trial, for many random studies.
"""
from __future__ import annotations

import numpy as np
from optuna.samplers._tpe import sampler as optuna_tpe
from optuna.study._multi_objective import _fast_non_domination_rank

MARGIN = 3          # the pool keeps the fronts holding this many times the below set's size


def best(lvals: np.ndarray, n_below: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``lvals`` (feasible trials in trial order, to be minimised) Optuna's split puts
    below: the ``n_below`` best by non-dominated rank, the boundary front cut by hypervolume subset
    selection (ties in trial order). ``rows`` name the rows for the selection's cache (default:
    their index)."""
    n = len(lvals)
    n_below = min(n_below, n)
    if rows is None:
        rows = np.arange(n)
    if n_below == 0:
        return np.empty(0, dtype=int)
    if lvals.shape[1] == 1:          # single objective: the n_below smallest, ties in trial order
        return rows[np.argsort(lvals[:, 0], kind="stable")[:n_below]]
    if n_below == n:
        return rows
    return _select(lvals, _fast_non_domination_rank(lvals, n_below=n_below), n_below, rows)[0]


def _select(lvals: np.ndarray, ranks: np.ndarray, n_below: int, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """The below rows from ``ranks`` (exact up to the front completing ``n_below``), and the rank
    of the last front read. Rows in trial order: the boundary front's cut takes them in that order."""
    values, counts = np.unique(ranks, return_counts=True)
    last = int(np.max(values[np.cumsum(counts) <= n_below], initial=-1))
    below = rows[ranks <= last]
    if below.size >= n_below:
        return below, last
    tied = ranks == last + 1         # the boundary front is cut by hypervolume subset selection
    front = lvals[tied]
    chosen = optuna_tpe._solve_hssp_with_cache(tuple(front.ravel()), tuple(rows[tied].tolist()),
                                              n_below - below.size,
                                              tuple(optuna_tpe._get_reference_point(front)))
    return np.append(below, chosen).astype(int), last + 1


class BelowPool:
    """The feasible trials that can be among the best ``size`` of a study that only grows (see
    the module's docstring). Rows are positions in the caller's arrays."""

    def __init__(self, size: int, margin: int = MARGIN) -> None:
        self.size = size
        self.keep = margin * size
        self.members = np.empty(0, dtype=int)
        self.floor = np.inf               # every feasible trial outside the pool ranks at least this
        self.seen = 0                     # feasible trials looked at (a prefix of the caller's list)
        self.rebuilds = 0

    def best(self, lvals: np.ndarray, feasible: np.ndarray, numbers: np.ndarray | None = None) -> np.ndarray:
        """The feasible trials ``best`` puts below, given ``feasible``, the feasible positions in
        ``lvals`` in ascending order, of which the previous call's are a prefix, and ``numbers``, the
        trial number of every position where positions are not in trial order."""
        if len(feasible) <= self.size:
            return feasible
        self.members = np.concatenate([self.members, feasible[self.seen:]])
        self.seen = len(feasible)
        chosen = self._from_pool(lvals, numbers)
        if chosen is None:               # a front the selection reads may lie outside: rank everything
            self.rebuilds += 1
            self.members, self.floor = feasible.copy(), np.inf
            chosen = self._from_pool(lvals, numbers)
            assert chosen is not None
        return chosen

    def _from_pool(self, lvals: np.ndarray, numbers: np.ndarray | None) -> np.ndarray | None:
        members = self.members
        if numbers is not None:
            members = self.members = members[np.argsort(numbers[members], kind="stable")]
        pool = lvals[members]
        ranks = _fast_non_domination_rank(pool, n_below=min(self.keep, len(members)))
        chosen, boundary = _select(pool, ranks, self.size, members)
        if boundary >= self.floor:
            return None
        # trim what the ranking lumped together past ``keep`` (its members rank at least there),
        # and the copies of a point past its first size + 1 (a repeated design, told again: the
        # selection never takes a later copy, nor does one change where it cuts)
        top = int(ranks.max())
        keep = np.ones(len(members), dtype=bool)
        if len(np.unique(pool[ranks < top], axis=0)) >= self.keep:
            keep = ranks < top
            self.floor = min(self.floor, top)
        _, inverse, counts = np.unique(pool, axis=0, return_inverse=True, return_counts=True)
        if counts.max() > self.size + 1:                              # a design repeated size + 2 times
            seen = np.zeros(len(counts), dtype=int)
            for i, point in enumerate(inverse.reshape(-1)):
                seen[point] += 1
                keep[i] &= seen[point] <= self.size + 1
        if not keep.all():
            self.members = members[keep]
        return chosen
