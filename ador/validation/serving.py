"""Serving simulator vs measured serving systems (rows in the schema of ``serving.csv``).

Each row is one metric of one benchmark run: a model on ``devices`` GPUs (``devices / tp``
replicas behind one queue) under a stack, its requests arriving as a Poisson stream at
``rate_rps`` (policy ``server``) or all at once (``offline``). The simulator replays that run:

- the stack's runtime profile (``ador calibrate``'s fit; stacks without one use ``default`` and
  count as extrapolated, as GPU rows do) and its scheduler with its documented defaults and the
  flags the source printed (``ador.serving.stacks``);
- ``requests`` requests where the source states how many (else as many as the stack's published
  benchmark sends, ``ador.serving.stacks.benchmark_requests``), every one
  counted, as a benchmark client counts them: the warm-up of an empty server is part of what was
  measured (closed loops too, the first ``concurrency`` requests sent at once, except under a client
  that reports a steady window, GenAI-Perf: ``ador.serving.stacks.measures_stable_window``);
- lengths: fixed where the row gives a single figure (no maximum, or the maximum equals the
  mean); uniform where the source's sampler is uniform (``length_dist``: a "random" dataset
  drawing whole numbers up to the maximum); otherwise a truncated log-normal with the row's mean
  and maximum and coefficient of variation ``LENGTH_CV`` (a long tail like ShareGPT's, see
  docs/serving.md); where the source published every request's lengths, those (``trace``: a
  lengths trace replayed in the order the client sent them, arrivals by the row's policy);
- runs with random elements (Poisson arrivals, sampled lengths) are replicated over seeds until
  the row's metric is known to ``ROW_PRECISION`` (at most ``MAX_REPLICATIONS`` runs); the
  prediction is the mean over replications, as the metric is a mean over benchmark runs.
"""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, cast

from ador.errors import AdorError, ConfigError
from ador.hardware import PRESETS, Device, System
from ador.hardware.runtime import RuntimeProfile, runtime_profiles
from ador.serving.precision import judge
from ador.serving.requests import Lengths, RequestArrays, burst, load_trace, poisson
from ador.serving.simulator import ALL, STEADY, simulate
from ador.serving.stacks import benchmark_requests, measures_stable_window, paced_arrivals, scheduler_for
from ador.validation.data import check_unit, csv_columns, read_rows, stack_of
from ador.validation.data import positive_number as _num
from ador.validation.kernels import runtime_for
from ador.validation.predict import RowResult, summarise
from ador.workload import get_model, get_precision

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "serving.csv"
REQUIRED = ("id", "source", "software", "hardware", "devices", "model", "precision", "tp", "policy", "rate_rps",
            "input_mean", "output_mean", "input_max", "output_max", "metric", "value", "unit")
COLUMNS = REQUIRED + ("requests", "length_dist", "concurrency", "prefix_cached", "trace")
LENGTH_DISTS = ("", "fixed", "uniform", "lognormal")
METRICS = {"ttft_mean_ms": "ttft_mean_ms", "ttft_p50_ms": "ttft_p50_ms", "ttft_p99_ms": "ttft_p99_ms",
           "tpot_mean_ms": "tpot_mean_ms", "tpot_p50_ms": "tpot_p50_ms", "tpot_p99_ms": "tpot_p99_ms",
           "output_tok_s": "output_tok_s", "requests_per_s": "requests_per_s"}
POLICIES = ("server", "offline", "closed")
CLOSED_LOOP_REQUESTS_PER_CLIENT = 40   # closed-loop rows that do not say: 40 requests per client, so the
                                       # synchronised start and the drain are a few % of the run
LENGTH_CV = 1.0               # variable lengths: coefficient of variation of the log-normal before truncation
ROW_PRECISION = 0.02          # replicate until a row's metric is known within 2% (95% repeat interval)
MAX_REPLICATIONS = 8


@dataclass(frozen=True, slots=True)
class ServingMeasurement:
    id: str
    source: str
    software: str
    hardware: str
    devices: int
    model: str
    precision: str
    tp: int
    policy: str
    rate_rps: float | None
    input_mean: float
    output_mean: float
    input_max: int | None
    output_max: int | None
    metric: str
    value: float
    unit: str
    requests: int | None = None
    length_dist: str = ""          # where the source states how it sampled lengths (uniform: a "random" dataset)
    pp: int = 1
    concurrency: int | None = None   # closed loop: clients that each keep one request outstanding
    # share of each prompt the server's prefix cache already holds when it arrives (a benchmark that
    # replays prompts to a server instance that has seen them: 1; blank: 0)
    prefix_cached: float = 0.0
    # where the source published every request's lengths: a trace CSV (``load_trace``'s columns, every
    # arrival_s 0) replayed in its order instead of ``lengths_for``'s distribution; its path as resolved
    # against the data file's folder ("": none)
    trace: str = ""

    @property
    def stack(self) -> str:
        return stack_of(self.software)

    def workload(self) -> tuple:
        """Rows that share this describe the same benchmark run (one simulation serves them all)."""
        return (self.software, self.hardware, self.devices, self.model, self.precision, self.tp, self.policy,
                self.rate_rps, self.input_mean, self.output_mean, self.input_max, self.output_max, self.requests,
                self.length_dist, self.concurrency, self.prefix_cached, self.trace)


def is_serving_file(path: str | Path) -> bool:
    """Whether a CSV is in the serving schema (by its header)."""
    return {"policy", "input_mean", "output_mean", "metric"} <= csv_columns(path)


def load_serving(path: str | Path = DEFAULT_DATA) -> list[ServingMeasurement]:
    folder = Path(path).resolve().parent
    return read_rows(path, REQUIRED, lambda raw, where: _parse(raw, where, folder))


def _parse(raw: Mapping[str, str | None], where: str, folder: Path) -> ServingMeasurement:
    text = {k: (raw.get(k) or "").strip() for k in ("id", "source", "software", "hardware", "model", "precision",
                                                     "policy", "metric", "unit")}
    if text["policy"] not in POLICIES:
        raise ConfigError(f"{where}:policy", text["policy"], f"expected one of {', '.join(POLICIES)}")
    check_unit(text["metric"], text["unit"], where)
    rate = _num(raw, "rate_rps", where, optional=text["policy"] in ("offline", "closed"))
    concurrency = _num(raw, "concurrency", where, integer=True, optional=text["policy"] != "closed")
    dist = (raw.get("length_dist") or "").strip()
    if dist not in LENGTH_DISTS:
        raise ConfigError(f"{where}:length_dist", dist, f"expected one of {', '.join(d for d in LENGTH_DISTS if d)}")
    cached_text = (raw.get("prefix_cached") or "").strip()
    try:
        cached = float(cached_text) if cached_text else 0.0
    except ValueError:
        cached = math.nan
    if not 0 <= cached <= 1:
        raise ConfigError(f"{where}:prefix_cached", cached_text, "expected a share of the prompt between 0 and 1")
    requests = _num(raw, "requests", where, integer=True, optional=True)
    trace_text = (raw.get("trace") or "").strip()
    trace = str(folder / trace_text) if trace_text else ""
    if trace:
        if dist:
            raise ConfigError(f"{where}:length_dist", dist, "a row with a trace replays its lengths: leave it blank")
        n = len(_trace_lengths(trace, f"{where}:trace"))
        if requests is not None and requests != n:
            raise ConfigError(f"{where}:requests", requests, f"the trace {trace_text} holds {n} requests")
    return ServingMeasurement(
        id=text["id"], source=text["source"], software=text["software"], hardware=text["hardware"],
        model=text["model"], precision=text["precision"], policy=text["policy"], metric=text["metric"],
        unit=text["unit"], devices=_num(raw, "devices", where, integer=True), tp=_num(raw, "tp", where, integer=True),
        rate_rps=rate if text["policy"] == "server" else None,
        input_mean=_num(raw, "input_mean", where), output_mean=_num(raw, "output_mean", where),
        input_max=_num(raw, "input_max", where, integer=True, optional=True),
        output_max=_num(raw, "output_max", where, integer=True, optional=True),
        value=_num(raw, "value", where), requests=requests,
        length_dist=dist, concurrency=concurrency if text["policy"] == "closed" else None,
        prefix_cached=cached, trace=trace)


def _trace_lengths(path: str, field: str = "trace") -> RequestArrays:
    """A row's published per-request lengths (``load_trace``'s checks; arrivals must all be 0: they
    follow the row's policy); errors name ``field``. Read once per version of the file."""
    try:
        stat = os.stat(path)
        version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError):
        version = None                                  # load_trace names what is wrong
    try:
        return _read_trace(path, version)
    except ConfigError as err:
        if err.field == "trace":                        # the file as a whole
            raise ConfigError(field, path, err.reason) from None
        raise ConfigError(f"{field}:{Path(path).name}{err.field.removeprefix('trace')}", err.value,
                          err.reason) from None
    except ValueError as err:                           # a name open() refuses (an embedded NUL byte)
        raise ConfigError(field, path, str(err)) from None


@lru_cache(maxsize=64)
def _read_trace(path: str, version: tuple[int, int] | None) -> RequestArrays:
    reqs = load_trace(path)
    if not reqs.lengths_only:
        raise ConfigError("trace", path,
                          "a lengths trace: every arrival_s must be 0 (arrivals follow the row's policy)")
    for column in (reqs.arrival_s, reqs.prompt_len, reqs.output_len):
        column.setflags(write=False)                    # shared by every caller of the cache
    return reqs


def lengths_for(mean: float, maximum: int | None, dist: str = "") -> Lengths:
    """Fixed where the row gives one figure; uniform where the source sampled so (the range that
    has the row's mean, up to its max); else a truncated log-normal with that mean and max."""
    if maximum is None or maximum <= mean or dist == "fixed":
        return Lengths("fixed", max(1, round(mean)))
    if dist == "uniform":
        return Lengths("uniform", mean, minimum=max(1, round(2 * mean - maximum)), maximum=maximum)
    return Lengths("truncated-lognormal", mean, LENGTH_CV, 1, maximum)


@dataclass(frozen=True)
class ServingRowResult(RowResult):
    row: ServingMeasurement          # type: ignore[assignment]  # the serving schema's row
    # a replicated run (random arrivals or lengths): the 95% repeat interval's half-width as a share
    # of the prediction, and the lowest and highest replication (seeds 0, 1, ...); None: one
    # deterministic run
    interval: float | None = None
    seed_range: tuple[float, float] | None = None
    replications: int = 1

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {"id": r.id, "source": r.source, "software": r.software, "hardware": r.hardware, "model": r.model,
                "precision": r.precision, "tp": r.tp, "devices": r.devices, "policy": r.policy,
                "rate_rps": r.rate_rps, "input_mean": r.input_mean, "output_mean": r.output_mean,
                "metric": r.metric, "measured": r.value, "predicted": self.predicted, "unit": r.unit,
                "error_pct": self.error_pct,
                "abs_error_pct": None if self.error_pct is None else abs(self.error_pct),
                "skipped": self.skipped, "extrapolated": self.extrapolated,
                "interval_pct": None if self.interval is None else 100 * self.interval,
                "seed_range": None if self.seed_range is None else list(self.seed_range),
                "replications": self.replications}


def simulate_row(row: ServingMeasurement, metrics: tuple[str, ...], devices: Mapping[str, Device] = PRESETS,
                 runtimes: Mapping[str, RuntimeProfile] | None = None) -> dict[str, float]:
    """The predicted value of each of ``metrics`` for the run ``row`` describes."""
    return {m: p.value for m, p in row_predictions(row, metrics, devices, runtimes).items()}


@dataclass(frozen=True)
class RowPrediction:
    value: float
    interval: float | None = None                      # relative 95% repeat half-width
    seed_range: tuple[float, float] | None = None      # lowest and highest replication
    replications: int = 1


def row_predictions(row: ServingMeasurement, metrics: tuple[str, ...], devices: Mapping[str, Device] = PRESETS,
                    runtimes: Mapping[str, RuntimeProfile] | None = None) -> dict[str, RowPrediction]:
    """Replay the benchmark run behind ``row``: the mean of each of ``metrics`` over replications."""
    runtimes = runtime_profiles() if runtimes is None else runtimes
    if row.hardware not in devices:
        raise ConfigError("hardware", row.hardware, "unknown hardware")
    for m in metrics:
        if m not in METRICS:
            raise ConfigError("metric", m, f"unsupported serving metric (known: {', '.join(METRICS)})")
    runtime, _ = runtime_for(row.software, runtimes)
    model, precision = get_model(row.model), get_precision(row.precision)
    system = System.of(devices[row.hardware], tp=row.tp, devices=row.devices, runtime=runtime)
    config = scheduler_for(row.software, row.tp, devices[row.hardware], pp=row.pp).config
    closed = row.policy == "closed" and row.concurrency is not None
    trace = _trace_lengths(row.trace, f"{row.id}:trace") if row.trace else None
    if trace is not None and row.requests is not None and row.requests != len(trace):
        raise ConfigError(f"{row.id}:requests", row.requests, f"the trace holds {len(trace)} requests")
    n = len(trace) if trace is not None else row.requests or (
        CLOSED_LOOP_REQUESTS_PER_CLIENT * cast(int, row.concurrency) if closed else
        benchmark_requests(row.software, row.input_mean, row.output_mean))
    if trace is None:
        prompt = lengths_for(row.input_mean, row.input_max, row.length_dist)
        output = lengths_for(row.output_mean, row.output_max, row.length_dist)
        fixed = prompt.kind == "fixed" and output.kind == "fixed"
    else:                             # the trace gives the lengths; these only fill the arrays it replaces
        prompt = output = Lengths("fixed", 1)
        fixed = True
    paced = paced_arrivals(row.software)
    # a closed loop as its client reports it: GenAI-Perf a steady window, benchmark_serving every request
    window = STEADY if closed and measures_stable_window(row.software) else ALL

    def run(seed: int, n: int = n):
        if row.policy in ("offline", "closed") or row.rate_rps is None:
            reqs = burst(n, prompt, output, seed=seed)
        else:
            reqs = poisson(row.rate_rps, n, prompt, output, seed=seed, paced=paced)
        if trace is not None:       # the published lengths, in the order the client sent them
            reqs = trace.arriving(reqs.arrival_s)
        return simulate(system, model, precision, reqs, config=config, window=window,
                        clients=row.concurrency if closed else None, prefix_cached=row.prefix_cached)

    if row.policy in ("offline", "closed") and fixed:      # deterministic: one run says it all
        result = run(0)
        if result.n_finished == 0:
            raise ConfigError("requests", n, "none could be served (each needs more KV cache than there is)")
        return {m: RowPrediction(_metric(result, m)) for m in metrics}
    wanted = tuple(METRICS[m] for m in metrics)
    j = judge(run, wanted, ci=ROW_PRECISION, requests=n, grow=False, max_reps=MAX_REPLICATIONS)
    out = {}
    for m in metrics:
        per_seed = [_metric(result, m) for result in j.results]
        iv = j.intervals[METRICS[m]]
        out[m] = RowPrediction(iv.value, iv.relative, (min(per_seed), max(per_seed)) if per_seed else None,
                               iv.replications)
    return out


def _metric(result, name: str) -> float:
    from ador.serving.precision import metric_of
    return metric_of(result, METRICS[name])


def predict_serving(rows: list[ServingMeasurement], devices: Mapping[str, Device] = PRESETS,
                    runtimes: Mapping[str, RuntimeProfile] | None = None) -> list[ServingRowResult]:
    """Predict every row; rows of one benchmark run share one (replicated) simulation."""
    runtimes = runtime_profiles() if runtimes is None else runtimes
    groups: dict[tuple, list[ServingMeasurement]] = {}
    for row in rows:
        groups.setdefault(row.workload(), []).append(row)
    out: dict[str, ServingRowResult] = {}
    for members in groups.values():
        first = members[0]
        try:
            got = row_predictions(first, tuple(sorted({r.metric for r in members})), devices, runtimes)
            extrapolated = runtime_for(first.software, runtimes)[1]
            for r in members:
                p = got[r.metric]
                out[r.id] = ServingRowResult(r, predicted=p.value, extrapolated=extrapolated, interval=p.interval,
                                             seed_range=p.seed_range, replications=p.replications)
        except AdorError as err:
            for r in members:
                out[r.id] = ServingRowResult(r, skipped=str(err))
    return [out[r.id] for r in rows]


def summarise_serving(results: list[ServingRowResult]) -> dict[str, Any]:
    """The GPU rows' summary (mape_pct, by_metric, by_hardware, by_source, by_software, n, ...) plus
    a source-balanced MAPE (the mean of the per-source MAPEs) and the same by metric family."""
    summary = summarise(cast(list[RowResult], results))
    by_source = summary["by_source"]
    summary["mape_source_balanced_pct"] = statistics.fmean(by_source.values()) if by_source else math.nan
    done = [r for r in results if r.predicted is not None]
    summary["n_sources"] = len(by_source)
    summary["by_family"] = {fam: _mape([r for r in done if metric_family(r.row.metric) == fam])
                            for fam in sorted({metric_family(r.row.metric) for r in done})}
    summary["by_policy"] = {p: _mape([r for r in done if r.row.policy == p])
                            for p in sorted({r.row.policy for r in done})}
    return summary


def metric_family(metric: str) -> str:
    """Done-when groups: p99 latencies, or means/medians and throughput."""
    return "p99" if "_p99_" in metric else "mean, median, throughput"


def _mape(results) -> float:
    return statistics.fmean(abs(r.error_pct) for r in results) if results else math.nan


@dataclass(frozen=True)
class ServingReport:
    rows: tuple[ServingRowResult, ...]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "rows": [r.to_dict() for r in self.rows]}


def validate_serving(rows: list[ServingMeasurement], devices: Mapping[str, Device] = PRESETS,
                     runtimes: Mapping[str, RuntimeProfile] | None = None) -> ServingReport:
    results = predict_serving(rows, devices, runtimes)
    return ServingReport(tuple(results), summarise_serving(results))


@lru_cache(maxsize=1)
def default_rows() -> tuple[ServingMeasurement, ...]:
    return tuple(load_serving(DEFAULT_DATA))


@lru_cache(maxsize=1)
def shipped_rows() -> tuple[ServingMeasurement, ...]:
    """Every serving file ador ships (``serving*.csv``: the public rows and the held-out ones; the
    calibration fits none of them, it fits ``measured.csv``)."""
    return tuple(r for path in sorted(DEFAULT_DATA.parent.glob("serving*.csv")) for r in load_serving(path))
