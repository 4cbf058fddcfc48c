"""Vectorised evaluation of a population of ADOR designs on one workload (numpy over designs).

The operator formulas are those of ``ador.perf.ador_engines`` (written once over an ops
namespace); here they run with numpy arrays holding one value per design, so a whole population
is priced in one pass per operator. Used to enumerate small search spaces exhaustively and to
score populations far faster than one design at a time.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from ador.errors import AdorError
from ador.hardware.devices import AdorChip
from ador.hardware.runtime import RuntimeProfile, get_runtime
from ador.hardware.system import NodeTier
from ador.perf import ador_engines as E
from ador.perf.evaluate import (end_to_end_s, first_token_s, generation_tbt, memory_utilisation, p99_decode_kv,
                                p99_of_steps, prefilled_tokens)
from ador.ops import Labels
from ador.perf.rules import NUMPY, Rates, rates_of
from ador.perf.stage import ops_seconds
from ador.workload.graph import decode_step, prefill
from ador.workload.memory import footprint
from ador.workload.models import ModelSpec
from ador.workload.ops import Op
from ador.workload.precision import Precision


# the fields of an AdorChip a population carries, as dotted paths; strings are kept as strings
_TEXT_FIELDS = ("systolic.dataflow", "mactree.buffer", "hbm.generation", "links.topology")


def chip_arrays(chips: Sequence[AdorChip]) -> SimpleNamespace:
    """The designs as one namespace of arrays, shaped like an AdorChip."""
    def column(path: str) -> np.ndarray:
        head, _, leaf = path.partition(".")
        if not leaf:
            return np.array([getattr(c, head) for c in chips])
        return np.array([getattr(getattr(c, head), leaf) for c in chips])
    return arrays_from_columns(column, len(chips))


def arrays_from_columns(column: Callable[[str], np.ndarray], n: int) -> SimpleNamespace:
    """The namespace ``chip_arrays`` builds, from ``column(dotted path)``: one value per design of
    that field or property of an AdorChip (``hbm.bw_bytes_per_s``, ``mactree.activation_buffer_bytes``)."""
    def arr(path: str, dtype=float) -> Any:
        if path in _TEXT_FIELDS:
            values = column(path)
            return values if isinstance(values, Labels) else Labels(values)
        return np.asarray(column(path), dtype=dtype)

    systolic = SimpleNamespace(count=arr("systolic.count"), rows=arr("systolic.rows"), cols=arr("systolic.cols"),
                               dataflow=arr("systolic.dataflow"),
                               local_sram_bytes=arr("systolic.local_sram_bytes"))
    systolic.macs = systolic.count * systolic.rows * systolic.cols
    mactree = SimpleNamespace(count=arr("mactree.count"), width=arr("mactree.width"),
                              local_buffer_bytes=arr("mactree.local_buffer_bytes"), buffer=arr("mactree.buffer"),
                              shared_buffer_bytes=arr("mactree.shared_buffer_bytes"),
                              activation_buffer_bytes=arr("mactree.activation_buffer_bytes"))
    mactree.macs = mactree.count * mactree.width
    mactree.log2_width = np.log2(mactree.width)
    links = SimpleNamespace(bw_bytes_per_s=arr("links.bw_bytes_per_s"), count=arr("links.count"),
                            bw_bytes_per_s_per_link=arr("links.bw_bytes_per_s_per_link"),
                            latency_s=arr("links.latency_s"))
    hbm = SimpleNamespace(bw_bytes_per_s=arr("hbm.bw_bytes_per_s"), capacity_bytes=arr("hbm.capacity_bytes"),
                          stacks=arr("hbm.stacks"), generation=arr("hbm.generation"))
    return SimpleNamespace(
        n=n, name="population", kind="ador", node_nm=arr("node_nm", int), systolic=systolic, mactree=mactree,
        vector=SimpleNamespace(lanes=arr("vector.lanes"), sfu_per_cycle=arr("vector.sfu_per_cycle")),
        sram=SimpleNamespace(capacity_bytes=arr("sram.capacity_bytes"), bw_bytes_per_s=arr("sram.bw_bytes_per_s")),
        hbm=hbm, noc=SimpleNamespace(bw_bytes_per_s=arr("noc.bw_bytes_per_s")),
        links=links, freq_hz=arr("freq_hz"), matrix_efficiency=arr("matrix_efficiency"),
        dies=arr("dies", int), die_to_die_bw_bytes_per_s=arr("die_to_die_bw_bytes_per_s"),
        # the surface ``rates_of`` reads, as arrays
        memory_kind=hbm.generation, hbm_bw_bytes_per_s=hbm.bw_bytes_per_s,
        link_bw_bytes_per_s=links.bw_bytes_per_s, link_latency_s=links.latency_s, topology=arr("links.topology"),
    )


def subset(ns: SimpleNamespace, keep: np.ndarray) -> SimpleNamespace:
    """The designs of a population namespace where ``keep`` is true."""
    out = SimpleNamespace()
    for key, value in vars(ns).items():
        if isinstance(value, SimpleNamespace):
            setattr(out, key, subset(value, keep))
        elif isinstance(value, (np.ndarray, Labels)) and value.shape == keep.shape:
            setattr(out, key, value[keep])
        else:
            setattr(out, key, value)
    out.n = int(keep.sum())
    return out


def by_dies(ca: SimpleNamespace,
            score: Callable[[SimpleNamespace], dict[str, np.ndarray]]) -> dict[str, np.ndarray] | None:
    """``score`` run on the designs of each die count apart, the results put back in the designs'
    order; None when every design has the same die count (then score the population whole). A die
    count shapes the operator graph (its die-level collectives, the KV heads each die replicates).
    Designs whose die count cannot split the model (``shard`` refuses it) get NaN, so a caller
    scores them one by one for the reason; if no die count can, the first refusal is raised."""
    counts = np.unique(ca.dies)
    if len(counts) < 2:
        return None
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    refused: AdorError | None = None
    for n in counts:
        keep = ca.dies == n
        try:
            parts.append((keep, score(subset(ca, keep))))
        except AdorError as err:
            refused = refused or err
    if not parts:
        assert refused is not None
        raise refused
    out: dict[str, np.ndarray] = {}
    for keep, result in parts:
        for key, values in result.items():
            values = np.asarray(values)
            if key not in out:
                out[key] = np.full(ca.n, np.nan) if values.dtype.kind == "f" else np.zeros(ca.n, dtype=values.dtype)
            out[key][keep] = values
    return out


def population_rates(ca: SimpleNamespace, runtime: RuntimeProfile, *, tp: int = 1, pp: int = 1,
                     node: NodeTier | None = None) -> Rates:
    """The runtime's rates for every design (HBM efficiency by each design's memory kind)."""
    kinds = ca.memory_kind.labels if isinstance(ca.memory_kind, Labels) else np.unique(ca.memory_kind)
    eff = NUMPY.lookup({k: runtime.hbm(k) for k in kinds}, ca.memory_kind)
    return rates_of(ca, runtime, hbm_efficiency=eff, node=node or NodeTier(), tp=tp, pp=pp)


def op_seconds(ca: SimpleNamespace, op: Op, p: Precision, tp: int, r: Rates) -> np.ndarray:
    """Time of one instance of ``op`` on every design: ``ador_engines.op_seconds`` on arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.broadcast_to(E.op_seconds(ca, op, p, tp, r, NUMPY), (ca.n,))


def stage_seconds(ca: SimpleNamespace, ops: Sequence[Op], p: Precision, tp: int, r: Rates,
                  runtime: RuntimeProfile, memo: dict | None = None) -> np.ndarray:
    """A stage's time on every design, by the rule one design's stage follows
    (``ador.perf.stage.ops_seconds``). ``memo`` keeps each distinct operator's times across the
    stages of one evaluation (the decode steps of a generation share every operator but attention)."""
    memo = {} if memo is None else memo

    def seconds_of(op: Op) -> np.ndarray:
        per_op = memo.get(op)
        if per_op is None:
            per_op = memo[op] = op_seconds(ca, op, p, tp, r)
        return per_op
    return np.broadcast_to(ops_seconds(ops, seconds_of, runtime, NUMPY), (ca.n,))


def evaluate_population(chips: Sequence[AdorChip] | SimpleNamespace, model: ModelSpec, precision: Precision, *,
                        batch: int, input_len: int, output_len: int, tp: int = 1, pp: int = 1,
                        runtime: RuntimeProfile | str | None = None, p99: bool = False) -> dict[str, np.ndarray]:
    """TTFT, mean (and with ``p99`` the 99th-percentile) TBT, end-to-end latency, output tokens/s (one
    replica of tp x pp devices), memory use and whether the model fits, and the prefill, first-token
    decode step (``prefilled_tokens``; zero where the prefill emits the first token) and middle
    decode stages' times, for every design: the same numbers ``ador.perf.evaluate`` gives."""
    runtime = get_runtime(runtime)
    ca = chips if isinstance(chips, SimpleNamespace) else chip_arrays(chips)
    split = by_dies(ca, lambda part: evaluate_population(part, model, precision, batch=batch, input_len=input_len,
                                                         output_len=output_len, tp=tp, pp=pp, runtime=runtime,
                                                         p99=p99))
    if split is not None:
        return split
    r = population_rates(ca, runtime, tp=tp, pp=pp)

    memo: dict = {}
    dies = int(ca.dies[0]) if ca.n else 1

    def stage(ops):
        return stage_seconds(ca, ops, precision, tp, r, runtime, memo)

    prompt = prefilled_tokens(runtime, input_len)
    prefill_s = stage(prefill(model, precision, tp, batch, prompt, pp, dies)) if prompt else np.zeros(ca.n)
    first_step_s = stage(decode_step(model, precision, tp, batch, input_len, pp, dies)) \
        if runtime.first_token_from_decode else np.zeros(ca.n)
    ttft = first_token_s(runtime.request_overhead_s, prefill_s, first_step_s)
    tbt, t_mid = generation_tbt(lambda kv: stage(decode_step(model, precision, tp, batch, kv, pp, dies)), input_len,
                                output_len)
    e2e = end_to_end_s(ttft, tbt, output_len)
    need = footprint(model, precision, tp, pp, batch, input_len, output_len, dies).total_bytes
    capacity = ca.hbm.capacity_bytes - runtime.reserved_bytes
    out = {"ttft_s": ttft, "tbt_s": tbt, "e2e_s": e2e, "output_tok_s": batch * output_len / e2e,
           "fits": need <= capacity, "memory_utilisation": memory_utilisation(need, capacity, NUMPY),
           "prefill_s": prefill_s, "first_step_s": first_step_s, "decode_mid_s": t_mid}
    if p99:
        out["tbt_p99_s"] = p99_of_steps(stage(decode_step(model, precision, tp, batch,
                                                          p99_decode_kv(input_len, output_len), pp, dies)), tbt, NUMPY)
    return out
