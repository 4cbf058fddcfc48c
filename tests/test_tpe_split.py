"""The capped below set of ador's TPE (ador/explore/tpe_split.py): selecting from the pool is
selecting from the whole study, after every trial, for trials told in order or out of it, and
designs told again and again."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.explore.tpe_split import BelowPool, best


def _replay(lvals: np.ndarray, feasible_mask: np.ndarray, size: int, margin: int = 3,
            numbers: np.ndarray | None = None) -> BelowPool:
    """Tell the trials one at a time (position i is the i-th told; ``numbers``: its trial number,
    where they are told out of order); after each, the pool's choice equals ranking the whole study."""
    pool = BelowPool(size, margin)
    for n in range(1, len(lvals) + 1):
        feasible = np.flatnonzero(feasible_mask[:n])
        got = pool.best(lvals, feasible, numbers)
        in_order = feasible if numbers is None else feasible[np.argsort(numbers[feasible], kind="stable")]
        want = best(lvals[in_order], size, in_order)
        assert sorted(got.tolist()) == sorted(want.tolist()), f"after trial {n}"
    return pool


def _improving(rng: np.random.Generator, n: int, objectives: int) -> np.ndarray:
    """A search that improves: later trials tend to dominate earlier ones (ranks keep rising)."""
    drift = np.linspace(1.0, 0.0, n)[:, None]
    return np.round(rng.random((n, objectives)) + 2 * drift, 2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objectives", [2, 3])
@pytest.mark.parametrize("shape", ["random", "improving", "coarse"])
def test_pool_selects_what_the_whole_study_would(seed, objectives, shape):
    rng = np.random.default_rng(seed)
    n = 250
    if shape == "random":
        lvals = rng.random((n, objectives))
    elif shape == "improving":
        lvals = _improving(rng, n, objectives)
    else:                                          # few distinct values: ties and repeated points
        lvals = rng.integers(0, 6, (n, objectives)).astype(float)
    feasible = rng.random(n) < 0.7
    pool = _replay(lvals, feasible, size=4 if shape == "coarse" else 12)
    assert len(pool.members) < int(feasible.sum()) / 2      # it did keep a pool, not the study


def test_an_improving_search_forces_rebuilds_and_stays_exact():
    """New trials dominating old ones raise every rank; the pool notices when a front it reads
    may lie outside it and ranks the study again (the path a mutant without the check fails)."""
    rng = np.random.default_rng(11)
    pool = _replay(_improving(rng, 600, 2), np.ones(600, dtype=bool), size=10, margin=2)
    assert pool.rebuilds > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans()), min_size=1, max_size=90),
       st.integers(1, 8), st.integers(1, 3))
def test_pool_matches_on_any_small_study(points, size, margin):
    lvals = np.array([[a, b] for a, b, _ in points], dtype=float)
    feasible = np.array([f for _, _, f in points])
    _replay(lvals, feasible, size, margin)


@pytest.mark.parametrize("seed", range(3))
def test_trials_told_out_of_order(seed):
    """Trials finishing after later ones (the constant liar's batches, threads): the boundary front
    is cut in trial-number order, as when the whole study is ranked."""
    rng = np.random.default_rng(seed)
    n = 200
    numbers = np.argsort(np.arange(n) + rng.integers(0, 12, n), kind="stable").argsort()   # mostly ascending
    assert (np.diff(numbers) < 0).any()
    lvals = np.round(rng.random((n, 2)), 1)                 # ties on the boundary front
    _replay(lvals, rng.random(n) < 0.8, size=6, numbers=numbers)


def test_a_design_told_again_and_again_does_not_grow_the_pool():
    """ador answers a repeated design from its stored trial and tells it as a new trial with the
    same values: copies of front designs past the first size + 1 leave the pool."""
    rng = np.random.default_rng(5)
    distinct = rng.random((60, 2))
    lvals = distinct[np.concatenate([np.arange(60), rng.integers(0, 60, 540)])]
    pool = _replay(lvals, np.ones(len(lvals), dtype=bool), size=5)
    _, copies = np.unique(lvals[pool.members], axis=0, return_counts=True)
    assert copies.max() == 5 + 1                  # (without the trim: 219 rows for 20 points here)
