"""A design's identity among a study's trials: its parameters, and a short digest of them that
ador stores with each trial (``ador_design``) so a run can index a study's designs cheaply."""
from __future__ import annotations

import hashlib
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

DESIGN_KEY = "ador_design"                # ador's trial system attribute: a digest of the parameters


def design_key(trial: FrozenTrial) -> tuple:
    """A trial's design identity: its parameters as (name, internal value), sorted (the form
    ``param_keys`` reads from the database)."""
    return params_key(trial.params, trial.distributions)


def params_key(params: dict[str, Any], dists: dict[str, BaseDistribution]) -> tuple:
    return tuple(sorted((name, float(dists[name].to_internal_repr(value))) for name, value in params.items()))


def design_hash(trial: FrozenTrial) -> str:
    """A short stable digest of ``design_key`` (stored with each trial as ``ador_design``)."""
    return key_hash(design_key(trial))


def key_hash(key: tuple) -> str:
    return hashlib.blake2b(repr(key).encode(), digest_size=10).hexdigest()
