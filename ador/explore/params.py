"""Between search-space knobs and Optuna parameters (distributions and values)."""
from __future__ import annotations

import math
from typing import Any, Mapping

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

from ador.config import canonical
from ador.explore.space import Knob, SearchSpace

POW2_SUFFIX = ":log2"   # a power-of-two knob is searched over its exponent


def param_name(knob_name: str, knob: Knob) -> str:
    return knob_name + POW2_SUFFIX if knob.type == "pow2" else knob_name


def distribution(knob: Knob) -> BaseDistribution:
    if knob.type == "categorical":
        # the choices as the study's stored settings give them back (25.0e+9 as 25000000000), so a
        # study begun from its file and one reopened from storage store one distribution, not two
        return CategoricalDistribution(canonical(list(knob.choices)))
    assert knob.low is not None and knob.high is not None     # checked on load
    if knob.type == "pow2":
        return IntDistribution(int(math.log2(knob.low)), int(math.log2(knob.high)))
    if knob.type == "int":
        return IntDistribution(int(knob.low), int(knob.high), step=int(knob.step or 1))
    if knob.type == "log_int":
        return IntDistribution(int(knob.low), int(knob.high), log=True)
    if knob.type == "log_float":
        return FloatDistribution(knob.low, knob.high, log=True)
    return FloatDistribution(knob.low, knob.high, step=knob.step)


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    return {param_name(n, k): distribution(k) for n, k in space.knobs.items()}


def knob_values(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """Knob values (powers of two expanded) from Optuna parameters."""
    out = {}
    for name, knob in space.knobs.items():
        value = params[param_name(name, knob)]
        out[name] = 2 ** int(value) if knob.type == "pow2" else value
    return out


def params_of(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, knob in space.knobs.items():
        v = values[name]
        out[param_name(name, knob)] = int(round(math.log2(v))) if knob.type == "pow2" else v
    return out


def inert_params(space: SearchSpace, params: Mapping[str, Any]) -> frozenset[str]:
    """The Optuna parameters of the knobs ``SearchSpace.inert_knobs`` finds for ``params`` (none
    where ``params`` are not a whole design of ``space``, or make no valid one)."""
    from ador.errors import AdorError
    try:
        inert = space.inert_knobs(knob_values(space, params))
    except (KeyError, AdorError):
        return frozenset()
    return frozenset(param_name(k, space.knobs[k]) for k in inert)
