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
from ador.hardware.runtime import RuntimeProfile, get_runtime
from ador.hardware.system import NodeTier
from ador.perf import ador_engines as E
from ador.perf.collectives import collective_op_seconds
from ador.perf.evaluate import decode_kv_points, end_to_end_s, mean_over_generation, p99_decode_kv
from ador.perf import rules
from ador.perf.rules import NUMPY, Rates, rates_of
from ador.workload.graph import decode_step, prefill
from ador.workload.memory import footprint
from ador.workload.models import ModelSpec
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, COLLECTIVES, GEMM, MEMORY, P2P, VECTOR, Op
from ador.workload.precision import Precision


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
                              local_buffer_bytes=arr(lambda c: c.mactree.local_buffer_bytes),
                              buffer=np.array([c.mactree.buffer for c in chips]),
                              shared_buffer_bytes=arr(lambda c: c.mactree.shared_buffer_bytes),
                              activation_buffer_bytes=arr(lambda c: c.mactree.activation_buffer_bytes))
    mactree.macs = mactree.count * mactree.width
    mactree.log2_width = np.log2(mactree.width)
    links = SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.links.bw_bytes_per_s),
                            count=arr(lambda c: c.links.count),
                            bw_bytes_per_s_per_link=arr(lambda c: c.links.bw_bytes_per_s_per_link),
                            latency_s=arr(lambda c: c.links.latency_s))
    return SimpleNamespace(
        n=len(chips), name="population", node_nm=arr(lambda c: c.node_nm, int), systolic=systolic, mactree=mactree,
        vector=SimpleNamespace(lanes=arr(lambda c: c.vector.lanes),
                               sfu_per_cycle=arr(lambda c: c.vector.sfu_per_cycle)),
        sram=SimpleNamespace(capacity_bytes=arr(lambda c: c.sram.capacity_bytes),
                             bw_bytes_per_s=arr(lambda c: c.sram.bw_bytes_per_s)),
        hbm=SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.hbm.bw_bytes_per_s),
                            capacity_bytes=arr(lambda c: c.hbm.capacity_bytes), stacks=arr(lambda c: c.hbm.stacks),
                            generation=np.array([c.hbm.generation for c in chips])),
        noc=SimpleNamespace(bw_bytes_per_s=arr(lambda c: c.noc.bw_bytes_per_s)),
        links=links, freq_hz=arr(lambda c: c.freq_hz), matrix_efficiency=arr(lambda c: c.matrix_efficiency),
        # the surface ``rates_of`` reads, as arrays
        memory_kind=np.array([c.memory_kind for c in chips]), hbm_bw_bytes_per_s=arr(lambda c: c.hbm.bw_bytes_per_s),
        link_bw_bytes_per_s=links.bw_bytes_per_s, link_latency_s=links.latency_s,
        topology=np.array([c.links.topology for c in chips]),
    )


def population_rates(ca: SimpleNamespace, runtime: RuntimeProfile, *, tp: int = 1, pp: int = 1,
                     node: NodeTier | None = None) -> Rates:
    """The runtime's rates for every design (HBM efficiency by each design's memory kind)."""
    eff = NUMPY.lookup({k: runtime.hbm(k) for k in np.unique(ca.memory_kind)}, ca.memory_kind)
    return rates_of(ca, runtime, hbm_efficiency=eff, node=node or NodeTier(), tp=tp, pp=pp)


def _max(terms) -> np.ndarray:
    return np.maximum.reduce(np.broadcast_arrays(*terms))


def op_seconds(ca: SimpleNamespace, op: Op, p: Precision, tp: int, r: Rates) -> np.ndarray:
    """Time of one instance of ``op`` on every design (faster engine for matrix work)."""
    X = NUMPY
    kind = op.kind
    if kind == GEMM or kind == ATTENTION:
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == GEMM:
                s = E.seconds(E.systolic_gemm_terms(ca, op, p, r, X), 1, r, X)
                m = E.seconds(E.mactree_gemm_terms(ca, op, p, r, X), 1, r, X)
            else:
                s = E.seconds(E.attention_terms(ca, op, p, E.SYSTOLIC, r, X), 3, r, X)
                m = E.seconds(E.attention_terms(ca, op, p, E.MACTREE, r, X), 3, r, X)
        s = np.where(ca.systolic.count > 0, s, np.inf)
        m = np.where(ca.mactree.count > 0, m, np.inf)
        return np.minimum(s, m)
    if kind == VECTOR:
        return E.seconds(E.vector_terms(ca, op, r, X), 2, r, X)
    if kind == MEMORY:
        return op.act_bytes / r.hbm_bw + r.op_overhead_s
    if kind in (ALLREDUCE, ALLGATHER, P2P):
        return collective_op_seconds(op, tp, r, X)
    raise ValueError(f"unknown operator kind {kind!r}")


def stage_seconds(ca: SimpleNamespace, ops: Sequence[Op], p: Precision, tp: int, r: Rates,
                  runtime: RuntimeProfile, memo: dict | None = None) -> np.ndarray:
    """A stage's time on every design, by the rules of ``ador.perf.stage.stage_time``. ``memo`` keeps
    each distinct operator's times across the stages of one evaluation (the decode steps of a
    generation share every operator but attention)."""
    work = np.zeros(ca.n)
    comm = np.zeros(ca.n)
    for op in ops:
        per_op = memo.get(op) if memo is not None else None
        if per_op is None:
            per_op = op_seconds(ca, op, p, tp, r)
            if memo is not None:
                memo[op] = per_op
        t = op.count * per_op
        if op.kind in COLLECTIVES:
            comm += t
        else:
            work += t
    return rules.stage_seconds(work, comm, runtime.comm_overlap, runtime.step_overhead_s, NUMPY)


def evaluate_population(chips: Sequence[AdorChip] | SimpleNamespace, model: ModelSpec, precision: Precision, *,
                        batch: int, input_len: int, output_len: int, tp: int = 1, pp: int = 1,
                        runtime: RuntimeProfile | str | None = None, p99: bool = False) -> dict[str, np.ndarray]:
    """TTFT, mean (and with ``p99`` the 99th-percentile) TBT, end-to-end latency, output tokens/s (one
    replica of tp x pp devices), memory use and whether the model fits, and the prefill and middle
    decode stages' times, for every design: the same numbers ``ador.perf.evaluate`` gives."""
    runtime = get_runtime(runtime)
    ca = chips if isinstance(chips, SimpleNamespace) else chip_arrays(chips)
    r = population_rates(ca, runtime, tp=tp, pp=pp)

    memo: dict = {}

    def stage(ops):
        return stage_seconds(ca, ops, precision, tp, r, runtime, memo)

    prefill_s = stage(prefill(model, precision, tp, batch, input_len, pp))
    ttft = runtime.request_overhead_s + prefill_s
    first, mid, last = decode_kv_points(input_len, output_len)
    t_mid = stage(decode_step(model, precision, tp, batch, mid, pp))
    if last - first < 2:
        tbt = t_mid
    else:
        tbt = mean_over_generation(stage(decode_step(model, precision, tp, batch, first, pp)), t_mid,
                                   stage(decode_step(model, precision, tp, batch, last, pp)), first, last)
    e2e = end_to_end_s(ttft, tbt, output_len)
    need = footprint(model, precision, tp, pp, batch, input_len + output_len, batch * input_len).total_bytes
    capacity = ca.hbm.capacity_bytes - runtime.reserved_bytes
    out = {"ttft_s": ttft, "tbt_s": tbt, "e2e_s": e2e, "output_tok_s": batch * output_len / e2e,
           "fits": need <= capacity, "memory_utilisation": need / capacity, "prefill_s": prefill_s,
           "decode_mid_s": t_mid}
    if p99:
        out["tbt_p99_s"] = np.maximum(stage(decode_step(model, precision, tp, batch,
                                                        p99_decode_kv(input_len, output_len), pp)), tbt)
    return out
