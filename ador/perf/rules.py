"""Rules shared by every device, GPU or ADOR design: written once over a tiny ops namespace.

``SCALAR`` runs a formula on plain Python numbers (one design, the hot path); ``NUMPY`` on arrays
holding one value per design (``ador.perf.population``). Anything that is a rule of the runtime
rather than of an engine (how compute and data movement overlap) lives here, so both sides of a
comparison are priced by the same line of code.
"""
from __future__ import annotations

import math

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


class _NumpyOps:
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)


SCALAR = _ScalarOps()
NUMPY = _NumpyOps()


def overlapped(compute, data, overlap, X=SCALAR):
    """Time of a kernel whose compute and data movement overlap by the runtime's ``overlap``
    fraction: the longer of the two, plus the part of the shorter one that is not hidden."""
    return X.maximum(compute, data) + (1.0 - overlap) * X.minimum(compute, data)


def hidden_collective_s(collective_s: float, other_s: float, comm_overlap: float) -> float:
    """Collective time a runtime hides under a stage's other work: the overlapped fraction of the
    collectives, never more than the work there is to hide it under."""
    return min(comm_overlap * collective_s, other_s)


class Rates:
    """What a system's runtime makes of its device, computed once per system: achieved HBM and link
    bandwidth, the latency of one collective step, the fixed cost of one operator, the overlap
    rule. The same object (with arrays for a population) feeds every engine's formulas."""
    __slots__ = ("hbm_bw", "link_bw", "step_latency_s", "op_overhead_s", "overlap", "direct")

    def __init__(self, *, hbm_bw, link_bw, step_latency_s, op_overhead_s, overlap, direct) -> None:
        self.hbm_bw = hbm_bw
        self.link_bw = link_bw
        self.step_latency_s = step_latency_s
        self.op_overhead_s = op_overhead_s
        self.overlap = overlap
        self.direct = direct


def rates_of(device, runtime, *, hbm_efficiency=None) -> Rates:
    """Rates of ``device`` (a Device, or a namespace of per-design arrays) under ``runtime``;
    ``hbm_efficiency`` overrides the profile's lookup by memory kind (populations pass an array)."""
    eff = runtime.hbm(device.memory_kind) if hbm_efficiency is None else hbm_efficiency
    return Rates(hbm_bw=device.hbm_bw_bytes_per_s * eff,
                 link_bw=device.link_bw_bytes_per_s * runtime.link_efficiency,
                 step_latency_s=device.link_latency_s + runtime.collective_latency_s,
                 op_overhead_s=runtime.kernel_overhead_s + runtime.kernel_overhead_cycles / device.freq_hz,
                 overlap=runtime.overlap, direct=device.topology != "ring")
