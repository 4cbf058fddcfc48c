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
from typing import Any, TypeVar

import yaml

from ador.errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and types; errors name ``where.field``."""
    if not isinstance(data, Mapping):
        raise ConfigError(where or cls.__name__, data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
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
        raise err.under(where) if where else err


def to_mapping(obj: Any) -> Any:
    """Plain data (dicts, lists, numbers, strings) for a dataclass tree, ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, Mapping):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
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
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        raise ConfigError("file", str(path), f"malformed YAML{where}: {problem}") from None


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
        return from_mapping(hint, value, path)
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
        number = float(value)
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
    return int(number)
