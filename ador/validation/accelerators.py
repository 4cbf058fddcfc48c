"""The design side of every ratio, checked: published dataflow accelerators expressed as ADOR designs.

Each row of ``accelerators.csv`` names a design file (``ador/data/accelerators/``: AWS NeuronCore-v2 of
Inferentia2 and Trainium1, HyperAccel's LPU) and a measured or published latency of a model on it. The
row is predicted by the same model that scores searched designs, under the runtime profile of the
row's software when one is fitted, else the ``default`` profile (the median of the fitted GPU stacks),
which makes the prediction an extrapolation: no constant is fitted to these rows.

A tensor-parallel degree that does not divide the model's heads (TP 24 on Inferentia2) means the
runtime padded them; the row is predicted for the padded model (``padded_heads``). All devices of a
row sit in one node (one Inf2.48xlarge or Trn1.32xlarge instance) unless ``devices_per_node`` says
otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ador.errors import AdorError, ConfigError
from ador.hardware import System, load_device
from ador.hardware.system import NodeTier
from ador.hardware.runtime import RuntimeProfile, runtime_profiles
from ador.perf import evaluate
from ador.validation.data import Measurement, check_unit, csv_columns, positive_number, read_rows
from ador.validation.predict import RowResult, ValidationReport, profile_for, summarise
from ador.workload import get_model, get_precision
from ador.workload.models import padded_heads

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_ACCELERATORS = DATA_DIR / "accelerators.csv"
DESIGNS_DIR = DATA_DIR / "accelerators"
METRICS = ("ttft_ms", "tbt_ms", "decode_tok_s_per_user")
_INTS = ("devices", "tp", "pp", "batch", "input_len", "output_len")


def is_accelerator_file(path: str | Path) -> bool:
    """Does the CSV carry the accelerator schema (a ``design`` column)?"""
    return "design" in csv_columns(path)


ACCELERATOR_REQUIRED = ("id", "source", "design", "devices", "model", "precision", "tp", "batch", "input_len",
                        "output_len", "metric", "value", "unit")


@dataclass(frozen=True)
class AcceleratorRow:
    measurement: Measurement
    design: Path
    devices_per_node: int

    @property
    def id(self) -> str:
        return self.measurement.id


def load_accelerator_rows(path: str | Path = DEFAULT_ACCELERATORS) -> list[AcceleratorRow]:
    """Each row with its design file (relative to the CSV's ``accelerators/`` folder) and devices per
    node. The file is read by the rules of the measurements' files (ador/validation/data.py):
    every column present, ids unique, counts positive whole numbers."""
    path = Path(path)

    def parse(raw: Mapping[str, str | None], where: str) -> AcceleratorRow:
        values: dict[str, Any] = {}
        for name in ("id", "source", "software", "model", "precision", "metric", "unit"):
            values[name] = (raw.get(name) or "").strip()
        values["hardware"] = (raw.get("design") or "").strip()
        if not values["hardware"]:
            raise ConfigError(f"{where}:design", "", "names no design file")
        for name in _INTS:
            values[name] = positive_number(raw, name, where, integer=True, optional=name == "pp") or 1
        values["value"] = positive_number(raw, "value", where)
        check_unit(values["metric"], values["unit"], where)
        per_node = positive_number(raw, "devices_per_node", where, integer=True, optional=True)
        return AcceleratorRow(Measurement(**values), path.parent / "accelerators" / values["hardware"],
                              values["devices"] if per_node is None else per_node)

    return read_rows(path, ACCELERATOR_REQUIRED, parse)


def predict_accelerator(m: Measurement, design: Path, runtime: RuntimeProfile, devices_per_node: int) -> float:
    if m.metric not in METRICS:
        raise ConfigError("metric", m.metric, f"unsupported metric (known: {', '.join(METRICS)})")
    device = load_device(design)
    model = padded_heads(get_model(m.model), m.tp)
    system = System.of(device, tp=m.tp, pp=m.pp, devices=m.devices, runtime=runtime,
                       node=NodeTier(devices_per_node=devices_per_node))
    r = evaluate(system, model, get_precision(m.precision), batch=m.batch, input_len=m.input_len,
                 output_len=m.output_len, breakdown=False)
    if not r.fits:
        raise ConfigError("batch", m.batch, f"does not fit: needs {r.memory.total_bytes / 2**30:.1f} GiB per device "
                                            f"of {r.capacity_bytes / 2**30:.1f}")
    return {"ttft_ms": r.ttft_s * 1e3, "tbt_ms": r.tbt_s * 1e3, "decode_tok_s_per_user": 1.0 / r.tbt_s}[m.metric]


def validate_accelerators(path: str | Path = DEFAULT_ACCELERATORS,
                          runtimes: Mapping[str, RuntimeProfile] | None = None,
                          profile: str | None = None) -> ValidationReport:
    """Every row predicted under its stack's profile (or ``profile``, e.g. ``ador-paper``, for all)."""
    runtimes = runtime_profiles() if runtimes is None else runtimes
    if profile is not None and profile not in runtimes:
        raise ConfigError("--profile", profile, f"unknown runtime profile (known: {', '.join(sorted(runtimes))})")
    results = []
    for row in load_accelerator_rows(path):
        m = row.measurement
        try:
            if profile is not None:
                runtime, extrapolated = runtimes[profile], True
            else:
                runtime, extrapolated = profile_for(m, runtimes)
            results.append(RowResult(m, predicted=predict_accelerator(m, row.design, runtime, row.devices_per_node),
                                     extrapolated=extrapolated))
        except AdorError as err:
            results.append(RowResult(m, skipped=str(err)))
    return ValidationReport(tuple(results), summarise(results))
