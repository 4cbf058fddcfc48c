"""A design's identity among a study's trials: its parameters, less those of knobs the others make
irrelevant (``SearchSpace.inert_knobs``: the widths of MAC trees a design has none of), and a
short digest of that which ador stores with each trial (``ador_design``) so a run can index a
study's designs cheaply. Two trials of one design are answered once and counted once on a front."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Mapping

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    from ador.explore.space import SearchSpace

DESIGN_KEY = "ador_design"                # ador's trial system attribute: a digest of the parameters


def design_key(trial: FrozenTrial, space: SearchSpace | None = None) -> tuple:
    """A trial's design identity: its parameters as (name, internal value), sorted (the form
    ``param_keys`` reads from the database), less the inert knobs' where ``space`` is given."""
    return params_key(trial.params, trial.distributions, space)


def front_key(trial: FrozenTrial, space: SearchSpace | None = None) -> Any:
    """The key a front counts ``trial``'s design by: ``design_key`` with ``space``; without it the
    digest ador stored with the trial, which is that (its parameters where none is stored)."""
    return design_key(trial, space) if space is not None else trial.system_attrs.get(DESIGN_KEY) or design_key(trial)


def params_key(params: Mapping[str, Any], dists: Mapping[str, BaseDistribution],
               space: SearchSpace | None = None) -> tuple:
    key = tuple(sorted((name, float(dists[name].to_internal_repr(value))) for name, value in params.items()))
    return without_inert(key, params, space)


def internal_key(key: tuple, dists: Mapping[str, BaseDistribution], space: SearchSpace | None) -> tuple:
    """``key`` (sorted (name, internal value) pairs, as read from the database) less the inert
    knobs' parameters."""
    if space is None:
        return key
    try:
        params = {name: dists[name].to_external_repr(value) for name, value in key}
    except (KeyError, IndexError, ValueError):      # not this space's parameters: as they are
        return key
    return without_inert(key, params, space)


def without_inert(key: tuple, params: Mapping[str, Any], space: SearchSpace | None) -> tuple:
    if space is None:
        return key
    from ador.explore.params import inert_params
    inert = inert_params(space, params)
    return tuple(pair for pair in key if pair[0] not in inert) if inert else key


def design_hash(trial: FrozenTrial, space: SearchSpace | None = None) -> str:
    """A short stable digest of ``design_key`` (stored with each trial as ``ador_design``)."""
    return key_hash(design_key(trial, space))


def key_hash(key: tuple) -> str:
    return hashlib.blake2b(repr(key).encode(), digest_size=10).hexdigest()
