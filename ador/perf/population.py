"""Vectorised evaluation of a population of ADOR designs on one workload (numpy over designs).

The operator formulas are those of ``ador.perf.ador_engines`` (written once over an ops
namespace); here they run with numpy arrays holding one value per design, so a whole population
is priced in one pass per operator. Used to enumerate small search spaces exhaustively and to
score populations far faster than one design at a time.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import numpy as np

from ador.hardware.devices import AdorChip
from ador.perf import ador_engines as E
from ador.perf.collectives import collective_seconds
from ador.perf.constants import ADOR_HBM_EFFICIENCY, ADOR_LINK_EFFICIENCY
from ador.workload.graph import decode_step, prefill
from ador.workload.memory import footprint
from ador.workload.models import ModelSpec
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision


class _NumpyOps:
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    floor = staticmethod(np.floor)


NUMPY = _NumpyOps()


def chip_arrays(chips: Sequence[AdorChip]) -> SimpleNamespace:
    """The designs as one namespace of arrays, shaped like an AdorChip."""
    def arr(get, dtype=float):
        return np.array([get(c) for c in chips], dtype=dtype)

    systolic = SimpleNamespace(count=arr(lambda c: c.systolic.count), rows=arr(lambda c: c.systolic.rows),
                               cols=arr(lambda c: c.systolic.cols),
                               dataflow=np.array([c.systolic.dataflow for c in chips]),
                               local_sram_bytes=arr(lambda c: c.systolic.local_sram_bytes))
    systolic.macs = systolic.count * systolic.rows * systolic.cols
    mactree = SimpleNamespace(count=arr(lambda c: c.mactree.count), width=arr(lambda c: c.mactree.width),
                              local_buffer_bytes=arr(lambda c: c.mactree.local_buffer_bytes))
    mactree.macs = mactree.count * mactree.width
    mactree.log2_width = np.log2(mactree.width)
    return SimpleNamespace(
        n=len(chips), systolic=systolic, mactree=mactree,
        vector=SimpleNamespace(lanes=arr(lambda c: c.vector.lanes), sfu_per_cycle=arr(lambda c: c.vector.sfu_per_cycle)),
        sram=SimpleNamespace(capacity_bytes=arr(lambda c: c.sram.capacity_bytes),
                             bw_bytes_per_s=arr(lambda c: c.sram.bw_bytes_per_s)),
        hbm=SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.hbm.bw_bytes_per_s),
                            capacity_bytes=arr(lambda c: c.hbm.capacity_bytes)),
        noc=SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.noc.bw_bytes_per_s)),
        links=SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.links.bw_bytes_per_s),
                              latency_s=arr(lambda c: c.links.latency_s),
                              ring=arr(lambda c: c.links.topology == "ring")),
        freq_hz=arr(lambda c: c.freq_hz),
    )


def _max(terms) -> np.ndarray:
    return np.maximum.reduce(np.broadcast_arrays(*terms))


def op_seconds(ca: SimpleNamespace, op: Op, p: Precision, tp: int) -> np.ndarray:
    """Time of one instance of ``op`` on every design (faster engine for matrix work)."""
    X = NUMPY
    dispatch = E.dispatch_s(ca)
    kind = op.kind
    if kind == GEMM or kind == ATTENTION:
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == GEMM:
                s = _max(E.systolic_gemm_terms(ca, op, p, X))
                m = _max(E.mactree_gemm_terms(ca, op, p, X))
            else:
                s = _max(E.attention_terms(ca, op, p, E.SYSTOLIC, X))
                m = _max(E.attention_terms(ca, op, p, E.MACTREE, X))
        s = np.where(ca.systolic.count > 0, s, np.inf)
        m = np.where(ca.mactree.count > 0, m, np.inf)
        return np.minimum(s, m) + dispatch
    if kind == VECTOR:
        return _max(E.vector_terms(ca, op, X)) + dispatch
    if kind == MEMORY:
        return op.act_bytes / (ca.hbm.bw_bytes_per_s * ADOR_HBM_EFFICIENCY) + dispatch
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_seconds(op, tp, ca.links.bw_bytes_per_s * ADOR_LINK_EFFICIENCY, ca.links.latency_s,
                                  ca.links.ring, dispatch)
    raise ValueError(f"unknown operator kind {kind!r}")


def stage_seconds(ca: SimpleNamespace, ops: Sequence[Op], p: Precision, tp: int) -> np.ndarray:
    total = np.zeros(ca.n)
    for op in ops:
        total += op.count * op_seconds(ca, op, p, tp)
    return total


def evaluate_population(chips: Sequence[AdorChip] | SimpleNamespace, model: ModelSpec, precision: Precision, *,
                        batch: int, input_len: int, output_len: int, tp: int = 1, pp: int = 1) -> dict[str, np.ndarray]:
    """TTFT, mean and p99 TBT, end-to-end latency, output tokens/s (one replica of tp x pp devices)
    and whether the model fits, for every design: the same numbers ``ador.perf.evaluate`` gives."""
    ca = chips if isinstance(chips, SimpleNamespace) else chip_arrays(chips)
    ttft = stage_seconds(ca, prefill(model, precision, tp, batch, input_len, pp), precision, tp)
    first, last = input_len + 1, input_len + max(1, output_len - 1)
    mid = (first + last) // 2
    t_mid = stage_seconds(ca, decode_step(model, precision, tp, batch, mid, pp), precision, tp)
    if last - first < 2:
        tbt = t_mid
    else:
        t_first = stage_seconds(ca, decode_step(model, precision, tp, batch, first, pp), precision, tp)
        t_last = stage_seconds(ca, decode_step(model, precision, tp, batch, last, pp), precision, tp)
        tbt = (t_first + 4 * t_mid + t_last) / 6
    e2e = ttft + (output_len - 1) * tbt
    need = footprint(model, precision, tp, pp, batch, input_len + output_len, batch * input_len).total_bytes
    return {"ttft_s": ttft, "tbt_s": tbt, "e2e_s": e2e, "output_tok_s": batch * output_len / e2e,
            "fits": need <= ca.hbm.capacity_bytes}
