"""Does a measured row stand behind a baseline's number? The measured rows nearest to a question
(same hardware and metric family, the closest model size and batch), with the model's error on
each, so a report can say whether a GPU's figure is interpolated or extrapolated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ador.errors import AdorError
from ador.validation.data import Measurement
from ador.validation.predict import RowResult, predict_rows
from ador.workload import get_model

# Which measured metrics speak for which quoted quantity.
FAMILIES = {"decode": ("tbt_ms", "decode_tok_s_per_user", "decode_layer_ms", "decode_shard_ms"),
            "prefill": ("ttft_ms", "prefill_layer_ms", "prefill_shard_ms"),
            "throughput": ("output_tok_s", "output_tok_s_per_gpu", "e2e_ms")}
SAME_SIZE_FACTOR = 2.0     # a model within this factor in (active) parameters counts as the same size


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
    near = []
    for r in rows:
        if r.hardware != hardware or r.metric not in metrics:
            continue
        size = _params_b(r.model)
        if size is None or abs(math.log2(size / params_b)) > math.log2(SAME_SIZE_FACTOR):
            continue
        near.append(r)
    near.sort(key=lambda r: (abs(math.log2(r.batch / batch)), r.id))
    return Coverage(hardware, family, params_b, batch, tuple(predict_rows(near)) if near else ())
