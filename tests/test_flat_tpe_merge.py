"""ador's TPE scores candidates against merged kernels (ador/explore/tpe_kernels.py ``merged``): the
same densities as Optuna's one-kernel-per-trial mixture, and the same designs proposed."""
import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.probability_distributions import _BatchedCategoricalDistributions
from optuna.samplers._tpe.sampler import default_weights

from ador.explore.flat_tpe import FlatTPESampler
from ador.explore.tpe_kernels import merged as _merged

# a design space of discrete knobs, as ador's are: every value is seen by many trials
DISCRETE = {"rows": IntDistribution(16, 256, step=16), "sram": IntDistribution(1, 64, log=True),
            "hbm": CategoricalDistribution(["hbm2e", "hbm3", "hbm3e"]),
            "clock": FloatDistribution(0.8, 2.0, step=0.1)}


def _estimator(n: int, seed: int, *, multivariate: bool, names: tuple[str, ...] = ("rows",)):
    rng = np.random.RandomState(seed)
    observed = {"rows": rng.choice(np.arange(16, 257, 16), n).astype(float),
                "sram": rng.choice([1, 2, 4, 8, 16, 32, 64], n).astype(float),
                "hbm": rng.choice(3, n).astype(float),
                "clock": np.round(rng.choice(np.arange(0.8, 2.01, 0.1), n), 1)}
    space = DISCRETE if multivariate else {name: DISCRETE[name] for name in names}
    observed = {name: observed[name] for name in space}
    parameters = _ParzenEstimatorParameters(prior_weight=1.0, consider_magic_clip=True,
                                            consider_endpoints=False, weights=default_weights,
                                            multivariate=multivariate)
    return _ParzenEstimator(observed, space, parameters)


@pytest.mark.parametrize("n, seed, multivariate, at_most", [
    (60, 0, False, 30), (800, 1, False, 40),          # one knob: its values x the few sigmas each takes
    (60, 2, True, 61), (800, 3, True, 760), (3000, 4, True, 2200)])     # four: combinations repeat less
def test_merged_mixture_has_the_same_density_with_fewer_kernels(n, seed, multivariate, at_most):
    estimator = _estimator(n, seed, multivariate=multivariate)
    merged = _merged(estimator)
    assert len(merged._mixture_distribution.weights) <= at_most
    assert np.isclose(merged._mixture_distribution.weights.sum(), 1.0)
    candidates = estimator.sample(np.random.RandomState(seed + 10), 64)
    np.testing.assert_allclose(merged.log_pdf(candidates), estimator.log_pdf(candidates), rtol=1e-12, atol=1e-12)


def test_one_kernel_per_trial_when_nothing_repeats():
    """Continuous values never repeat: the estimator is returned as it is."""
    observed = {"x": np.random.RandomState(0).uniform(0, 1, 200)}
    space = {"x": FloatDistribution(0.0, 1.0)}
    parameters = _ParzenEstimatorParameters(1.0, True, False, default_weights, False)
    estimator = _ParzenEstimator(observed, space, parameters)
    assert _merged(estimator) is estimator


def test_categorical_rows_with_the_same_peak_but_other_values_are_kept_apart():
    """Rows are grouped by their peak and where it is, then checked whole: rows that share a
    peak but differ elsewhere are not merged."""
    estimator = _estimator(50, 5, multivariate=False, names=("hbm",))
    mixture = estimator._mixture_distribution
    position = [isinstance(d, _BatchedCategoricalDistributions) for d in mixture.distributions].index(True)
    rows = mixture.distributions[position].weights.copy()
    peak = rows.argmax(axis=1)
    twin = int(np.flatnonzero(peak == peak[0])[1])
    rows[twin] = rows[0]
    rows[twin, (peak[0] + 1) % 3], rows[twin, (peak[0] + 2) % 3] = rows[0, (peak[0] + 2) % 3] + 1e-3, \
        rows[0, (peak[0] + 1) % 3] - 1e-3
    distributions = list(mixture.distributions)
    distributions[position] = _BatchedCategoricalDistributions(rows)
    estimator._mixture_distribution = type(mixture)(weights=mixture.weights, distributions=distributions)
    candidates = estimator.sample(np.random.RandomState(7), 64)
    np.testing.assert_allclose(_merged(estimator).log_pdf(candidates), estimator.log_pdf(candidates), rtol=1e-12)


def _discrete_study(sampler, n: int, batch: int, directions):
    study = optuna.create_study(directions=list(directions), sampler=sampler)
    while len(study.trials) < n:
        for t in [study.ask(DISCRETE) for _ in range(batch)]:
            p = t.params
            speed = p["rows"] * p["clock"] * (1 + (p["hbm"] != "hbm2e")) + np.log2(p["sram"])
            area = p["rows"] ** 1.5 / 40 + p["sram"] * 3 + 20 * (p["hbm"] == "hbm3e")
            study.tell(t, [round(speed, 1), round(area, 1)][:len(directions)])
    return study


@pytest.mark.parametrize("directions, batch", [(("maximize", "minimize"), 8), (("maximize",), 4)])
def test_same_designs_as_optunas_sampler_on_a_discrete_space(directions, batch):
    """Merging is engaged on every ask here (hundreds of repeated values, multivariate for one
    objective); the designs are still Optuna's, tie-breaks included."""
    ours = _discrete_study(FlatTPESampler(seed=3), 400, batch, directions)
    theirs = _discrete_study(optuna.samplers.TPESampler(seed=3), 400, batch, directions)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
