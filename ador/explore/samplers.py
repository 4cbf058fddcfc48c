"""Sampler registry: a study names a sampler and its options; this builds the Optuna sampler."""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import optuna

from ador.errors import ConfigError, UnknownNameError
from ador.explore.flat_ga import FlatNSGAIIISampler, FlatNSGAIISampler
from ador.explore.flat_tpe import FlatTPESampler, caps_error
from ador.explore.params import param_name
from ador.explore.space import MAX_GRID, SearchSpace

PYMOO = "pymoo-nsga2"


class GridToTheEnd(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its stop: when a trial completes the grid, GridSampler calls
    ``study.stop()``, which raises outside ``Study.optimize`` (ador asks and tells its trials), so
    the grid's last batch was scored and never stored. A run ends at its trial budget instead; a
    design asked again after the grid is answered from its stored trial."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def _grid(space: SearchSpace, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    grid = {}
    for name, knob in space.knobs.items():
        values = knob.grid(f"search_space.knobs.{name}")
        grid[param_name(name, knob)] = [int(math.log2(v)) for v in values] if knob.type == "pow2" else values
    return GridToTheEnd(grid, seed=seed, **options)


def _gp(space: SearchSpace, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401  (Optuna's GP sampler needs PyTorch)
    except ImportError:
        raise ConfigError("sampler.name", "gp", "the GP sampler needs PyTorch: pip install 'ador[gp]'") from None
    return optuna.samplers.GPSampler(seed=seed, **options)


# Crossovers of Optuna's NSGA-II/III for numerical parameters, by the name a study gives
# (``sampler.options.crossover``); categorical parameters always take uniform crossover.
CROSSOVERS = {"uniform": optuna.samplers.nsgaii.UniformCrossover, "sbx": optuna.samplers.nsgaii.SBXCrossover,
              "vsbx": optuna.samplers.nsgaii.VSBXCrossover, "blxalpha": optuna.samplers.nsgaii.BLXAlphaCrossover,
              "undx": optuna.samplers.nsgaii.UNDXCrossover, "spx": optuna.samplers.nsgaii.SPXCrossover}
# ador's NSGA-II default: VSBX, a simulated-binary crossover (the NSGA-II paper's operator family,
# Deb et al. 2002), where Optuna defaults to uniform crossover, which never makes a value between
# its parents' and so refines near the front only by mutation. On the quality space
# (docs/performance.md; `python -m benchmarks.crossover_choice`) it was the best of five crossovers
# on seeds 1-3 (98.1% of the exact front's hypervolume at 5,000 trials; uniform 96.8%) and held on
# seeds 4-9 it was not chosen on (98.8% vs 97.1%), but with each run in one piece (`--single`, another
# random stream) uniform led on seeds 4-9 (99.1% vs 98.1%): there its lead is within the stream's
# spread. On the headline study (3,000 trials, seeds 1-4) its front's hypervolume was larger on three
# seeds of four. NSGA-III keeps Optuna's default (not measured).
NSGA2_CROSSOVER = "vsbx"

# Deb's distribution index for polynomial mutation: the value of the NSGA-II paper's experiments
# (Deb et al. 2002, eta_m = 20), of Deb's reference C code, of pymoo's PM and of Optuna's
# PolynomialMutation default; mutated values stay mostly within a few steps of the parent's.
POLYNOMIAL_ETA = 20.0
# Mutations of Optuna's NSGA-II/III for numerical parameters (``sampler.options.mutation``): a
# mutated parameter is redrawn uniformly over its whole range ("uniform", Optuna's default), or
# moved near its value by Deb's polynomial mutation ("polynomial", distribution index 20);
# categorical parameters are always redrawn uniformly. Each parameter mutates with probability
# ``mutation_prob`` (default 1 / the number of parameters) either way.
MUTATIONS: dict[str, Callable[[], optuna.samplers.nsgaii.BaseMutation] | None] = {
    "uniform": None, "polynomial": lambda: optuna.samplers.nsgaii.PolynomialMutation(eta=POLYNOMIAL_ETA)}
# ador's NSGA-II default: polynomial mutation, the NSGA-II paper's operator (paired there with SBX,
# whose family VSBX is; pymoo's NSGA-II, ador's pymoo-nsga2, uses the same pair), where Optuna's
# uniform redraw throws a mutated knob anywhere in its range: near the front a random redraw of one
# knob is almost always a much worse design, so a part of the front reached by moving a few ordered
# knobs a step or two each is found only when crossover happens to make that move. On the quality
# space (docs/performance.md, "Polynomial mutation") it lifted 5,000-trial NSGA-II from 97.3% to
# 98.1% of the exact front's hypervolume over seeds 1-9 and from 98.0% to 98.6% over seeds 1-29
# (a child that repeats a known design is bred with uniform redraws after a few local tries,
# ador/explore/flat_ga.py LOCAL_TRIES). NSGA-III keeps Optuna's default (not measured).
NSGA2_MUTATION = "polynomial"


def operator_defaults(name: str) -> dict[str, str | bool | int | None]:
    """The variation operators (TPE: whether it models the knobs jointly, and which trials its
    estimators hold) a sampler uses when a study names none: stored with a new study
    (ador/explore/runner.py) so that a later change of ador's defaults does not change the operators of
    a study it resumes."""
    if name == "nsga2":
        return {"crossover": NSGA2_CROSSOVER, "mutation": NSGA2_MUTATION}
    if name == "tpe":
        return {"multivariate": TPE_MULTIVARIATE, "below_limit": TPE_BELOW_LIMIT, "above_window": TPE_ABOVE_WINDOW}
    return {}


# Operator options added after studies were stored without them, with the value that gives what
# such a study ran with: a stored study that lacks one resumes as it ran.
_ADDED_LATER: dict[str, dict[str, Any]] = {"tpe": {"below_limit": None, "above_window": None}}


def stored_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a stored study of sampler ``name`` resumes with (``options``: as stored)."""
    return {**_ADDED_LATER.get(name, {}), **options}


def _genetic(cls, default_crossover: str | None, default_mutation: str | None):
    def build(space: SearchSpace, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
        name = options.pop("crossover", default_crossover)
        if name is not None:
            options["crossover"] = CROSSOVERS[name]()
        mutation = MUTATIONS[options.pop("mutation", default_mutation) or "uniform"]
        if mutation is not None:
            options["mutation"] = mutation()
        return cls(seed=seed, **options)
    return build


# TPE models the knobs jointly (multivariate TPE) unless a study's options say otherwise. Optuna
# defaults to one estimator per knob for multi-objective studies; on the quality space (docs/
# performance.md, "TPE on the quality space") that reached 82.0% / 71.5% of the exact front's
# hypervolume by 1,000 trials (seeds 1, 2: most of its trials repeat a design), the joint model
# 95.7% / 91.0% / 95.8% (seeds 1-3), and it asks once per trial instead of once per knob.
TPE_MULTIVARIATE = True
# ...and builds its two estimators from at most the best ``TPE_BELOW_LIMIT`` trials (by non-dominated
# rank, as Optuna's split ranks them) and the newest ``TPE_ABOVE_WINDOW`` of the others: Optuna's
# split of a 500-trial study. Optuna's own split puts a tenth of every trial below and all the rest
# above, so its estimators, and an ask's cost, grow with the study (docs/performance.md, "TPE's estimators,
# bounded"); to 500 trials the two are the same. Optuna's single-objective TPE already
# caps the below set (at 25), and its weights give the oldest trials of the above set the least.
TPE_BELOW_LIMIT = 50
TPE_ABOVE_WINDOW = 450

# Each trial carries its constraint values (system attribute "constraints", <= 0 feasible), which
# Optuna >= 5 samplers and Study.best_trials read from the trials themselves.
_BUILDERS: dict[str, Callable[[SearchSpace, dict[str, Any], int], optuna.samplers.BaseSampler]] = {
    "nsga2": _genetic(FlatNSGAIISampler, NSGA2_CROSSOVER, NSGA2_MUTATION),
    "nsga3": _genetic(FlatNSGAIIISampler, None, None),
    "tpe": lambda s, o, seed: FlatTPESampler(seed=seed, **{**operator_defaults("tpe"), **o}),
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

# A generation is asked, scored and stored as one batch (ador/explore/batch.py): a population
# beyond this is more trials than any ador study runs (the largest shipped study runs 5,000) and
# pymoo allocates its arrays for it up front (10**9 asked for 37 GiB).
MAX_POPULATION = 100_000
MAX_COUNT = 10**9                 # a trial or candidate count no study reaches
# What each plain option of the samplers above may hold: (kind, least, most, null allowed).
# kinds: "int" (a whole number, not a boolean), "real" (a finite number), "bool", "name"
# (checked against its own list below). Every other option of an Optuna sampler takes a Python
# object (a callable, a sampler, reference points), which a study file cannot give.
_RULES: dict[str, tuple[str, float, float, bool]] = {
    "population_size": ("int", 2, MAX_POPULATION, False),     # Optuna's NSGA-II needs two parents
    "mutation_prob": ("real", 0.0, 1.0, True), "crossover_prob": ("real", 0.0, 1.0, False),
    "swapping_prob": ("real", 0.0, 1.0, False), "dividing_parameter": ("int", 1, 1000, False),
    "crossover": ("name", 0, 0, True), "mutation": ("name", 0, 0, True),
    "eliminate_duplicates": ("bool", 0, 0, False),
    "n_startup_trials": ("int", 0, MAX_COUNT, False), "n_ei_candidates": ("int", 1, MAX_COUNT, False),
    "prior_weight": ("real", 1e-12, 1e12, False),
    "consider_prior": ("bool", 0, 0, False), "consider_magic_clip": ("bool", 0, 0, False),
    "consider_endpoints": ("bool", 0, 0, False), "multivariate": ("bool", 0, 0, False),
    "group": ("bool", 0, 0, False), "warn_independent_sampling": ("bool", 0, 0, False),
    "constant_liar": ("bool", 0, 0, False), "deterministic_objective": ("bool", 0, 0, False),
    "below_limit": ("int", 1, MAX_COUNT, True), "above_window": ("int", 1, MAX_COUNT, True),
}


def _check_option(key: str, value: Any) -> None:
    field = f"sampler.options.{key}"
    if key not in _RULES:
        raise ConfigError(field, value, "this option takes a Python object, which a study file cannot give")
    kind, least, most, nullable = _RULES[key]
    if value is None:
        if not nullable:
            raise ConfigError(field, value, "must be given (null is not a value of this option)")
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(field, value, "must be true or false")
    elif kind == "name":
        if not isinstance(value, str):
            raise ConfigError(field, value, "must be a name")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise ConfigError(field, value, f"must be a whole number from {least:,.0f} to {most:,.0f}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not least <= value <= most:
        raise ConfigError(field, value, f"must be a number from {least:g} to {most:g}")


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
        for key, value in spec.options.items():
            _check_option(key, value)
        return
    accepted = set(inspect.signature(_CLASSES[spec.name]).parameters) - {"self", "seed", "constraints_func",
                                                                       "search_space"}
    if spec.name == "tpe":
        accepted |= {"below_limit", "above_window"}      # ador's (ador/explore/flat_tpe.py)
        options = {**operator_defaults("tpe"), **spec.options}
        wrong = caps_error(options["below_limit"], options["above_window"], options.get("group"))
        if wrong is not None:
            raise ConfigError(f"sampler.options.{wrong[0]}", wrong[1], wrong[2])
    if spec.name in ("nsga2", "nsga3"):
        accepted.add("eliminate_duplicates")     # ador's (ador/explore/flat_ga.py)
        crossover = spec.options.get("crossover")
        if crossover is not None and crossover not in CROSSOVERS:
            raise ConfigError("sampler.options.crossover", crossover,
                              f"unknown crossover (known: {', '.join(CROSSOVERS)})")
        mutation = spec.options.get("mutation")
        if mutation is not None and mutation not in MUTATIONS:
            raise ConfigError("sampler.options.mutation", mutation,
                              f"unknown mutation (known: {', '.join(MUTATIONS)})")
    for key in spec.options:
        if key not in accepted:
            raise ConfigError(f"sampler.options.{key}", spec.options[key],
                              f"not an option of {spec.name} (options: {', '.join(sorted(accepted))})")
        _check_option(key, spec.options[key])
    if spec.name == "grid":
        # Optuna's grid sampler lists every combination: count them before anything is allocated
        total = 1
        for name, knob in space.knobs.items():
            total *= knob.size(f"search_space.knobs.{name}")
        if total > MAX_GRID:
            raise ConfigError("sampler.name", "grid", f"the search space has {total:.3g} designs; a grid can "
                                                      f"enumerate at most {MAX_GRID:,} (use another sampler or "
                                                      f"fewer values)")
    # what only the sampler's own constructor checks (and a GP sampler's PyTorch), before anything is
    # stored; not a grid, whose constructor lists every design (counted above instead)
    if spec.name != "grid":
        build_sampler(spec.name, spec.options, space, 0)


def build_sampler(name: str, options: dict[str, Any], space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    import warnings
    try:
        with warnings.catch_warnings():      # NSGA-III and GP are marked experimental by Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _BUILDERS[name](space, dict(options), seed)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError("sampler.options", options, f"{name}: {err}") from None


__all__ = ["SAMPLERS", "PYMOO", "MAX_POPULATION", "CROSSOVERS", "MUTATIONS", "build_sampler", "check_sampler",
           "operator_defaults", "stored_options"]
