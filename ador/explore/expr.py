"""A small, safe arithmetic language for derived fields and structural constraints in YAML.

Allowed: numbers, names of knobs/fields (dotted), + - * / // % **, comparisons, and/or/not,
and the functions min, max, ceil, floor, log2. Anything else is a ConfigError naming the text.

Evaluation is bounded, so a hostile file cannot hang a study (``9**9**9``): an expression has at
most ``MAX_TEXT`` characters and ``MAX_DEPTH`` levels, a whole number at most ``MAX_BITS`` bits
(no field needs more than 53), and a float must stay finite.
"""
from __future__ import annotations

import ast
import math
from functools import lru_cache
from typing import Any, Callable, Mapping

from ador.errors import ConfigError

MAX_TEXT = 1000      # characters of one expression
MAX_DEPTH = 32       # nesting of operations
MAX_BITS = 256       # whole numbers up to ~1e77 (intermediate results included)

_FUNCS: dict[str, Callable[..., float]] = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor,
                                          "log2": math.log2}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: _mul(a, b),
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: _pow(a, b)}
_CMPS = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
         ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _depth(node: ast.AST) -> int:
    """Nesting depth, iteratively (a deep tree must not exhaust the stack)."""
    deepest, todo = 0, [(node, 1)]
    while todo:
        n, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in ast.iter_child_nodes(n))
    return deepest


@lru_cache(maxsize=1024)
def compile_expr(text: str, where: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ConfigError(where, text, "an expression must be a string")
    if len(text) > MAX_TEXT:
        raise ConfigError(where, text, f"longer than {MAX_TEXT} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ConfigError(where, text, "not a valid expression") from None
    if _depth(tree) > MAX_DEPTH:
        raise ConfigError(where, text, f"nested more than {MAX_DEPTH} levels deep")
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
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value.bit_length() > MAX_BITS:
            raise ConfigError(where, text, f"a number above 2**{MAX_BITS}")
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and not math.isfinite(node.value):
            raise ConfigError(where, text, "a number too large for a float")
    return tree


def _pow(a: Any, b: Any) -> Any:
    """``a ** b`` refused before it is computed when the result would be a huge whole number."""
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and \
            (b > MAX_BITS or (abs(a).bit_length() - 1) * b > MAX_BITS):
        raise OverflowError(f"the result has more than {MAX_BITS} bits")
    return a ** b


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_BITS + 1:
        raise OverflowError(f"the result has more than {MAX_BITS} bits")
    return a * b


def _checked(value: Any) -> Any:
    """Every intermediate result: a finite real number of bounded size (or a bool/str passed on)."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_BITS:
            raise OverflowError(f"a whole number of more than {MAX_BITS} bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OverflowError(f"the result is {value}")
        return value
    raise TypeError(f"the result is not a real number ({type(value).__name__})")


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
            if name is None or name not in env:
                raise ConfigError(where, text, f"unknown name {name!r}")
            return env[name]
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return not v
            return _checked(-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.BinOp):
            return _checked(_BINOPS[type(node.op)](ev(node.left), ev(node.right)))
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
            assert isinstance(node.func, ast.Name)     # compile_expr allows only named functions
            return _checked(_FUNCS[node.func.id](*[ev(a) for a in node.args]))
        raise ConfigError(where, text, "unsupported expression")

    try:
        return ev(tree)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as err:
        # log2(0), min(), a string compared with a number, 10.0 ** 400, ...
        raise ConfigError(where, text, str(err) or type(err).__name__) from None
