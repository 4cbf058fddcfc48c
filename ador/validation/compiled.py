"""Measured rows compiled for fitting: the same formulas as ``predict``, every row at once.

A fit prices every row thousands of times with different efficiencies. Everything a row's
prediction needs that does not depend on the fitted constants (its operator graphs, each
operator's full-efficiency compute, memory and dequantisation seconds, its collectives' payloads)
is computed once here; an evaluation then applies the constants to all operators in a few numpy
passes, through the very functions the scalar path uses (``gpu.combine``, ``collective_seconds``,
``stage_seconds``, ``mean_over_generation``, ``end_to_end_s``). A test holds the two paths equal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, cast

import numpy as np

from ador.errors import AdorError, ConfigError
from ador.hardware import PRESETS, Device, GpuEfficiency, System
from ador.hardware.runtime import RuntimeProfile
from ador.perf import gpu as G
from ador.perf.collectives import RING, collective_seconds, reach
from ador.perf.evaluate import (capacity_bytes, decode_kv_points, end_to_end_s, first_token_s, mean_over_generation,
                                prefilled_tokens)
from ador.perf.rules import NUMPY, p2p_cross_fraction, stage_seconds
from ador.validation.data import Measurement
from ador.validation.harness import harness_for, host_timed_seconds, host_timed_terms
from ador.validation.predict import LAYER_METRICS, METRICS, RowResult, layer_metric_ops, profile_for
from ador.workload import decode_step, get_model, get_precision, prefill
from ador.workload.memory import footprint
from ador.workload.ops import ALLGATHER, ALLREDUCE, ATTENTION, COLLECTIVES, P2P

_KINDS = (ALLREDUCE, ALLGATHER, P2P)


@dataclass
class _Ops:
    """Operators of all stages, one entry each (arrays once compiled)."""
    stage: list
    row: list
    count: list
    compute: list
    memory: list
    dequant: list
    floor: list
    cast: list
    fp8: list


class CompiledRows:
    """``rows`` on the GPU presets ``devices``, ready to be priced with any efficiencies and runtimes."""

    def __init__(self, rows: Sequence[Measurement], devices: Mapping[str, Device] = PRESETS,
                 kernel_rules=lambda m: None) -> None:
        """``kernel_rules(row)``: the runtime profile whose decode-attention kernel rules (KV reads per
        query group, KV split) price the row -- facts of its stack, not fitted constants; None: the
        defaults (shared KV reads, split)."""
        self.rows = list(rows)
        self.kernel_rules = kernel_rules
        self.skipped: dict[int, str] = {}
        ops = _Ops([], [], [], [], [], [], [], [], [])
        coll: dict[str, dict[str, list]] = {k: {f: [] for f in ("stage", "row", "count", "bytes", "tp", "bw",
                                                                "hop", "direct")} for k in _KINDS}
        self.stage_step: list[bool] = []        # does the stage pay the per-step overhead
        self.stage_rows: list[int] = []         # the row each stage belongs to
        self.plan: list[tuple | None] = []      # per row: (metric, stage indices, numbers); None: skipped
        self.devices = devices
        for i, m in enumerate(self.rows):
            try:
                self.plan.append(self._compile(i, m, devices, ops, coll))
            except AdorError as err:
                self.skipped[i] = str(err)
                self.plan.append(None)
        self.n_stages = len(self.stage_step)
        self.ops = {f: np.array(getattr(ops, f), dtype=float) for f in ("count", "compute", "memory", "dequant",
                                                                       "floor", "cast")}
        self.ops["stage"] = np.array(ops.stage, dtype=int)
        self.ops["row"] = np.array(ops.row, dtype=int)
        self.ops["fp8"] = np.array(ops.fp8, dtype=bool)
        self.coll = {k: {f: np.array(v, dtype=float if f not in ("stage", "row") else int) for f, v in d.items()}
                     for k, d in coll.items()}
        self.step_mask = np.array(self.stage_step, dtype=float)
        self.stage_of_row = np.array(self.stage_rows, dtype=int)
        self._group_rows()

    def _group_rows(self) -> None:
        """Index arrays that let an evaluation run without a loop over rows: the distinct
        (hardware, software) pairs whose constants a row takes, and the rows of each kind of metric."""
        keys: dict[tuple[str, str], int] = {}
        self.key_rows: list[Measurement] = []          # one row standing for each pair
        key_of = []
        for i, m in enumerate(self.rows):
            k = (m.hardware, m.software)        # the profile (and its release range) is per software
            if self.plan[i] is None:
                key_of.append(-1)                      # skipped: the all-zero last line
                continue
            if k not in keys:
                keys[k] = len(self.key_rows)
                self.key_rows.append(m)
            key_of.append(keys[k])
        self.key_of_row = np.array(key_of, dtype=int)
        layer, ttft, gen, host_timed = [], [], [], []
        for i, plan in enumerate(self.plan):
            if plan is None:
                continue
            metric, stages, nums = plan
            if metric in LAYER_METRICS:
                layer.append((i, stages[0], nums[0]))
                host_timed.append(nums[1:])
            elif metric == "ttft_ms":
                ttft.append((i, stages[0], stages[1]))
            else:
                gen.append((i, *stages, *nums, self.rows[i].output_len))
        self.layer = np.array(layer, dtype=int).reshape(-1, 3)
        # per layer row: a host-timed harness's round trips (s) and the kernels whose fixed cost they replace
        self.layer_host_timed = np.array(host_timed, dtype=float).reshape(-1, 2)
        self.ttft = np.array(ttft, dtype=int).reshape(-1, 3)
        g = np.array(gen, dtype=float).reshape(-1, 11)
        self.gen: dict[str, np.ndarray] = {
            "row": g[:, 0].astype(int), "pre": g[:, 1:3].astype(int), "d": g[:, 3:6].astype(int), "first": g[:, 6],
            "last": g[:, 7], "tokens": g[:, 8], "devices": g[:, 9], "out": g[:, 10]}
        metric_of = np.array([self.rows[i].metric for i in self.gen["row"]], dtype=object)
        self.gen_masks = {name: metric_of == name for name in ("tbt_ms", "decode_tok_s_per_user", "e2e_ms",
                                                               "output_tok_s", "output_tok_s_per_gpu")}

    def _compile(self, i: int, m: Measurement, devices, ops: _Ops, coll) -> tuple:
        if m.hardware not in devices:
            raise ConfigError("hardware", m.hardware, "unknown hardware")
        if m.metric not in METRICS:
            raise ConfigError("metric", m.metric, f"unsupported metric (known: {', '.join(METRICS)})")
        device = devices[m.hardware]
        if device.kind != "gpu":
            raise ConfigError("hardware", m.hardware, "compiled rows are GPU rows")
        model, precision = get_model(m.model), get_precision(m.precision)
        system = System.of(device, tp=m.tp, pp=m.pp, devices=m.devices)
        rules = self.kernel_rules(m)
        kv_reads, kv_split, per_row, via_l2, from_decode, fp8_cast = (
            (rules.decode_kv_reads, rules.decode_kv_split, rules.dequant_per_row, rules.kv_rereads_from_l2,
             rules.first_token_from_decode, rules.fp8_cast_kernel) if rules is not None
            else (None, True, (), False, False, False))

        def stage(op_list, step: bool) -> int:
            s = len(self.stage_step)
            self.stage_step.append(step)
            self.stage_rows.append(i)
            for op in op_list:
                if op.kind in COLLECTIVES:
                    for share, (bw, hop, direct) in self._tiers(op, system):
                        c = coll[op.kind]
                        for f, v in (("stage", s), ("row", i), ("count", op.count * share), ("bytes", op.comm_bytes),
                                     ("tp", m.tp), ("bw", bw), ("hop", hop), ("direct", direct)):
                            c[f].append(v)
                    continue
                compute, memory, dequant, floor, cast = G.op_terms(device, op, precision, kv_reads, kv_split,
                                                                   per_row, via_l2, fp8_cast)
                for f, v in (("stage", s), ("row", i), ("count", op.count), ("compute", compute),
                             ("memory", memory), ("dequant", dequant), ("floor", floor), ("cast", cast),
                             ("fp8", precision.mac_dtype(attention=op.kind == ATTENTION) == "fp8")):
                    getattr(ops, f).append(v)
            return s

        harness = harness_for(m, model, LAYER_METRICS)
        if m.metric in LAYER_METRICS:
            layer_ops = layer_metric_ops(m, model, precision)
            calls_s, kernels = host_timed_terms(harness, layer_ops) if harness is not None else (0.0, 0.0)
            return (m.metric, (stage(layer_ops, False),), (model.n_layers, calls_s, kernels))
        need = footprint(model, precision, m.tp, m.pp, m.batch, m.input_len, m.output_len)
        cap = capacity_bytes(system)
        if need.total_bytes > cap:
            raise ConfigError("batch", m.batch, f"does not fit: needs {need.total_bytes / 2**30:.1f} GiB "
                                                f"per device of {cap / 2**30:.1f}")
        first, mid, last = decode_kv_points(m.input_len, m.output_len)
        # the first token: the prefill pass (of all but the last prompt token, and then a decode step
        # over it, under a runtime whose first token comes from decode: ``evaluate.prefilled_tokens``);
        # -1: no such stage
        pre = first_step = -1
        if m.metric not in ("tbt_ms", "decode_tok_s_per_user"):
            prompt = prefilled_tokens(rules, m.input_len) if rules is not None else m.input_len
            if prompt:
                pre = stage(prefill(model, precision, m.tp, m.batch, prompt, m.pp), True)
            if from_decode:
                first_step = stage(decode_step(model, precision, m.tp, m.batch, m.input_len, m.pp), True)
        decodes = (-1, -1, -1) if m.metric == "ttft_ms" else \
            tuple(stage(decode_step(model, precision, m.tp, m.batch, kv, m.pp), True) for kv in (first, mid, last))
        return (m.metric, (pre, first_step, *decodes),
                (first, last, system.replicas * m.batch * m.output_len, system.devices))

    @staticmethod
    def _tiers(op, system: System) -> list[tuple[float, tuple[float, float, int]]]:
        """(share of the operator, (peak bandwidth, hop latency, reach)) per tier it uses, by the rules
        of ``ador.perf.rules.rates_of`` and ``collective_op_seconds``."""
        d, node = system.device, system.node
        link = (d.link_bw_bytes_per_s, d.link_latency_s, reach(d.topology))
        net = (node.bw_bytes_per_s_per_device, node.latency_s, RING)
        if system.tp > node.devices_per_node:
            link = (min(link[0], net[0]), node.latency_s, RING)
        cross = p2p_cross_fraction(system.tp, system.pp, node.devices_per_node) if op.kind == P2P else 0.0
        return [(share, tier) for share, tier in ((1.0 - cross, link), (cross, net)) if share]

    def predict(self, efficiencies: Mapping[str, GpuEfficiency],
                runtimes: Mapping[str, RuntimeProfile]) -> np.ndarray:
        """Every row's predicted value (NaN for skipped rows) under these constants."""
        n = len(self.rows)
        per_key = np.zeros((len(self.key_rows) + 1, 11))     # the last line: rows that are skipped
        for k, m in enumerate(self.key_rows):
            rt, _ = profile_for(m, runtimes)
            eff = efficiencies[m.hardware]
            device = self.devices[m.hardware]
            per_key[k] = (eff.tensor, eff.tensor_fp8, eff.dequant, rt.hbm(device.memory_kind), rt.overlap,
                          rt.op_overhead_s(device.freq_hz), rt.link_efficiency, rt.collective_latency_s,
                          rt.step_overhead_s, rt.comm_overlap, rt.request_overhead_s)
        per_row = per_key[self.key_of_row]
        o = self.ops
        r = per_row[o["row"]]
        tensor = np.where(o["fp8"], r[:, 1], r[:, 0])
        tensor = np.where(o["compute"] > 0, tensor, 1.0)
        t = G.combine(o["compute"], o["memory"], o["dequant"], tensor, r[:, 3], r[:, 2], r[:, 4], r[:, 5], NUMPY,
                      memory_floor=o["floor"], cast=o["cast"])
        work = np.bincount(o["stage"], weights=t * o["count"], minlength=self.n_stages)
        comm = np.zeros(self.n_stages)
        for kind, c in self.coll.items():
            if not len(c["row"]):
                continue
            rc = per_row[c["row"]]
            tc = collective_seconds(kind, cast(Any, c["bytes"]), cast(Any, c["tp"]), c["bw"] * rc[:, 6],
                                    c["hop"] + rc[:, 7], c["direct"], rc[:, 5], NUMPY)   # arrays, one per row
            comm += np.bincount(c["stage"], weights=tc * c["count"], minlength=self.n_stages)
        stage_constants = per_row[self.stage_of_row]
        total = stage_seconds(work, comm, stage_constants[:, 9], stage_constants[:, 8] * self.step_mask, NUMPY)
        out = np.full(n, np.nan)
        rows, stages, layers = self.layer.T
        calls_s, kernels = self.layer_host_timed.T
        out[rows] = host_timed_seconds(total[stages], calls_s, kernels, per_row[rows, 5]) / layers * 1e3
        # a stage index of -1 (no such stage: no prefill pass, or no first decode step) costs nothing
        padded = np.append(total, 0.0)
        rows, pre, first_step = self.ttft.T
        out[rows] = first_token_s(per_row[rows, 10], padded[pre], padded[first_step]) * 1e3
        g = self.gen
        if len(g["row"]):
            d = total[g["d"]]
            tbt = mean_over_generation(d[:, 0], d[:, 1], d[:, 2], g["first"], g["last"], NUMPY)
            # rows that time no prefill (tbt_ms, decode_tok_s_per_user) have no first-token stages, and
            # their metric does not read the first token
            pre = padded[g["pre"]]
            e2e = end_to_end_s(first_token_s(per_row[g["row"], 10], pre[:, 0], pre[:, 1]), tbt, g["out"])
            masks = self.gen_masks
            for name, value in (("tbt_ms", tbt * 1e3), ("decode_tok_s_per_user", 1.0 / tbt), ("e2e_ms", e2e * 1e3),
                                ("output_tok_s", g["tokens"] / e2e),
                                ("output_tok_s_per_gpu", g["tokens"] / e2e / g["devices"])):
                out[g["row"][masks[name]]] = value[masks[name]]
        return out

    def results(self, efficiencies: Mapping[str, GpuEfficiency],
                runtimes: Mapping[str, RuntimeProfile]) -> list[RowResult]:
        values = self.predict(efficiencies, runtimes)
        out = []
        for i, m in enumerate(self.rows):
            if i in self.skipped:
                out.append(RowResult(m, skipped=self.skipped[i]))
            else:
                out.append(RowResult(m, predicted=float(values[i]), extrapolated=profile_for(m, runtimes)[1]))
        return out
