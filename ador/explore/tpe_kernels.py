"""Scoring TPE's candidates against an estimator's distinct kernels (ador/explore/flat_tpe.py)."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
from optuna.samplers._tpe.probability_distributions import _BatchedCategoricalDistributions as _Categorical
from optuna.samplers._tpe.probability_distributions import _unique_inverse_2d

_TIE = 1e-9      # log-density units: merged sums differ from Optuna's by ~1e-15 relative


def merged(estimator: Any) -> Any:
    """``estimator`` with its identical kernels merged into one (weights summed), for ``log_pdf``.

    Each kernel is a product over parameters of a (mu, sigma) truncated normal or a categorical
    row; a design space of discrete knobs repeats them (a value seen by many trials carries the
    same kernel, up to the few sigmas its neighbours give it), and a mixture's density is the same
    whether equal kernels are summed one by one or once with their summed weight. Evaluating the 24
    candidates against the distinct kernels instead of one per trial keeps the scoring from growing
    with the study (building the estimators still does). Sampling keeps the unmerged mixture
    (Optuna's random stream and draws).
    """
    mixture = estimator._mixture_distribution
    n = len(mixture.weights)
    group: np.ndarray | None = None
    for d in mixture.distributions:          # refine the grouping one parameter at a time
        if isinstance(d, _Categorical):
            column = np.argmax(d.weights, axis=1)
            key = d.weights[np.arange(n), column]       # the row's peak and where it is (checked below)
            _, _, ids = _unique_inverse_2d(column.astype(float), key)
            if not np.array_equal(d.weights, d.weights[representatives(ids)][ids]):
                return estimator                 # rows not told apart by their peak: keep them all
        else:
            _, _, ids = _unique_inverse_2d(d.mu, d.sigma)
        group = ids if group is None else _unique_inverse_2d(group.astype(float), ids.astype(float))[2]
    ids = np.asarray(group)
    kept = representatives(ids)
    if len(kept) == n:
        return estimator
    weights = np.bincount(ids, weights=mixture.weights, minlength=len(kept))
    distributions = [_Categorical(d.weights[kept]) if isinstance(d, _Categorical)
                     else d._replace(mu=d.mu[kept], sigma=d.sigma[kept]) for d in mixture.distributions]
    out = copy.copy(estimator)
    out._mixture_distribution = type(mixture)(weights=weights, distributions=distributions)
    return out


def representatives(ids: np.ndarray) -> np.ndarray:
    """One index per group of ``ids`` (groups numbered 0..k-1): any member stands for its group."""
    kept = np.empty(int(ids.max()) + 1, dtype=int)
    kept[ids] = np.arange(len(ids))
    return kept


def near_tie(samples: dict[str, np.ndarray], acquisition: np.ndarray) -> bool:
    """Whether a candidate other than the best, with other values, scores within rounding of it.

    Merging kernels sums the same terms in another order (the last bits differ); Optuna takes the
    first of tied candidates, so where another design ties the best within ``_TIE`` the exact
    (unmerged) densities decide, as Optuna's would. Equal designs tie harmlessly.
    """
    best = int(np.argmax(acquisition))
    near = np.flatnonzero(acquisition >= acquisition[best] - _TIE)
    return any(np.any(values[near] != values[best]) for values in samples.values())
