"""Strict conversion between plain mappings (YAML, JSON) and frozen dataclasses.

One place for the rules every loader follows: unknown keys are refused, types are checked
against the dataclass annotations, and each error names the full dotted field and its value.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from ador.errors import ConfigError

T = TypeVar("T")

# Bounds on what a YAML file may expand to. Anchors and aliases let 400 bytes stand for billions of
# values (a "billion laughs" file); every loader walks the expanded tree, so it is measured first.
MAX_YAML_VALUES = 100_000     # scalars and collections after expanding aliases (a big study file has ~500)
MAX_YAML_DEPTH = 64           # nesting of mappings and lists (designs nest 3 deep)
MAX_INT = 2 ** 53             # whole numbers beyond this are not exact as floats, and no field needs them
MAX_SEED = 2 ** 32 - 1        # random seeds: NumPy's legacy generators (Optuna's samplers) take 0 .. 2**32 - 1


def from_mapping(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and types; errors name ``where.field``."""
    if not isinstance(data, Mapping):
        raise ConfigError(where or cls.__name__, data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls)) if f.init}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(_join(where, str(key)), data[key], f"unknown field (known: {known})")
    kwargs = {}
    for name, field in fields.items():
        path = _join(where, name)
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(path, None, "required field is missing")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise (err.under(where) if where else err) from None


def to_mapping(obj: Any) -> Any:
    """Plain data (dicts, lists, numbers, strings) for a dataclass tree, ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, Mapping):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    return obj


def canonical(obj: Any) -> Any:
    """JSON-stable form: whole floats as ints, tuples as lists (as a storage round trip gives), so
    a value read back from a study's stored settings has the type it had when the study began."""
    if isinstance(obj, Mapping):
        return {k: canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2 ** 63:
        return int(obj)
    return obj


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing or malformed file is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("file", str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("file", str(path), f"cannot be read ({err.__class__.__name__})") from None
    try:
        _check_yaml_size(text)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        if data is None:           # every file ador reads is a mapping of fields
            raise ConfigError("file", str(path), "is empty (or holds only comments)")
        return data
    except _TooBig as err:
        raise ConfigError("file", str(path), str(err)) from None
    except RecursionError:
        raise ConfigError("file", str(path), f"nested more than {MAX_YAML_DEPTH} levels deep") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        raise ConfigError("file", str(path), f"malformed YAML{where}: {problem}") from None


class _TooBig(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping (PyYAML keeps the last
    in silence, so the first value a user wrote would be ignored). Keys merged in with ``<<`` may
    still be overridden, as YAML means them to be."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    twice = key in seen
                except TypeError:            # an unhashable key: the base class says so
                    continue
                if twice:
                    raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is written twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_yaml_size(text: str) -> None:
    """Walk the parser's events (no objects are built) counting nesting depth and the number of
    values once aliases are expanded; refuse a file beyond the bounds before it is constructed."""
    from yaml import events as ev
    stack: list[list[int]] = []        # per open collection: [values inside so far]
    anchored: dict[str, int] = {}      # anchor -> expanded size of its node
    opened: list[str | None] = []      # anchor of each open collection
    total = 0

    def add(n: int) -> None:
        nonlocal total
        if stack:
            stack[-1][0] += n
        else:
            total += n
        if total + sum(frame[0] for frame in stack) > MAX_YAML_VALUES:
            raise _TooBig(f"expands to more than {MAX_YAML_VALUES:,} values (aliases repeating aliases?)")

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
            if len(stack) >= MAX_YAML_DEPTH:
                raise _TooBig(f"nested more than {MAX_YAML_DEPTH} levels deep")
            stack.append([1])
            opened.append(event.anchor)
        elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
            size = stack.pop()[0]
            anchor = opened.pop()
            if anchor is not None:
                anchored[anchor] = size
            add(size)
        elif isinstance(event, ev.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = 1
            add(1)
        elif isinstance(event, ev.AliasEvent):
            if event.anchor in opened:
                raise _TooBig(f"the alias *{str(event.anchor)[:40]} refers to a collection that contains it")
            add(anchored.get(event.anchor, 1))   # an unknown anchor is the composer's error to report


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:             # X | None: X's own error, naming the field inside the value
            return _coerce(options[0], value, path)
        errors = []
        for option in options:
            try:
                return _coerce(option, value, path)
            except ConfigError as err:
                errors.append(err.reason)
        raise ConfigError(path, value, " or ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(path, value, f"expected one of {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, "expected a list")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, value, "expected a mapping")
        key_t, val_t = args if args else (Any, Any)
        return {_coerce(key_t, k, f"{path}.{k}"): _coerce(val_t, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_mapping(cast(type, hint), value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "expected true or false")
        return value
    if hint is int:
        return _as_int(value, path)
    if hint is float:
        return _as_float(value, path)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, value, "expected a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"config type {hint!r} of {path} is not supported")  # a bug in ador, not user input


def _as_float(value: Any, path: str) -> float:
    # PyYAML reads 1e9 (no dot) as a string, so numeric strings are accepted.
    if isinstance(value, bool):
        raise ConfigError(path, value, "expected a number")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(path, value, "too large") from None
    elif isinstance(value, str):
        try:
            number = float(value.replace("_", ""))
        except ValueError:
            raise ConfigError(path, value, "expected a number") from None
    else:
        raise ConfigError(path, value, "expected a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(path, value, "expected a finite number")
    return number


def _as_int(value: Any, path: str) -> int:
    number = _as_float(value, path)
    if number != int(number):
        raise ConfigError(path, value, "expected a whole number")
    if abs(number) > MAX_INT:
        raise ConfigError(path, value, f"too large (at most 2**53 = {MAX_INT:.3g})")
    return value if isinstance(value, int) and not isinstance(value, bool) else int(number)
