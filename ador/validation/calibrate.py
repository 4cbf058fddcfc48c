"""Fit the GPU efficiencies and the runtime profiles on measured data (``ador calibrate``).

Few constants, each with a physical meaning:
- per GPU die (GA100, GH100, AD102; SKUs of one die share them): the fraction of the dense fp16
  and fp8 tensor peaks that GEMMs reach (``GpuEfficiency``);
- shared by all GPUs: the fraction of the SIMT peak that weight dequantisation reaches;
- shared by every fitted runtime profile: how much of the shorter of compute and memory time a
  kernel hides (``overlap``), the fraction of link bandwidth collectives reach and the software
  latency of a collective step, and the fraction of peak DRAM bandwidth reached per memory kind
  (HBM2E, HBM3, ...: a property of the memory system that an ADOR design with the same memory
  gets too);
- per serving software stack with at least ``MIN_STACK_ROWS`` rows (TensorRT-LLM, gpt-fast, ...):
  the per-forward-pass overhead (host scheduling, sampling) and the per-kernel overhead (launch and
  tail). Rows of smaller stacks are predicted with the ``default`` profile (the median stack).
The loss is the mean absolute percentage error over all rows, minimised with Powell's method from
a fixed start, then Nelder-Mead, the pair repeated while it gains, so the fit is deterministic. No
row, model or source gets a constant of its own.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from ador.errors import AdorError
from ador.hardware.calibration import CALIBRATION_FILE
from ador.hardware.devices import GpuEfficiency, GpuSpec
from ador.hardware.presets import _GPU_SPECS
from ador.hardware.runtime import SERVING_RUNTIME_RESERVED_BYTES, MemoryEfficiency, RuntimeProfile
from ador.validation.compiled import CompiledRows
from ador.validation.data import Measurement
from ador.validation.kernels import DEFAULT_PROFILE, kernel_facts, release
from ador.validation.predict import LAYER_METRICS, RowResult, predict_rows, profile_for
from ador.workload import get_precision

# metrics whose value includes the per-request overhead (the first token, the whole request)
REQUEST_METRICS = ("ttft_ms", "e2e_ms", "output_tok_s", "output_tok_s_per_gpu")
MIN_STACK_ROWS = 5        # a stack with fewer rows gets no constants of its own
MIN_ROWS = 5              # nor does a die, precision or memory kind with fewer rows exercising it
# metrics that time a prefill, where GEMMs are compute-bound: only these exercise a tensor efficiency
# (a die's decode rows stream weights; fitted on them alone, leaving Splitwise's H100 prefills out,
# GH100's fp16 efficiency ran to 0.14 and priced those prefills up to 3.5x slow)
PREFILL_METRICS = (*REQUEST_METRICS, "prefill_layer_ms", "prefill_shard_ms")

# GPU dies and the presets built on them (datasheets / whitepapers).
DIES: dict[str, tuple[str, ...]] = {
    "GA100": ("a100-sxm-80gb", "a100-sxm-40gb"),
    "GH100": ("h100-sxm-80gb", "h200-sxm-141gb"),
    "AD102": ("l40s-48gb",),
    "CDNA3": ("mi300x-192gb",),
}
PER_DIE = ("tensor", "tensor_fp8")
GPU_SHARED = ("dequant",)
RUNTIME_SHARED = ("overlap", "link_efficiency", "collective_latency_s")
PER_SOFTWARE = ("step_overhead_s", "kernel_overhead_s", "request_overhead_s")
MEMORY = "hbm"            # parameter name of a memory kind's efficiency ("hbm.hbm2e")

# Physical ranges the fit searches within. Tensor cores: cuBLAS reaches at most ~93% of the A100's
# dense peak on large GEMMs (NVIDIA's own GEMM benchmarks); HBM: refresh and read/write turnarounds
# cost at least 5% of the bus (JEDEC JESD235/238 refresh timing); links: packet headers and flow
# control cost at least 5% (NVLink flit overhead). Overheads between 0.1 us and their stated caps.
# Overlap: GEMM and attention kernels since Ampere stream their operands through multi-stage shared-
# memory pipelines (cp.async; TMA on Hopper) while the tensor cores work on earlier stages (CUTLASS
# "efficient GEMM" pipelining; FlashAttention-2/3), so a kernel hides at least 90% of the shorter of
# its compute and memory time. Left free (0-1), the public rows pull it to ~0.5, a stand-in for slow
# small-prompt prefills of early stacks; that fit predicts our own H100/H200 measurements
# (measured-own-gpu.csv, never fitted) at 9.9%, this bound at 9.2% (benchmarks/heldout_overlap.py;
# docs/validation.md, "Constants on a bound").
BOUNDS = {"tensor": (0.1, 0.95), "tensor_fp8": (0.1, 0.95), "hbm": (0.5, 0.95), "link_efficiency": (0.2, 0.95),
          "dequant": (0.01, 1.0), "kernel_overhead_s": (1e-7, 1e-4), "step_overhead_s": (1e-7, 5e-2),
          "collective_latency_s": (1e-7, 5e-5), "overlap": (0.9, 1.0), "request_overhead_s": (1e-6, 0.5)}
_LOG_SCALE = {"kernel_overhead_s", "step_overhead_s", "collective_latency_s", "request_overhead_s"}

START = {"tensor": 0.7, "tensor_fp8": 0.6, "hbm": 0.85, "link_efficiency": 0.7, "dequant": 0.25,
         "kernel_overhead_s": 5e-6, "step_overhead_s": 1e-3, "collective_latency_s": 5e-6, "overlap": 0.95,
         "request_overhead_s": 1e-3}


@dataclass(frozen=True)
class Parameter:
    name: str          # GpuEfficiency / RuntimeProfile field, or "hbm"
    group: str | None  # a GPU die, a memory kind, "software:STACK", or None: shared

    @property
    def key(self) -> str:
        if self.name == MEMORY:
            return f"{MEMORY}.{self.group}"
        return f"{self.group}.{self.name}" if self.group else self.name

    def encode(self, value: float) -> float:
        lo, hi = BOUNDS[self.name]
        value = min(max(value, lo), hi)
        if self.name in _LOG_SCALE:
            lo, hi, value = math.log(lo), math.log(hi), math.log(value)
        x = min(max((value - lo) / (hi - lo), 1e-6), 1 - 1e-6)
        return math.log(x / (1 - x))   # logit: the optimiser works unbounded

    def decode(self, z: float) -> float:
        lo, hi = BOUNDS[self.name]
        x = 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
        if self.name in _LOG_SCALE:
            return math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo)))
        return lo + x * (hi - lo)

    def on_bound(self, value: float, tolerance: float = 0.01) -> bool:
        lo, hi = BOUNDS[self.name]
        if self.name in _LOG_SCALE:
            lo, hi, value = math.log(lo), math.log(hi), math.log(value)
        return min(value - lo, hi - value) <= tolerance * (hi - lo)


_SPECS = {s.name: s for s in _GPU_SPECS}


def die_of(hardware: str) -> str | None:
    return next((die for die, names in DIES.items() if hardware in names), None)


def fitted_stacks(rows: Sequence[Measurement]) -> list[str]:
    """Stacks with enough rows to get overheads of their own."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.stack] = counts.get(r.stack, 0) + 1
    return sorted(s for s, n in counts.items() if n >= MIN_STACK_ROWS)


def parameters_for(rows: Sequence[Measurement]) -> list[Parameter]:
    """Only constants that some row exercises: a die's fp8 efficiency needs fp8 rows that time a
    prefill (``PREFILL_METRICS``), etc."""
    params: list[Parameter] = []
    for die, names in DIES.items():
        mine = [r for r in rows if r.hardware in names and r.metric in PREFILL_METRICS]
        if sum(get_precision(r.precision).compute_dtype != "fp8" for r in mine) >= MIN_ROWS:
            params.append(Parameter("tensor", die))
        if sum(get_precision(r.precision).compute_dtype == "fp8" for r in mine) >= MIN_ROWS:
            params.append(Parameter("tensor_fp8", die))
    kinds = [_SPECS[r.hardware].memory_kind for r in rows if r.hardware in _SPECS]
    for kind in sorted(set(kinds)):
        if kinds.count(kind) >= MIN_ROWS:
            params.append(Parameter(MEMORY, kind))
    if sum(r.precision.endswith("-wo") for r in rows) >= MIN_ROWS:
        params.append(Parameter("dequant", None))
    for name in RUNTIME_SHARED:
        if name in ("link_efficiency", "collective_latency_s") and not any(r.tp > 1 or r.pp > 1 for r in rows):
            continue
        params.append(Parameter(name, None))
    for stack in fitted_stacks(rows):
        whole_passes = any(r.stack == stack and r.metric not in LAYER_METRICS for r in rows)
        first_tokens = any(r.stack == stack and r.metric in REQUEST_METRICS for r in rows)
        for name in PER_SOFTWARE:
            if name in ("step_overhead_s", "request_overhead_s") and not whole_passes:
                continue      # per-layer timings carry no per-pass or per-request overhead
            if name == "request_overhead_s" and not first_tokens:
                continue      # decode-only rows cannot see it: the median stack's stands in
            params.append(Parameter(name, f"software:{stack}"))
    return params


def fitted_releases(rows: Sequence[Measurement]) -> dict[str, str]:
    """Per stack, the range of releases its rows state (``0.5-0.9``); stacks whose rows state none
    are left out."""
    seen: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        if (v := release(r.software)) is not None:
            seen.setdefault(r.stack, []).append(v)
    return {stack: f"{min(v)[0]}.{min(v)[1]}-{max(v)[0]}.{max(v)[1]}" for stack, v in seen.items()}


def runtimes_from(values: dict[str, float], source: str = "",
                  rows: Sequence[Measurement] = ()) -> dict[str, RuntimeProfile]:
    """Fitted runtime profiles: one per stack with constants of its own, plus ``default`` (the median
    of their overheads) for every other stack. ``rows``: the rows fitted, whose releases bound what
    each stack's profile speaks for."""
    releases = fitted_releases(rows)
    stacks: dict[str, dict[str, float]] = {}
    for key, value in values.items():
        if key.startswith("software:"):
            stack, name = key.removeprefix("software:").rsplit(".", 1)
            stacks.setdefault(stack, {})[name] = value
    stacks[DEFAULT_PROFILE] = {name: statistics.median(s[name] for s in stacks.values() if name in s)
                               for name in PER_SOFTWARE if any(name in s for s in stacks.values())}
    kinds = {key.split(".", 1)[1]: v for key, v in values.items() if key.startswith(f"{MEMORY}.")}
    hbm_kinds = [v for k, v in kinds.items() if k.startswith("hbm")]
    memory = MemoryEfficiency(default=statistics.fmean(hbm_kinds) if hbm_kinds else START["hbm"], **kinds)
    shared = {name: values.get(name, START[name] if name != "collective_latency_s" else 0.0)
              for name in RUNTIME_SHARED}
    out = {}
    for stack, own in stacks.items():
        # a constant no row of the stack exercises: the median's
        constants: dict[str, Any] = {**shared, **stacks[DEFAULT_PROFILE], **own}
        note = source if stack != DEFAULT_PROFILE else \
            f"{source}; overheads are the median of the fitted stacks (stacks with too few rows use it)"
        fitted = RuntimeProfile(name=stack, hbm_efficiency=memory, reserved_bytes=SERVING_RUNTIME_RESERVED_BYTES,
                                source=note, releases=releases.get(stack, "") if stack != DEFAULT_PROFILE else "",
                                **constants)
        out[stack] = dataclasses.replace(fitted, **dict(kernel_facts(stack)))   # the current release's kernels
    return out


def efficiencies(values: dict[str, float], source: str,
                 rows: Sequence[Measurement] = ()) -> dict[str, GpuEfficiency]:
    """Efficiency of every GPU preset from fitted values; constants a die was not fitted for take
    the mean over the dies that were (GPUs with no measurements at all get those means too).
    ``rows``: the fit's rows, counted per GPU (a GPU with none is unvalidated)."""
    means = {}
    for name in PER_DIE:
        fitted = [v for k, v in values.items() if k.endswith("." + name) and not k.startswith("software:")]
        means[name] = statistics.fmean(fitted) if fitted else START[name]
    dequant = values.get("dequant", START["dequant"])
    out = {}
    for spec in _GPU_SPECS:
        die = die_of(spec.name)
        per_die = {name: values.get(f"{die}.{name}", means[name]) for name in PER_DIE}
        note = source if die and any(f"{die}.{n}" in values for n in PER_DIE) else \
            f"{source}; no measurements of this GPU: per-die constants are the means of the fitted dies"
        out[spec.name] = GpuEfficiency(**per_die, dequant=dequant, source=note,
                                       rows=sum(1 for r in rows if r.hardware == spec.name))
    return out


def _devices(effs: dict[str, GpuEfficiency]) -> dict[str, GpuSpec]:
    return {s.name: dataclasses.replace(s, efficiency=effs[s.name]) for s in _GPU_SPECS}


def evaluate_rows(rows: Sequence[Measurement], values: dict[str, float],
                  fitted_on: Sequence[Measurement] = ()) -> list[RowResult]:
    """Predict ``rows`` with the efficiencies and runtime profiles given by ``values`` fitted on
    ``fitted_on`` (whose releases say which rows a stack's profile speaks for)."""
    return predict_rows(list(rows), _devices(efficiencies(values, "")), runtimes_from(values, rows=fitted_on))


def compile_rows(rows: Sequence[Measurement]) -> CompiledRows:
    profiles = runtimes_from({f"software:{s}.kernel_overhead_s": START["kernel_overhead_s"]
                              for s in fitted_stacks(rows)})
    return CompiledRows(rows, _devices(efficiencies({}, "")),
                        kernel_rules=lambda m: profile_for(m, profiles)[0])


def _loss(compiled: CompiledRows, params: list[Parameter], subset: np.ndarray,
          tick: Callable[[], None] | None = None) -> Callable[[Sequence[float]], float]:
    measured = np.array([r.value for r in compiled.rows])

    def loss(z: Sequence[float]) -> float:
        if tick is not None:
            tick()
        values = {p.key: p.decode(x) for p, x in zip(params, z)}
        predicted = compiled.predict(efficiencies(values, ""), runtimes_from(values))
        errors = np.abs(predicted[subset] / measured[subset] - 1.0) * 100.0
        errors = errors[np.isfinite(errors)]
        return float(errors.mean()) if len(errors) else 0.0
    return loss


@dataclass(frozen=True)
class Fit:
    values: dict[str, float]
    mape_pct: float
    n_rows: int
    evaluations: int
    on_bounds: tuple[str, ...] = ()    # constants that ended within 1% of a bound of their range


PHASE_EVALUATIONS = 4000    # loss evaluations of one Powell or Nelder-Mead pass of a fit at most
CYCLE_GAIN_PCT = 0.01       # MAPE points a Powell + Nelder-Mead cycle must gain to count as progress
QUIET_CYCLES = 2            # cycles in a row gaining less that end a fit (one quiet cycle can precede a
                            # gain: on 2026-11-28 the public rows' third cycle gained 0.03 after 0.001)
# Each cycle's Powell pass starts from the best point with every encoded value within +-RESTART_LOGIT
# (a constant within 1.8% of its range from a bound): the optimiser works in logits, and a constant that
# wandered onto a bound (logit 10: 0.005% from it) sits where the loss is nearly flat in its logit, and
# the passes can stop there though the loss falls away from the bound: on 2026-11-28 the public rows'
# fit stopped at 7.47% with ``dequant`` at 1.0 (0.95 was better); restarting within +-4, 7.43% with
# ``dequant`` 0.77. A cycle's result is kept only if it is better.
RESTART_LOGIT = 4.0
FIT_EVALUATIONS = 40000     # a full fit's budget (it stops earlier when a cycle gains too little)


def local_passes(loss: Callable[[Sequence[float]], float], z, max_evaluations: int) -> tuple[Any, int]:
    """One cycle of the fit from ``z``: Powell, then Nelder-Mead to polish, each with at most
    ``max_evaluations`` loss evaluations. Returns the better pass's result and the evaluations spent."""
    from scipy.optimize import minimize   # fitting is offline; the package imports scipy only here

    first = minimize(loss, z, method="Powell", options={"maxfev": max_evaluations, "xtol": 1e-3, "ftol": 1e-5})
    second = minimize(loss, first.x, method="Nelder-Mead",
                      options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-4, "adaptive": True})
    return (second if second.fun <= first.fun else first), int(first.nfev + second.nfev)


def fit(rows: Sequence[Measurement], *, max_evaluations: int = FIT_EVALUATIONS, compiled: CompiledRows | None = None,
        tick: Callable[[], None] | None = None) -> Fit:
    """Minimise MAPE over ``rows`` (given as indices into ``compiled``'s rows when it is passed).
    Starts from fixed values; Powell, then Nelder-Mead to polish, repeated from the result until
    ``QUIET_CYCLES`` cycles in a row each gain under ``CYCLE_GAIN_PCT``. ``tick`` is called at each
    loss evaluation (a progress bar)."""
    params = parameters_for(rows)
    if not params:
        raise AdorError("no rows of a calibrated GPU to fit")
    if compiled is None:
        compiled = compile_rows(rows)
    ids = {id(r) for r in rows}
    subset = np.array([i for i, r in enumerate(compiled.rows) if id(r) in ids], dtype=int)
    loss = _loss(compiled, params, subset, tick)
    # MAPE is not smooth: one Powell + Nelder-Mead pass stops in a kink short of the minimum (a fresh
    # fit came out 0.08 points worse than constants fitted before on a slightly different graph). The
    # passes repeat from where the last ended until QUIET_CYCLES in a row each gain under
    # CYCLE_GAIN_PCT, within the budget.
    phase = max(1, min(PHASE_EVALUATIONS, max_evaluations // 2))
    z = [p.encode(START[p.name]) for p in params]
    best_fun, spent, quiet = float(loss(z)), 1, 0    # a cycle is kept only if it improves
    while True:                                      # at least one cycle
        cycle, nfev = local_passes(loss, np.clip(z, -RESTART_LOGIT, RESTART_LOGIT), phase)
        spent += nfev
        gained = best_fun - float(cycle.fun)
        if gained <= 0:
            break           # the next cycle would start where this one did, and end where it did
        z, best_fun = cycle.x, float(cycle.fun)
        quiet = quiet + 1 if gained < CYCLE_GAIN_PCT else 0
        if quiet >= QUIET_CYCLES or max_evaluations - spent < 2 * phase:
            break
    values = {p.key: p.decode(x) for p, x in zip(params, z)}
    bounds = tuple(p.key for p in params if p.on_bound(values[p.key]))
    return Fit(values, best_fun, len(rows), spent, bounds)


def cross_validate(rows: Sequence[Measurement], *, key: Callable[[Measurement], str] = lambda r: r.source,
                   max_evaluations: int = 3000, compiled: CompiledRows | None = None,
                   tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """Leave one group (by default one source) out: fit on the rest, predict the group."""
    compiled = compiled or compile_rows(rows)
    out = {}
    for group in sorted({key(r) for r in rows}):
        train = [r for r in rows if key(r) != group]
        test = [r for r in rows if key(r) == group]
        try:
            f = fit(train, max_evaluations=max_evaluations, compiled=compiled, tick=tick)
        except AdorError:
            continue
        results = evaluate_rows(test, f.values, fitted_on=train)
        done = [abs(e) for r in results if (e := r.error_pct) is not None]
        out[group] = {"n": len(done), "mape_pct": statistics.fmean(done) if done else None,
                      "train_mape_pct": f.mape_pct,
                      "errors": [(r.row.metric, r.error_pct) for r in results if r.error_pct is not None]}
    return out


def pooled_mape(cv: dict[str, Any]) -> float | None:
    """Held-out MAPE over every held-out row of a cross-validation."""
    held = [(r["mape_pct"], r["n"]) for r in cv.values() if r["mape_pct"] is not None]
    total = sum(n for _, n in held)
    return sum(m * n for m, n in held) / total if total else None


# Loss evaluations per cross-validation fit (21 fits: about a minute on one core). A cap, not the shipped
# fit's procedure (which runs to convergence): folds fitted to convergence (``ador calibrate --cv
# --cv-evaluations 40000``) hold out more; docs/validation.md quotes both ways.
CV_EVALUATIONS = 2000


def cv_fits(rows: Sequence[Measurement]) -> int:
    """How many fits ``cross_validation`` runs (5 folds and one per source)."""
    return len({fold_of(r) for r in rows}) + len({r.source for r in rows})


def cross_validation(rows: Sequence[Measurement], *, max_evaluations: int | None = None,
                     tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """5-fold (stable folds from the row ids) and leave-one-source-out cross-validation, each fit with
    ``max_evaluations`` (default ``CV_EVALUATIONS``)."""
    max_evaluations = max_evaluations or CV_EVALUATIONS
    compiled = compile_rows(rows)
    kfold = cross_validate(rows, key=fold_of, max_evaluations=max_evaluations, compiled=compiled, tick=tick)
    loso = cross_validate(rows, key=lambda r: r.source, max_evaluations=max_evaluations, compiled=compiled,
                          tick=tick)
    return {"kfold_mape_pct": pooled_mape(kfold), "loso_mape_pct": pooled_mape(loso), "kfold": kfold, "loso": loso,
            "cv_evaluations": max_evaluations}


def fold_of(row: Measurement, folds: int = 5) -> str:
    """A stable fold for a row (from its id), for k-fold cross-validation."""
    return f"fold{int(hashlib.sha256(row.id.encode()).hexdigest(), 16) % folds}"


def _by_metric(rows: Sequence[Measurement], values: dict[str, float]) -> dict[str, float]:
    results = [r for r in evaluate_rows(rows, values, fitted_on=rows) if r.predicted is not None]
    return {m: round(statistics.fmean(abs(e) for r in results
                                      if r.row.metric == m and (e := r.error_pct) is not None), 3)
            for m in sorted({r.row.metric for r in results})}


def heldout_by_family(cv: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The k-fold held-out errors by metric family (ador/validation/coverage.py FAMILIES): the
    signed mean (bias) and the root mean square, which ador/validation/uncertainty.py turns into a
    GPU-side interval."""
    from ador.validation.coverage import FAMILIES
    out = {}
    for family, metrics in FAMILIES.items():
        errs = [e for fold in cv["kfold"].values() for m, e in fold.get("errors", ()) if m in metrics]
        if errs:
            out[family] = {"n": len(errs), "bias_pct": round(statistics.fmean(errs), 3),
                           "rms_pct": round(math.sqrt(statistics.fmean(e * e for e in errs)), 3)}
    return out


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in data.items()}


def write_calibration(f: Fit, data_path: Path, out: Path = CALIBRATION_FILE, rows: Sequence[Measurement] = (),
                      cv: dict[str, Any] | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()[:16]
    source = (f"fitted by `ador calibrate` on {Path(data_path).name} (sha256 {digest}, {f.n_rows} rows), "
              f"MAPE {f.mape_pct:.2f}%")
    effs = efficiencies(f.values, source, rows)
    runtimes = runtimes_from(f.values, source, rows)
    doc = {
        "fit": {"command": "ador calibrate", "data": Path(data_path).name, "data_sha256_16": digest,
                "rows": f.n_rows, "mape_pct": round(f.mape_pct, 3), "evaluations": f.evaluations,
                "date": dt.date.today().isoformat(),
                "values": {k: float(f"{v:.6g}") for k, v in sorted(f.values.items())},
                "on_bounds": list(f.on_bounds), "by_metric": _by_metric(rows, f.values),
                **({"kfold_mape_pct": round(cv["kfold_mape_pct"], 3), "loso_mape_pct": round(cv["loso_mape_pct"], 3),
                    "cv_evaluations": cv["cv_evaluations"], "heldout": heldout_by_family(cv)} if cv else {})},
        "gpus": {name: _rounded(dataclasses.asdict(e)) for name, e in effs.items()},
        "runtimes": {name: _rounded({k: v for k, v in p.to_mapping().items() if k != "name"}
                                    | {"hbm_efficiency": _rounded(p.to_mapping()["hbm_efficiency"])})
                     for name, p in runtimes.items()},
    }
    header = ("# GPU efficiencies and runtime profiles fitted on measured data. Regenerate with `ador calibrate`;\n"
              "# do not edit by hand. See ador/validation/calibrate.py for what each constant means and\n"
              "# docs/validation.md for the errors.\n")
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return doc
