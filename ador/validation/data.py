"""Measured operator/stage rows: the schema of ``shared/validation/measured.csv`` and its loader.

The schema gained two columns, ``software`` (stack and version that produced the row) and ``pp``
(pipeline-parallel degree); files without them still load: ``pp`` is then 1 and the software is
the stack the source is known to have used (``SOFTWARE_OF_SOURCE``), or unknown.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from ador.config import MAX_INT
from ador.errors import ConfigError

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "measured.csv"
REQUIRED = ("id", "source", "hardware", "devices", "model", "precision", "tp", "batch", "input_len", "output_len",
            "metric", "value", "unit")
OPTIONAL = ("software", "pp")
COLUMNS = ("id", "source", "software", "hardware", "devices", "model", "precision", "tp", "pp", "batch",
           "input_len", "output_len", "metric", "value", "unit")
_INTS = ("devices", "tp", "pp", "batch", "input_len", "output_len")

# Stacks behind the sources of files written before the software column existed.
SOFTWARE_OF_SOURCE = {
    "TRTLLM_PERF_v090": "tensorrt-llm 0.9.0",       # C++ runtime, static-batch benchmark
    "GPTFAST_README": "gpt-fast",                    # torch.compile with CUDA graphs
    "SPLITWISE_PERFMODEL": "splitwise",              # the Splitwise profiling harness
    "LLMCOMPASS_A100": "pytorch 2.0 (LLMCompass run_on_gpu)",   # operators timed one by one (validation.harness)
}
UNKNOWN_SOFTWARE = "unknown"


@dataclass(frozen=True, slots=True)
class Measurement:
    id: str
    source: str
    hardware: str
    devices: int
    model: str
    precision: str
    tp: int
    batch: int
    input_len: int
    output_len: int
    metric: str
    value: float
    unit: str
    software: str = UNKNOWN_SOFTWARE
    pp: int = 1

    @property
    def stack(self) -> str:
        """The software family whose runtime profile predicts this row (``tensorrt-llm 0.9.0`` ->
        ``tensorrt-llm``)."""
        return stack_of(self.software)


@lru_cache(maxsize=4096)
def stack_of(software: str) -> str:
    """Family of a software string: its first word, lower case, without a trailing version. A ROCm
    build is a stack of its own (``vllm (ROCm build)`` -> ``vllm-rocm``): it runs other kernels
    (hipBLASLt, Composable Kernel, AITER) and another host path than the CUDA build of the same name."""
    text = software.strip().lower()
    words = text.split()
    if not words:
        return UNKNOWN_SOFTWARE
    family = re.sub(r"[-_ ]?v?\d[\w.]*$", "", words[0]) or words[0]
    return f"{family}-rocm" if "rocm" in text and not family.endswith("-rocm") else family


def load_measurements(path: str | Path = DEFAULT_DATA) -> list[Measurement]:
    return read_rows(path, REQUIRED, _parse_row)


def csv_columns(path: str | Path) -> set[str]:
    """The column names of a CSV's header, stripped (empty when the file cannot be read): how
    ``ador validate`` tells its data files' schemas apart."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as f:
            return {name.strip() for name in next(csv.reader(f), [])}
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def positive_number(raw: Mapping[str, str | None], name: str, where: str, *, integer: bool = False,
                    optional: bool = False):
    """Column ``name`` of a raw CSV row as a positive finite number (``integer``: a whole one); empty
    gives None where ``optional``. Anything else is a ConfigError naming the row and column."""
    text = (raw.get(name) or "").strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}:{name}", text, "expected a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}:{name}", text, "expected a positive finite number")
    if integer:
        if value != int(value):
            raise ConfigError(f"{where}:{name}", text, "expected a whole number")
        if value > MAX_INT:
            raise ConfigError(f"{where}:{name}", text, "too large (at most 2**53)")
        return int(value)
    return value


def check_unit(metric: str, unit: str, where: str) -> None:
    """The unit a row states must be its metric's (a TTFT in seconds would be read as milliseconds)."""
    if metric.endswith("_ms"):
        expected: tuple[str, ...] = ("ms",)
    elif "tok_s" in metric:
        expected = ("tok/s", "tok/s/gpu", "tok/s/user")
    elif metric == "requests_per_s":
        expected = ("req/s",)
    else:
        return                       # a metric the file's own predictor refuses, naming it
    if unit not in expected:
        raise ConfigError(f"{where}:unit", unit, f"{metric} is in {' or '.join(expected)}")


def read_rows(path: str | Path, required: tuple[str, ...], parse: Callable[[Mapping[str, str | None], str], Any]
              ) -> list:
    """Rows of a measurements CSV, each parsed by ``parse(raw, "file:line")``; the file must have the
    ``required`` columns and unique ids. Any problem is a ConfigError naming the file or the row."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError("data", str(path), f"missing columns: {', '.join(missing)}")
            twice = sorted({c for c in reader.fieldnames or [] if (reader.fieldnames or []).count(c) > 1})
            if twice:       # csv.DictReader would keep the last one silently
                raise ConfigError("data", str(path), f"columns named twice: {', '.join(twice)}")
            rows = [parse(_whole_row(raw, f"{path.name}:{line}"), f"{path.name}:{line}")
                    for line, raw in enumerate(reader, start=2)]
    except FileNotFoundError:
        raise ConfigError("data", str(path), "no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError("data", str(path), f"cannot be read as CSV ({err})") from None
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise ConfigError("id", row.id, f"appears twice in {path.name}")
        seen.add(row.id)
    return rows


def _whole_row(raw: Mapping[str, str | None], where: str) -> Mapping[str, str | None]:
    """A row with more cells than the header (a comma too many shifts every value after it)."""
    if None in raw:
        extra: Any = raw[None]    # type: ignore[index]  # csv.DictReader's key for the extra cells
        raise ConfigError(where, ",".join(extra or []), "more cells than the header has columns (an unquoted comma?)")
    return raw


def _parse_row(raw: Mapping[str, str | None], where: str) -> Measurement:
    values: dict[str, Any] = {}
    for name in COLUMNS:
        text = (raw.get(name) or "").strip()
        if name in OPTIONAL and not text:
            continue
        if name in _INTS:
            try:
                values[name] = int(text)
            except ValueError:
                raise ConfigError(f"{where}:{name}", text, "expected an integer") from None
            if values[name] < 1:
                raise ConfigError(f"{where}:{name}", text, "expected a positive integer")
        elif name == "value":
            try:
                values[name] = float(text)
            except ValueError:
                raise ConfigError(f"{where}:{name}", text, "expected a number") from None
            if not values[name] > 0 or math.isinf(values[name]):
                raise ConfigError(f"{where}:{name}", text, "expected a positive finite number")
        else:
            values[name] = text
    if "software" not in values:
        values["software"] = SOFTWARE_OF_SOURCE.get(values["source"], UNKNOWN_SOFTWARE)
    check_unit(values["metric"], values["unit"], where)
    return Measurement(**values)


def write_measurements(rows: list[Measurement], path: str | Path) -> None:
    """Write rows in the current schema (every column)."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([getattr(r, c) for c in COLUMNS])
