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


class Labels:
    """Text values of a population, one per design (a dataflow, a memory kind), held as integer codes
    into the few distinct labels: comparing them with a label is an integer comparison, not a
    string one per design, and a table lookup is one gather. Compares (``==``, ``!=``) and indexes
    like the array of strings it stands for (``np.asarray`` gives that array)."""
    __slots__ = ("codes", "labels")

    def __init__(self, values: Any = None, *, codes: Any = None, labels: Sequence[str] = ()) -> None:
        if values is not None:
            uniq, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
            labels = [str(v) for v in uniq]
        self.labels: tuple[str, ...] = tuple(labels)
        self.codes: np.ndarray = np.asarray(codes, dtype=np.int64).reshape(-1)

    def __eq__(self, other: object) -> Any:
        if not isinstance(other, str):
            return NotImplemented
        if other not in self.labels:
            return np.zeros(self.codes.shape, dtype=bool)
        return self.codes == self.labels.index(other)

    def __ne__(self, other: object) -> Any:
        same = self.__eq__(other)
        return same if same is NotImplemented else ~same

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def __getitem__(self, index: Any) -> Labels:
        return Labels(codes=self.codes[index], labels=self.labels)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        text = np.asarray(self.labels, dtype=str)[self.codes]
        return text if dtype is None else text.astype(dtype)

    def lookup(self, table: Mapping[Any, float]) -> np.ndarray:
        """``table[label]`` for every design (a label in use but not in the table raises KeyError)."""
        used = np.flatnonzero(np.bincount(self.codes, minlength=len(self.labels)))
        values = np.full(len(self.labels), np.nan)
        for c in used:
            values[c] = table[self.labels[c]]
        return values[self.codes]


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
        q = np.true_divide(a, b)
        return np.ceil(q, out=q) if isinstance(q, np.ndarray) else np.ceil(q)

    @staticmethod
    def take(values: Sequence[float], index):
        return np.asarray(values, dtype=float)[np.asarray(index, dtype=int)]

    @staticmethod
    def lookup(table: Mapping[Any, float], key):
        """``table[k]`` for every element of the array ``key`` (unknown keys raise KeyError). Tables
        are small (nodes, memory kinds): one comparison pass per entry beats sorting the keys."""
        if isinstance(key, Labels):
            return key.lookup(table)
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
