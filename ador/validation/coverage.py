"""Does a measured row stand behind a baseline's number? The measured rows nearest to a question
(same hardware and metric family, the closest model size and batch), with the model's error on
each, so a report can say whether a GPU's figure is interpolated or extrapolated.

A second, independent check (``serving_coverage``): the shipped serving runs (never fitted on) of
the same GPU, model size and tensor-parallel layout under a closed loop whose clients per replica
are near the quoted batch, replayed by the simulator, so a report can quote how far the GPU's time
per output token is off where it was measured at that size and load.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence, cast

from ador.errors import AdorError
from ador.validation.data import Measurement
from ador.validation.predict import RowResult, predict_rows
from ador.validation.serving import ServingMeasurement, ServingRowResult, predict_serving
from ador.workload import get_model

# Which measured metrics speak for which quoted quantity.
FAMILIES = {"decode": ("tbt_ms", "decode_tok_s_per_user", "decode_layer_ms", "decode_shard_ms"),
            "prefill": ("ttft_ms", "prefill_layer_ms", "prefill_shard_ms"),
            "throughput": ("output_tok_s", "output_tok_s_per_gpu", "e2e_ms")}
SAME_SIZE_FACTOR = 2.0     # a model within this factor in (active) parameters counts as the same size
SAME_LOAD_FACTOR = 2.0     # a closed loop whose clients per replica are within this factor of the batch
SERVING_DECODE_METRIC = "tpot_mean_ms"   # the serving metric that speaks for a decode step


def family_of(metric: str) -> str:
    for family, metrics in FAMILIES.items():
        if metric in metrics:
            return family
    raise KeyError(metric)


@dataclass(frozen=True)
class Coverage:
    """The measured rows nearest to (hardware, model size, batch) in one metric family."""
    hardware: str
    family: str
    params_b: float                 # the question's model size, billions of parameters
    batch: int
    rows: tuple[RowResult, ...]     # rows of models of the same size (within a factor of 2), nearest batch first

    @property
    def max_batch(self) -> int:
        return max((r.row.batch for r in self.rows), default=0)

    @property
    def covered(self) -> bool:
        """A row of the same size at this batch or beyond, and one at or below it: interpolation."""
        batches = [r.row.batch for r in self.rows]
        return bool(batches) and min(batches) <= self.batch <= max(batches)

    def sentence(self, label: str) -> str:
        if not self.rows:
            return (f"No measured {self.family} row of {self.hardware} covers a model of about {self.params_b:.0f}B "
                    f"parameters, so {label} rests on the model's extrapolation from other sizes.")
        near = self.rows[0]
        err = f"model error {near.error_pct:+.0f}%" if near.error_pct is not None else "not predicted"
        where = (f"the nearest measured row is {near.row.model} at batch {near.row.batch} ({near.row.source}, "
                 f"{near.row.metric}, {err})")
        if self.covered:
            return f"{label} is interpolated between measured rows of {self.hardware}: {where}."
        side = "beyond" if self.batch > self.max_batch else "below"
        return (f"{label} is an extrapolation: the measured {self.family} rows of {self.hardware} for models of "
                f"about {self.params_b:.0f}B parameters stop at batch {self.max_batch}, {side} the quoted batch "
                f"{self.batch}; {where}.")


def _params_b(model: str) -> float | None:
    try:
        return get_model(model).active_params() / 1e9
    except AdorError:       # a row's model outside the zoo: it cannot speak for a size
        return None


def coverage(rows: Sequence[Measurement], *, hardware: str, family: str, params_b: float, batch: int) -> Coverage:
    """The rows of ``hardware`` in ``family`` for models within a factor of 2 of ``params_b``,
    nearest batch first, each with the shipped model's prediction."""
    metrics = FAMILIES[family]
    near = [r for r in rows if r.hardware == hardware and r.metric in metrics and _same_size(r.model, params_b)]
    near.sort(key=lambda r: (abs(math.log2(r.batch / batch)), r.id))
    return Coverage(hardware, family, params_b, batch, tuple(predict_rows(near)) if near else ())


def _same_size(model: str, params_b: float) -> bool:
    size = _params_b(model)
    return size is not None and abs(math.log2(size / params_b)) <= math.log2(SAME_SIZE_FACTOR)


@dataclass(frozen=True)
class ServingCoverage:
    """Measured serving runs of (hardware, model size, TP) at a load near ``batch``, each with the
    simulator's prediction of its time per output token."""
    hardware: str
    params_b: float
    tp: int
    batch: int
    precision: str                           # the question's: runs at another precision are named as such
    results: tuple[ServingRowResult, ...]    # nearest load first; rows the simulator could not run included

    @property
    def priced(self) -> list[ServingRowResult]:
        """The runs the simulator could replay."""
        return [r for r in self.results if r.error_pct is not None]

    @property
    def errors_pct(self) -> list[float]:
        return [cast(float, r.error_pct) for r in self.priced]

    @property
    def other_precisions(self) -> list[str]:
        """The runs' precisions other than the question's."""
        return sorted({r.row.precision for r in self.priced} - {self.precision})

    def cell(self) -> str:
        """``+11% (fp8; -1% to +31%, 9 runs)``: the median signed error, the runs' precision where it is
        not the question's, the range and the runs."""
        errors = sorted(self.errors_pct)
        if not errors:
            return "no runs"
        median = statistics.median(errors)
        n_other = sum(r.row.precision != self.precision for r in self.priced)
        other = "" if not n_other else f"{', '.join(self.other_precisions)} runs; " if n_other == len(errors) \
            else f"{n_other} of them {', '.join(self.other_precisions)}; "
        spread = f"{errors[0]:+.0f}% to {errors[-1]:+.0f}%, " if len(errors) > 1 else ""
        return f"{median:+.0f}% ({other}{spread}{len(errors)} run{'s' if len(errors) > 1 else ''})"

    def sentence(self, label: str) -> str:
        lo, hi = self.batch / SAME_LOAD_FACTOR, self.batch * SAME_LOAD_FACTOR
        where = (f"closed-loop serving runs of {self.hardware} at TP{self.tp} with a model of about "
                 f"{self.params_b:.0f}B parameters and {lo:.0f}-{hi:.0f} clients per replica")
        if not self.errors_pct:
            return f"No measured {where} exist in the shipped serving files, so {label} has no held-out serving check."
        done = self.priced
        clients = sorted({round(_clients_per_replica(r.row)) for r in done})
        stacks = sorted({r.row.software.split(" (")[0] for r in done})
        precisions = sorted({r.row.precision for r in done})
        default = sum(r.extrapolated for r in done)
        profiles = ("the `default` runtime profile (no fitted profile covers their releases)" if default == len(done)
                    else f"their stacks' fitted profiles ({default} of them the `default` one)" if default
                    else "their stacks' fitted profiles")
        question = "" if precisions == [self.precision] else f", where the question is {self.precision}"
        return (f"{label} is checked against {len(done)} held-out {where} ({', '.join(stacks)}; "
                f"{', '.join(map(str, clients))} clients; {', '.join(precisions)}{question}): priced with "
                f"{profiles}, their mean time per output token comes out with a median error of {self.cell()}; "
                "above zero the simulator is slower than measured.")


def _clients_per_replica(row: ServingMeasurement) -> float:
    replicas = max(1, row.devices // (row.tp * row.pp))
    return (row.concurrency or 0) / replicas


def serving_coverage(rows: Sequence[ServingMeasurement], *, hardware: str, params_b: float, tp: int,
                     batch: int, precision: str) -> ServingCoverage:
    """The closed-loop runs of ``hardware`` at tensor parallelism ``tp`` (no pipeline stages) for
    models within a factor of 2 of ``params_b`` whose clients per replica, the decode batch they keep
    running, are within a factor of 2 of ``batch``: their time per output token, predicted. Runs at
    any precision count (the reports name those not at ``precision``, the question's)."""
    near = [r for r in rows
            if r.hardware == hardware and r.metric == SERVING_DECODE_METRIC and r.tp == tp and r.pp == 1
            and r.policy == "closed" and (r.concurrency or 0) > 0 and _same_size(r.model, params_b)
            and abs(math.log2(_clients_per_replica(r) / batch)) <= math.log2(SAME_LOAD_FACTOR)]
    near.sort(key=lambda r: (abs(math.log2(_clients_per_replica(r) / batch)), r.id))
    return ServingCoverage(hardware, params_b, tp, batch, precision, tuple(predict_serving(near)) if near else ())
