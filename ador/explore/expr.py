"""A small, safe arithmetic language for derived fields and structural constraints in YAML.

Allowed: numbers, names of knobs/fields (dotted), + - * / // % **, comparisons, and/or/not,
and the functions min, max, ceil, floor, log2. Anything else is a ConfigError naming the text.
"""
from __future__ import annotations

import ast
import math
from functools import lru_cache
from typing import Any, Callable, Mapping

from ador.errors import ConfigError

_FUNCS: dict[str, Callable[..., float]] = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor,
                                          "log2": math.log2}
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
           ast.Pow: lambda a, b: a ** b}
_CMPS = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
         ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


@lru_cache(maxsize=1024)
def compile_expr(text: str, where: str) -> ast.Expression:
    try:
        tree = ast.parse(str(text), mode="eval")
    except SyntaxError:
        raise ConfigError(where, text, "not a valid expression") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Constant,
                               ast.Name, ast.Attribute, ast.Call, ast.Load, ast.USub, ast.UAdd, ast.Not, ast.And,
                               ast.Or, *_BINOPS, *_CMPS))
        if not ok:
            raise ConfigError(where, text, f"'{type(node).__name__}' is not allowed in an expression")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise ConfigError(where, text, f"only {', '.join(_FUNCS)} may be called")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ConfigError(where, text, "only numbers may appear as constants")
    return tree


def names_in(text: str, where: str) -> set[str]:
    tree = compile_expr(text, where)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and not (isinstance(node, ast.Name) and node.id in _FUNCS):
            name = _name(node)
            if name:
                out.add(name)
    # drop the prefixes of dotted names ("systolic" of "systolic.rows")
    return {n for n in out if not any(o.startswith(n + ".") for o in out)}


def evaluate_expr(text: str, env: Mapping[str, Any], where: str) -> Any:
    tree = compile_expr(text, where)

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _name(node)
            if name not in env:
                raise ConfigError(where, text, f"unknown name {name!r}")
            return env[name]
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
        if isinstance(node, ast.BinOp):
            try:
                return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
            except (ZeroDivisionError, OverflowError) as err:
                raise ConfigError(where, text, str(err)) from None
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                if not _CMPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ConfigError(where, text, "unsupported expression")

    return ev(tree)
