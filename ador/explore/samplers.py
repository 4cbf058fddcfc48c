"""Sampler registry: a study names a sampler and its options; this builds the Optuna sampler."""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import optuna

from ador.errors import ConfigError, UnknownNameError
from ador.explore.flat_ga import FlatNSGAIIISampler, FlatNSGAIISampler
from ador.explore.params import param_name
from ador.explore.space import MAX_GRID, SearchSpace

PYMOO = "pymoo-nsga2"


def _grid(space: SearchSpace, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    grid = {}
    for name, knob in space.knobs.items():
        values = knob.grid(f"search_space.knobs.{name}")
        grid[param_name(name, knob)] = [int(math.log2(v)) for v in values] if knob.type == "pow2" else values
    return optuna.samplers.GridSampler(grid, seed=seed, **options)


def _gp(space: SearchSpace, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401  (Optuna's GP sampler needs PyTorch)
    except ImportError:
        raise ConfigError("sampler.name", "gp", "the GP sampler needs PyTorch: pip install 'ador[gp]'") from None
    return optuna.samplers.GPSampler(seed=seed, **options)


# Each trial carries its constraint values (system attribute "constraints", <= 0 feasible), which
# Optuna >= 5 samplers and Study.best_trials read from the trials themselves.
_BUILDERS: dict[str, Callable[[SearchSpace, dict[str, Any], int], optuna.samplers.BaseSampler]] = {
    "nsga2": lambda s, o, seed: FlatNSGAIISampler(seed=seed, **o),
    "nsga3": lambda s, o, seed: FlatNSGAIIISampler(seed=seed, **o),
    "tpe": lambda s, o, seed: optuna.samplers.TPESampler(seed=seed, **o),
    "random": lambda s, o, seed: optuna.samplers.RandomSampler(seed=seed, **o),
    "grid": _grid,
    "gp": _gp,
}
_CLASSES = {"nsga2": optuna.samplers.NSGAIISampler, "nsga3": optuna.samplers.NSGAIIISampler,
            "tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "grid": optuna.samplers.GridSampler, "gp": optuna.samplers.GPSampler}
SAMPLERS = (*_BUILDERS, PYMOO)
# options a study may set: plain numbers, strings and booleans (no callables from YAML)
_PLAIN = (int, float, str, bool, type(None))


def check_sampler(spec, space: SearchSpace) -> None:
    if spec.name not in SAMPLERS:
        raise UnknownNameError("sampler.name", spec.name, f"unknown sampler (known: {', '.join(SAMPLERS)})")
    for key, value in spec.options.items():
        if not isinstance(value, _PLAIN):
            raise ConfigError(f"sampler.options.{key}", value, "options must be numbers, strings or booleans")
    if spec.name == PYMOO:
        unknown = set(spec.options) - {"population_size", "eliminate_duplicates"}
        if unknown:
            raise ConfigError(f"sampler.options.{sorted(unknown)[0]}", spec.options[sorted(unknown)[0]],
                              "pymoo-nsga2 takes population_size and eliminate_duplicates")
        return
    accepted = set(inspect.signature(_CLASSES[spec.name]).parameters) - {"self", "seed", "constraints_func",
                                                                       "search_space"}
    if spec.name in ("nsga2", "nsga3"):
        accepted.add("eliminate_duplicates")     # ador's (ador/explore/flat_ga.py)
    for key in spec.options:
        if key not in accepted:
            raise ConfigError(f"sampler.options.{key}", spec.options[key],
                              f"not an option of {spec.name} (options: {', '.join(sorted(accepted))})")
    if spec.name == "grid":
        # Optuna's grid sampler lists every combination: count them before anything is allocated
        total = 1
        for name, knob in space.knobs.items():
            total *= knob.size(f"search_space.knobs.{name}")
        if total > MAX_GRID:
            raise ConfigError("sampler.name", "grid", f"the search space has {total:.3g} designs; a grid can "
                                                      f"enumerate at most {MAX_GRID:,} (use another sampler or "
                                                      f"fewer values)")


def build_sampler(name: str, options: dict[str, Any], space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    import warnings
    try:
        with warnings.catch_warnings():      # NSGA-III and GP are marked experimental by Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _BUILDERS[name](space, dict(options), seed)
    except (TypeError, ValueError) as err:
        raise ConfigError("sampler.options", options, f"{name}: {err}") from None


__all__ = ["SAMPLERS", "PYMOO", "build_sampler", "check_sampler"]
