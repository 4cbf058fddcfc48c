"""Designs of a search space as arrays: knob values in columns (one entry per design) to the
namespace of arrays a population is scored on (``ador.perf.population``), without building one
``AdorChip`` per design.

Every rule of the space is applied by the code that applies it to one design: a derived field or
structural constraint is evaluated by ``evaluate_expr`` and each component is built (and so
validated) by its own dataclass, once per distinct combination of the values it reads; the
results are then gathered for every design. Designs a rule rejects are marked invalid (the
single-design path gives the reason).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ador.errors import AdorError, ConfigError, UnevenSplitError
from ador.explore.expr import evaluate_expr, names_in
from ador.explore.space import SYSTEM_KNOBS, SearchSpace, _typed
from ador.hardware.devices import split_counts
from ador.ops import Labels
from ador.perf.population import arrays_from_columns, subset


@dataclass(frozen=True)
class DesignArrays:
    """``arrays``: the valid designs (in order) as a population namespace; ``valid``: for each
    design given, whether the space's rules accept it."""
    arrays: SimpleNamespace
    valid: np.ndarray


def _per_unique(env: Mapping[str, np.ndarray], names: Sequence[str], n: int,
                fn: Callable[[dict[str, Any]], Any]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """``fn`` of each distinct combination of the columns ``names``: (results, index of each
    design's combination, whether each combination was accepted). ``fn`` raising an AdorError
    rejects its combination."""
    cols = [env[k] for k in names if k in env]
    keys = [k for k in names if k in env]
    if not cols:
        firsts, inverse = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    else:
        key = np.zeros(n, dtype=np.int64)
        for col in cols:
            uniq, codes = np.unique(col, return_inverse=True)
            key = key * len(uniq) + codes.reshape(-1)
        _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    results: list[Any] = []
    ok = np.ones(len(firsts), dtype=bool)
    for j, row in enumerate(firsts):
        values = {k: c[row].item() for k, c in zip(keys, cols)}
        try:
            results.append(fn(values))
        except AdorError:
            results.append(None)
            ok[j] = False
    return results, inverse.reshape(-1), ok


def design_arrays(space: SearchSpace, columns: Mapping[str, np.ndarray]) -> DesignArrays:
    """The designs whose knob values are ``columns`` (knob name -> one value per design)."""
    env: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(env.values())))
    base = space._base_fields
    valid = np.ones(n, dtype=bool)
    for target, text in space.spec.derived.items():
        where = f"derived.{target}"
        names = sorted(names_in(text, where))
        def derive(v: dict[str, Any], t: str = text, w: str = where, f: str = target) -> Any:
            return _typed(space._types[f], evaluate_expr(t, {**base, **v}, w), f)
        results, inverse, ok = _per_unique(env, names, n, derive)
        valid &= ok[inverse]
        env[target] = np.array([r if r is not None else 0 for r in results])[inverse]
    for text in space.spec.constraints:
        names = sorted(names_in(text, "constraints"))
        def holds(v: dict[str, Any], t: str = text) -> bool:
            return bool(evaluate_expr(t, {**base, **v}, "constraints"))
        results, inverse, ok = _per_unique(env, names, n, holds)
        valid &= (ok & np.array([bool(r) for r in results]))[inverse]
    heads: dict[str, list[str]] = {}
    for dotted in env:
        if dotted not in SYSTEM_KNOBS:
            head, _, leaf = dotted.partition(".")
            heads.setdefault(head if leaf else "", []).append(dotted)
    built: dict[str, tuple[list[Any], np.ndarray]] = {}
    for head, fields in heads.items():
        def build(values: dict[str, Any], head: str = head) -> Any:
            typed = {d.partition(".")[2] or d: _typed(space._types[d], v, d) for d, v in values.items()}
            if not head:                      # fields of the chip itself, checked with the base components
                try:
                    return dataclasses.replace(space.base, **typed)
                except UnevenSplitError:      # the split is checked below, with each design's own counts
                    return space.base
            try:
                return dataclasses.replace(getattr(space.base, head), **typed)
            except ConfigError as err:
                raise err.under(head) from None
        results, inverse, ok = _per_unique(env, fields, n, build)
        valid &= ok[inverse]
        built[head] = (results, inverse)

    def column(path: str) -> Any:
        head, _, leaf = path.partition(".")
        if not leaf:
            if path in env:
                return env[path]
            return np.full(n, getattr(space.base, path))
        if head in built:
            results, inverse = built[head]
            fallback = getattr(space.base, head)
            values = [getattr(r if r is not None else fallback, leaf) for r in results]
            return Labels(values)[inverse] if isinstance(values[0], str) else np.array(values)[inverse]
        return np.full(n, getattr(getattr(space.base, head), leaf))
    arrays = arrays_from_columns(column, n)
    # the rules of AdorChip that span components (the range of dies is the chip's own, checked above):
    # some matrix engine; identical dies share evenly
    valid &= (arrays.systolic.count > 0) | (arrays.mactree.count > 0)
    for count in split_counts(arrays).values():
        valid &= np.mod(count, arrays.dies) == 0
    return DesignArrays(subset(arrays, valid) if not valid.all() else arrays, valid)
