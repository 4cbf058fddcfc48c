"""Search spaces: which fields of a base design vary, how, and what follows from them.

A search space YAML names a base design (preset or file), knobs (each a dotted field of the
design with a type and range), derived fields (expressions over knobs and fields) and structural
constraints (expressions that must hold). Loading validates everything and names the bad knob.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping

from ador.config import MAX_INT, canonical, from_mapping, load_yaml, to_mapping
from ador.errors import ConfigError, UnevenSplitError
from ador.explore.expr import evaluate_expr, names_in
from ador.hardware import AdorChip, device_from_mapping, device_to_mapping, get_device
from ador.hardware.devices import INERT_SWITCHES, inert_fields

KnobType = Literal["int", "log_int", "pow2", "float", "log_float", "categorical"]
MAX_GRID = 1_000_000      # values one knob, or a whole grid, may enumerate (each is a list in memory)


@dataclass(frozen=True)
class Knob:
    type: KnobType
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def check(self, where: str) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}.choices", list(self.choices), "a categorical knob needs choices")
            for i, choice in enumerate(self.choices):
                if isinstance(choice, float) and not math.isfinite(choice):
                    raise ConfigError(f"{where}.choices[{i}]", choice, "expected a finite number")
                if isinstance(choice, int) and not isinstance(choice, bool) and abs(choice) > MAX_INT:
                    raise ConfigError(f"{where}.choices[{i}]", choice, "too large (at most 2**53)")
                if not isinstance(choice, (str, int, float, bool)):
                    raise ConfigError(f"{where}.choices[{i}]", choice, "a choice is a number, string or boolean")
            # distinct as stored: a study's settings keep whole floats as ints (2.0 is 2 once reopened)
            if len(set(map(repr, canonical(list(self.choices))))) != len(self.choices):
                raise ConfigError(f"{where}.choices", list(self.choices), "choices must be distinct")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{where}.low", self.low, f"a {self.type} knob needs low and high")
        for name in ("low", "high", "step"):
            v = getattr(self, name)
            if v is not None and abs(v) > MAX_INT:       # knob values are float64 columns (exact to 2**53)
                raise ConfigError(f"{where}.{name}", v, "too large (at most 2**53)")
        if not self.low <= self.high:
            raise ConfigError(f"{where}.high", self.high, f"must be >= low={self.low}")
        if self.type in ("int", "log_int", "pow2"):
            for name in ("low", "high"):
                v = getattr(self, name)
                if v != int(v):
                    raise ConfigError(f"{where}.{name}", v, f"a {self.type} knob needs whole numbers")
        if self.type in ("log_int", "log_float", "pow2") and self.low <= 0:
            raise ConfigError(f"{where}.low", self.low, f"a {self.type} knob needs low > 0")
        if self.type == "pow2":
            for name in ("low", "high"):
                v = getattr(self, name)
                if 2 ** round(math.log2(v)) != v:
                    raise ConfigError(f"{where}.{name}", v, "must be a power of two")
        if self.step is not None:
            if self.type in ("log_int", "log_float", "pow2"):
                raise ConfigError(f"{where}.step", self.step, f"a {self.type} knob takes no step")
            if not self.step > 0:
                raise ConfigError(f"{where}.step", self.step, "must be > 0")
            if self.type == "int" and self.step != int(self.step):
                raise ConfigError(f"{where}.step", self.step, "an int knob needs a whole step")

    def size(self, where: str) -> int:
        """How many values ``grid`` would list, computed without listing them."""
        if self.type == "categorical":
            return len(self.choices)
        assert self.low is not None and self.high is not None     # checked on load
        if self.type == "pow2":
            return int(math.log2(self.high)) - int(math.log2(self.low)) + 1
        if self.type in ("int", "log_int"):
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is None:
            raise ConfigError(f"{where}.step", None, "a float knob needs a step to be enumerated")
        steps = (self.high - self.low) / self.step
        return int(math.floor(steps + 1e-9)) + 1 if steps < 1e18 else 10 ** 18

    def grid(self, where: str) -> list[Any]:
        """Every value of the knob (for grid search and exhaustive enumeration)."""
        n = self.size(where)
        if n > MAX_GRID:
            raise ConfigError(where, f"{n:.3g} values", f"too many to enumerate (at most {MAX_GRID:,})")
        if self.type == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None     # checked on load
        if self.type == "pow2":
            return [2 ** e for e in range(int(math.log2(self.low)), int(math.log2(self.high)) + 1)]
        if self.type in ("int", "log_int"):
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ConfigError(f"{where}.step", None, "a float knob needs a step to be enumerated")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return [self.low + i * self.step for i in range(n + 1)]


# Knobs of the system rather than of the chip (system-level studies, ador/explore/system.py): which
# device (a GPU preset, or "design": the template the other knobs describe), how the model is split,
# its precision, and the serving policy with its main constants. They are not fields of the design.
SYSTEM_KNOBS: dict[str, type] = {"system.device": str, "system.tp": int, "system.pp": int, "system.precision": str,
                                 "serving.policy": str, "serving.max_batch": int, "serving.chunk_tokens": int}
DESIGN = "design"     # the system.device choice that means "the design the chip knobs describe"


def system_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The system knobs among resolved knob values."""
    return {k: v for k, v in changes.items() if k in SYSTEM_KNOBS}


@dataclass(frozen=True)
class SearchSpaceSpec:
    base: str
    knobs: dict[str, Knob]
    derived: dict[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class SearchSpace:
    spec: SearchSpaceSpec
    base: AdorChip
    name: str = ""

    @property
    def knobs(self) -> dict[str, Knob]:
        return self.spec.knobs

    def resolve(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Knob values plus derived fields, and the structural constraints they break."""
        env = dict(self._base_fields)
        env.update(values)
        changes = dict(values)
        for target, text in self.spec.derived.items():
            env[target] = changes[target] = evaluate_expr(text, env, f"derived.{target}")
        broken = [c for c in self.spec.constraints if not evaluate_expr(c, env, "constraints")]
        return changes, broken

    def design(self, values: Mapping[str, Any], name: str = "candidate") -> AdorChip:
        """The design for knob ``values``: base, knobs applied, derived fields computed. Built with
        dataclasses.replace, so each component validates itself; a bad value is a ConfigError
        naming the field."""
        changes, _ = self.resolve(values)
        return self.apply(changes, name)

    def apply(self, changes: Mapping[str, Any], name: str = "candidate") -> AdorChip:
        top: dict[str, Any] = {"name": name}
        nested: dict[str, dict[str, Any]] = {}
        for dotted, value in changes.items():
            if dotted in SYSTEM_KNOBS:
                continue
            head, _, leaf = dotted.partition(".")
            if leaf:
                nested.setdefault(head, {})[leaf] = _typed(self._types[dotted], value, dotted)
            else:
                top[head] = _typed(self._types[dotted], value, dotted)
        hbm = nested.get("hbm")
        if hbm is not None and hbm.get("generation", self.base.hbm.generation) != self.base.hbm.generation:
            # another generation: its own per-stack figures, unless knobs or derived fields set them
            # (the base's figures were filled in from the base's generation)
            hbm.setdefault("bw_bytes_per_s_per_stack", 0.0)
            hbm.setdefault("capacity_bytes_per_stack", 0.0)
        try:
            for head, fields in nested.items():
                top[head] = dataclasses.replace(getattr(self.base, head), **fields)
        except ConfigError as err:
            raise err.under(head) from None
        return dataclasses.replace(self.base, **top)

    def inert_knobs(self, values: Mapping[str, Any]) -> frozenset[str]:
        """The knobs whose value in ``values`` changes nothing about the design they make: fields
        the others make irrelevant (``ador.hardware.devices.inert_fields``: a unit with no engines)
        that feed no derived field that matters. Designs that differ only in these are one design."""
        if any(switch in self.spec.derived for switch in INERT_SWITCHES):
            changes, _ = self.resolve(values)
            fields = {**self._base_fields, **changes}
        else:            # the switches are knobs or the base's: no derived field to compute first
            fields = {s: values[s] if s in values else self._base_fields[s] for s in INERT_SWITCHES}
        inert = inert_fields(fields)
        if not inert:
            return frozenset()
        return frozenset(k for k in self.knobs if k in inert and self._feeds[k] <= inert and k not in self._judged)

    def canonical(self, columns: Mapping[str, Any], firsts: Mapping[str, Any]) -> Any:
        """For knob vectors given as columns (numpy arrays, one per knob): which of them name their
        design first, every knob inert for that vector at its grid's first value (``firsts``), so
        that counting them counts designs. None when a switch of ``inert_fields`` is a derived field
        (the inert set then hangs on resolved fields, which have no columns here)."""
        import numpy as np
        if any(switch in self.spec.derived for switch in INERT_SWITCHES):
            return None
        n = len(next(iter(columns.values())))
        switch = {s: np.asarray(columns[s]) if s in columns else np.full(n, self._base_fields[s], dtype=object)
                  for s in INERT_SWITCHES}
        state = ((switch["systolic.count"] == 0).astype(np.int64) + 2 * (switch["mactree.count"] == 0)
                 + 4 * (switch["mactree.buffer"] == "private"))
        out = np.ones(n, dtype=bool)
        for code in np.unique(state):
            rows = state == code
            first = int(np.argmax(rows))
            inert = self.inert_knobs({k: np.asarray(columns[k])[first].item() for k in self.knobs})
            for name in inert:
                out[rows] &= np.asarray(columns[name])[rows] == firsts[name]
        return out

    def design_values(self, values: Mapping[str, Any]) -> tuple:
        """``values`` (every knob's) in the knobs' order, the inert knobs' as None: equal for the
        knob values that name one design."""
        inert = self.inert_knobs(values)
        return tuple(None if name in inert else values[name] for name in self.knobs)

    @cached_property
    def _judged(self) -> frozenset[str]:
        """The knobs a structural constraint reads, directly or through derived fields: whether the
        design is valid can hang on them, so they are never inert."""
        names: set[str] = set()
        for i, text in enumerate(self.spec.constraints):
            names |= names_in(text, f"constraints[{i}]")
        return frozenset(k for k in self.knobs if k in names or any(k in self._deps.get(n, ()) for n in names))

    @cached_property
    def _feeds(self) -> dict[str, frozenset[str]]:
        """Per knob, the derived fields computed from it, directly or through other derived fields."""
        return {k: frozenset(t for t, d in self._deps.items() if k in d) for k in self.knobs}

    @cached_property
    def _deps(self) -> dict[str, set[str]]:
        """Per derived field, the names it is computed from, directly or through other derived fields."""
        deps: dict[str, set[str]] = {}
        for target, text in self.spec.derived.items():    # in order: a derived field reads earlier ones
            names = names_in(text, f"derived.{target}")
            deps[target] = names.union(*(deps[n] for n in names if n in deps))
        return deps

    def violated(self, values: Mapping[str, Any]) -> list[str]:
        """Structural constraints that ``values`` break."""
        return self.resolve(values)[1]

    @property
    def _base_fields(self) -> dict[str, Any]:
        cached = self.__dict__.get("_fields_cache")
        if cached is None:
            cached = _flatten(device_to_mapping(self.base))
            object.__setattr__(self, "_fields_cache", cached)
        return cached

    @property
    def _types(self) -> dict[str, type]:
        cached = self.__dict__.get("_types_cache")
        if cached is None:
            cached = {k: type(v) for k, v in self._base_fields.items()}
            object.__setattr__(self, "_types_cache", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        return {**to_mapping(self.spec), "base_design": device_to_mapping(self.base)}


def _typed(kind: type, value: Any, field: str) -> Any:
    """Coerce a knob or derived value to the field's type (ints stay ints; 1e9 becomes a float);
    a value of another kind is a ConfigError naming the field."""
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(field, value, "expected a string")
        return value
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(field, value, "expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(field, value, "expected a finite number")
    if kind is int and isinstance(value, float):
        if value != int(value):
            raise ConfigError(field, value, "expected a whole number")
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


# fields of a design that name it rather than describe it: no knob or derived field sets them
IDENTITY_FIELDS = ("kind", "name")


def _dependency_order(reads: dict[str, set[str]], where: str) -> list[str]:
    """Derived fields in an order that computes each after the derived fields it reads (as written
    where that order already does: a stored space keeps its order); a cycle is an error (it would
    read a field at the base's value)."""
    done: list[str] = []
    left = dict(reads)
    while left:
        ready = next((t for t, names in left.items() if names <= set(done)), None)
        if ready is None:
            target = next(iter(left))
            cycle = sorted(left[target] - set(done))
            raise ConfigError(f"{where}.derived.{target}", ", ".join(cycle),
                              "derived fields that read each other (or themselves) in a cycle: "
                              "each would read another at the base's value")
        done.append(ready)
        del left[ready]
    return done


def build_space(raw: Any, where: str = "search_space", name: str = "") -> SearchSpace:
    """A search space from YAML data; a stored space carries its resolved ``base_design``."""
    base_data = raw.get("base_design") if isinstance(raw, Mapping) else None
    if base_data is not None:
        raw = {k: v for k, v in raw.items() if k != "base_design"}
    spec = from_mapping(SearchSpaceSpec, raw, where)
    base = device_from_mapping(base_data, f"{where}.base_design") if base_data else get_device(spec.base)
    if base.kind != "ador":
        raise ConfigError(f"{where}.base", spec.base, "the base of a search space must be an ADOR design")
    fields = _flatten(device_to_mapping(base))
    if not spec.knobs:
        raise ConfigError(f"{where}.knobs", {}, "a search space needs at least one knob")
    for knob_name, knob in spec.knobs.items():
        if knob_name in IDENTITY_FIELDS:
            raise ConfigError(f"{where}.knobs.{knob_name}", knob_name, "names the design, it is not a parameter "
                                                                     "of it (a design of another kind is another base)")
        if knob_name not in fields and knob_name not in SYSTEM_KNOBS:
            raise ConfigError(f"{where}.knobs.{knob_name}", knob_name,
                              f"not a field of the design (fields: {', '.join(sorted(fields))}) nor a system knob "
                              f"({', '.join(SYSTEM_KNOBS)})")
        knob.check(f"{where}.knobs.{knob_name}")
        if knob_name in SYSTEM_KNOBS:
            _check_system_knob(knob_name, knob, f"{where}.knobs.{knob_name}")
    known = set(fields) | set(spec.knobs)
    reads: dict[str, set[str]] = {}
    for target, text in spec.derived.items():
        if target not in fields or target in IDENTITY_FIELDS:
            raise ConfigError(f"{where}.derived.{target}", text, "not a field of the design")
        if target in spec.knobs:
            raise ConfigError(f"{where}.derived.{target}", text, "is already a knob")
        names = names_in(text, f"{where}.derived.{target}")
        unknown = names - known
        if unknown:
            raise ConfigError(f"{where}.derived.{target}", text, f"unknown names: {', '.join(sorted(unknown))}")
        reads[target] = names & set(spec.derived)
    ordered = _dependency_order(reads, where)
    if ordered != list(spec.derived):
        spec = dataclasses.replace(spec, derived={t: spec.derived[t] for t in ordered})
    for i, text in enumerate(spec.constraints):
        unknown = names_in(text, f"{where}.constraints[{i}]") - known
        if unknown:
            raise ConfigError(f"{where}.constraints[{i}]", text, f"unknown names: {', '.join(sorted(unknown))}")
    space = SearchSpace(spec=spec, base=base, name=name)
    # each knob alone, at both ends of its range, must give a valid design (catches bad ranges early);
    # system knobs sit at their first value (they are names in constraints, not fields of the design).
    # A die count the base's counts do not divide is a fault of the combination, judged per design.
    system_defaults = {k: (kn.choices[0] if kn.type == "categorical" else kn.low)
                       for k, kn in spec.knobs.items() if k in SYSTEM_KNOBS}
    for knob_name, knob in spec.knobs.items():
        if knob_name in SYSTEM_KNOBS:
            continue
        ends: tuple[Any, Any] = (knob.choices[0], knob.choices[-1]) if knob.type == "categorical" \
            else (knob.low, knob.high)
        for value in ends:
            if knob.type in ("int", "log_int", "pow2"):
                value = int(value)
            try:
                space.design({**system_defaults, knob_name: value})
            except UnevenSplitError:
                continue
            except ConfigError as err:
                raise ConfigError(f"{where}.knobs.{knob_name}", value, f"gives an invalid design ({err})") from None
    return space


def _check_system_knob(name: str, knob: Knob, where: str) -> None:
    """A system knob's values must name things that exist: devices, precisions, policies."""
    if SYSTEM_KNOBS[name] is str and knob.type != "categorical":
        raise ConfigError(f"{where}.type", knob.type, "this knob takes names: use a categorical knob")
    if knob.type != "categorical":
        return
    from ador.hardware import GPUS
    from ador.serving import POLICIES
    from ador.workload import PRECISIONS
    known = {"system.device": [DESIGN, *GPUS], "system.precision": list(PRECISIONS),
             "serving.policy": list(POLICIES)}.get(name)
    for value in knob.choices:
        if known is not None and value not in known:
            raise ConfigError(f"{where}.choices", value, f"unknown (known: {', '.join(map(str, known))})")
        if known is None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}.choices", value, "expected a positive whole number")


def load_space(path: str | Path) -> SearchSpace:
    """A search-space file; a base design given as a file is read beside it."""
    from ador.hardware import PRESETS
    path = Path(path)
    raw = load_yaml(path)
    base = raw.get("base") if isinstance(raw, Mapping) else None
    if isinstance(base, str) and base not in PRESETS and not Path(base).is_absolute():
        from ador.explore.locate import find_beside
        raw = {**raw, "base": str(find_beside(base, path, "", "base"))}
    return build_space(raw, "search_space", path.stem)
