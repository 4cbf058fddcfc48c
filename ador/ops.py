"""Two implementations of the few operations the model's formulas use, so each formula is written
once: ``SCALAR`` on plain Python numbers (one design: the hot path of a trial), ``NUMPY`` on arrays
holding one value per design (a population scored at once). Layers below ``perf`` and ``cost`` need
nothing but this module."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np


class _ScalarOps:
    """The ops namespace for one design: plain Python, no numpy overhead."""
    @staticmethod
    def maximum(a, b):
        return a if a > b else b

    @staticmethod
    def minimum(a, b):
        return a if a < b else b

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    floor = staticmethod(math.floor)
    ceil = staticmethod(math.ceil)
    log2 = staticmethod(math.log2)

    @staticmethod
    def ceil_div(a, b):
        """Ceiling of a / b, exact for whole numbers."""
        return -(-a // b)

    @staticmethod
    def take(values: Sequence[float], index):
        return values[int(index)]

    @staticmethod
    def lookup(table: Mapping[Any, float], key):
        return table[key]


class _NumpyOps:
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    log2 = staticmethod(np.log2)

    @staticmethod
    def ceil_div(a, b):
        """Ceiling of a / b. The operands are whole numbers below 2**53, so a quotient that is an
        integer is exact and any other is at least 1/b from one: np.ceil is exact here, and far
        faster than floor division on floats."""
        return np.ceil(np.true_divide(a, b))

    @staticmethod
    def take(values: Sequence[float], index):
        return np.asarray(values, dtype=float)[np.asarray(index, dtype=int)]

    @staticmethod
    def lookup(table: Mapping[Any, float], key):
        """``table[k]`` for every element of the array ``key`` (unknown keys raise KeyError). Tables
        are small (nodes, memory kinds): one comparison pass per entry beats sorting the keys."""
        keys = np.asarray(key)
        out = np.full(keys.shape, np.nan)
        found = np.zeros(keys.shape, dtype=bool)
        for k, v in table.items():
            hit = keys == k
            out[hit] = v
            found |= hit
        if not found.all():
            raise KeyError(keys[~found][0].item())
        return out


SCALAR = _ScalarOps()
NUMPY = _NumpyOps()
