"""Study definitions (YAML): model, system, workload, SLOs, objectives, constraints, search space,
sampler, budget, seed, storage. Loading validates every field and resolves the search space, so
the resolved study can be stored with the study and rebuilt without the file."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from ador import __version__
from ador.config import MAX_SEED, canonical, from_mapping, load_yaml, to_mapping
from ador.errors import ConfigError, UnknownNameError
from ador.explore.metrics import METRICS, SERVING_METRICS, SYSTEM_METRICS, ServingLoad, Workload
from ador.explore.system import Economics, OfferedLoad
from ador.explore.space import SearchSpace, build_space, load_space
from ador.cost.report import DEFAULT_POWER_RULE, POWER_RULES
from ador.hardware import GPUS
from ador.hardware.calibration import CALIBRATION_FILE, scoring_digest
from ador.hardware.system import replicas_of
from ador.hardware.runtime import DEFAULT_RUNTIME, RuntimeProfile, get_runtime
from ador.slo import SLO_KEYS, check_target, upgrade
from ador.workload import get_model, get_precision, shard


@dataclass(frozen=True)
class WorkloadSpec:
    batch: int                          # static batch for the latency, throughput and area metrics
    input_len: int
    output_len: int
    arrival_rate: float | None = None   # if set: serving_* metrics from the serving simulator
    requests: int = 300                 # requests per replication of the serving judgement
    policy: str = "continuous"          # serving policy (continuous, chunked, concurrent, disaggregated)
    lengths: Literal["fixed", "long-tailed"] = "fixed"
    serving_ci: float | None = 0.05     # serving metrics known to this (relative 95% repeat interval) ...
    serving_max_requests: int = 20_000  # ... or until this many requests are simulated per design


@dataclass(frozen=True)
class SloSpec:
    """Service goals, each naming its statistic (see ador/slo.py for what each bounds)."""
    ttft_p99_ms: float | None = None
    tbt_p99_ms: float | None = None
    tbt_mean_ms: float | None = None


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: str
    direction: Literal["minimize", "maximize"] | None = None


@dataclass(frozen=True)
class ConstraintSpec:
    metric: str
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True)
class DesignRuntimeSpec:
    """A runtime profile for the designs other than the GPUs', and why (a named asymmetry)."""
    profile: str | dict[str, Any]
    reason: str


IsoRule = Literal["equal", "<=", ">="]
# iso field -> (metric it constrains, what the study file calls it)
ISO_METRICS = {"hbm_bandwidth": "hbm_bandwidth_tb_s", "hbm_stacks": "hbm_stacks",
               "link_bandwidth": "link_bandwidth_gb_s", "die_area_mm2": "die_area_mm2",
               "package_area_mm2": "package_area_mm2", "power": "tdp_w", "cost": "cost_usd"}


@dataclass(frozen=True)
class IsoSpec:
    """Constraints relative to a named GPU: "equal" (within ``tolerance_pct``), "<=" or ">=" its value."""
    baseline: str
    hbm_bandwidth: IsoRule | None = None
    hbm_stacks: IsoRule | None = None
    link_bandwidth: IsoRule | None = None
    die_area_mm2: IsoRule | None = None
    package_area_mm2: IsoRule | None = None
    power: IsoRule | None = None
    cost: IsoRule | None = None
    # "equal": the design's matrix engines sustain the baseline GPU's fitted fraction of peak
    # (perf/gpu.py tensor_efficiency) instead of 100% less fill and drain. Not a constraint: it
    # sets the searched designs' matrix_efficiency (docs/modelling.md, "Fair by construction").
    matrix_efficiency: str | None = None
    tolerance_pct: float = 2.0

    def rules(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ISO_METRICS if getattr(self, name) is not None}


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "nsga2"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    model: str
    workload: WorkloadSpec
    objectives: tuple[ObjectiveSpec, ...]
    search_space: str
    precision: str = "fp16"
    tp: int = 1
    pp: int = 1
    devices: int | None = None
    slo: SloSpec = field(default_factory=SloSpec)
    constraints: tuple[ConstraintSpec, ...] = ()
    reticle_limit: bool = True
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    trials: int = 200
    seed: int = 0
    storage: str | None = None
    baselines: tuple[str, ...] = ("a100-sxm-80gb", "h100-sxm-80gb")
    runtime: str | dict[str, Any] = DEFAULT_RUNTIME         # the runtime profile of GPUs and designs
    design_runtime: DesignRuntimeSpec | None = None          # designs' own profile, with the reason
    power_rule: str = DEFAULT_POWER_RULE                     # how component power is scaled, both sides
    iso: IsoSpec | None = None
    load: OfferedLoad | None = None        # a system-level study: the offered load and its p99 SLOs
    economics: Economics | None = None     # ... and what capex and energy cost
    name: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Study:
    """A resolved study: the spec plus what it names (model, precision, search space)."""
    name: str
    spec: StudySpec
    space: SearchSpace
    path: Path | None = field(default=None, compare=False)    # the study file, when loaded from one

    @property
    def workload(self) -> Workload:
        w = self.spec.workload
        return Workload(w.batch, w.input_len, w.output_len)

    @property
    def serving(self) -> ServingLoad | None:
        w = self.spec.workload
        if w.arrival_rate is None:
            return None
        used = {o.metric for o in self.spec.objectives} | {c.metric for c in self.spec.constraints}
        used |= {k.serving_metric for name, k in SLO_KEYS.items()
                 if k.serving_metric and getattr(self.spec.slo, name) is not None}
        # a request is served in time when its TTFT and its mean TBT are within the SLOs
        return ServingLoad(w.arrival_rate, w.requests, w.policy, w.lengths == "long-tailed", self.spec.slo.ttft_p99_ms,
                           self.spec.slo.tbt_mean_ms, w.serving_ci, w.serving_max_requests,
                           tuple(sorted(used & SERVING_METRICS)))

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        return [cast(Literal["minimize", "maximize"], o.direction or METRICS[o.metric]) for o in self.spec.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.spec.objectives]

    def runtime_for(self, kind: str) -> RuntimeProfile:
        """The runtime profile a device of ``kind`` (gpu or ador) runs under in this study."""
        if kind == "ador" and self.spec.design_runtime is not None:
            return get_runtime(self.spec.design_runtime.profile)
        return get_runtime(self.spec.runtime)

    def iso_constraints(self) -> list[ConstraintSpec]:
        """The iso rules as constraints on the baseline GPU's own values of the same metrics."""
        iso = self.spec.iso
        if iso is None:
            return []
        from ador.explore.metrics import device_metrics
        ref = device_metrics(GPUS[iso.baseline], devices=self.devices, power_rule=self.spec.power_rule)
        out = []
        tol = iso.tolerance_pct / 100.0
        for name, rule in iso.rules().items():
            metric = ISO_METRICS[name]
            value = ref[metric]
            if rule in ("equal", "<="):
                out.append(ConstraintSpec(metric, max=value * (1 + tol) if rule == "equal" else value))
            if rule in ("equal", ">="):
                out.append(ConstraintSpec(metric, min=value * (1 - tol) if rule == "equal" else value))
        return out

    @property
    def devices(self) -> int:
        return self.spec.devices or self.spec.tp * self.spec.pp

    def all_constraints(self, *, iso: bool = True) -> list[ConstraintSpec]:
        """The study's constraints, its iso rules (which shape the designs, so GPU baselines are not
        held to them: ``iso=False``), plus its SLOs: each bounds the static batch's metric, or with
        an arrival rate the simulated percentile (see ador/slo.py)."""
        out = list(self.spec.constraints) + (self.iso_constraints() if iso else [])
        for key, slo in SLO_KEYS.items():
            target = getattr(self.spec.slo, key)
            metric = slo.static_metric if self.serving is None else slo.serving_metric
            if target is not None and metric is not None:
                out.append(ConstraintSpec(metric, max=target))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the study's results (not the budget, storage or name)."""
        data = to_mapping(self.spec)
        for volatile in ("trials", "storage", "name"):
            data.pop(volatile, None)
        data["search_space"] = self.space.to_dict()
        return canonical(data)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


# the source that scores a design: an edit here changes the scores, so a study refuses to resume
MODEL_SOURCES = ("perf", "workload", "hardware", "cost", "serving", "efficiency.py", "explore/metrics.py",
                 "explore/space.py")     # space.py: how knob values become a design


def model_version() -> str:
    """Version of the model that scores designs: package version, fitted GPU calibration (its scoring
    part: ``scoring_digest``), and a hash of the scoring source (its syntax tree: comments and layout do not count)."""
    return f"{__version__}+cal.{scoring_digest(CALIBRATION_FILE)}+src.{source_hash()}"


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    import ast
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for entry in MODEL_SOURCES:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0")
            h.update(ast.dump(ast.parse(f.read_bytes())).encode() + b"\0")
    return h.hexdigest()[:10]


def resolve(spec: StudySpec, space: SearchSpace, name: str) -> Study:
    get_precision(spec.precision)
    shard(get_model(spec.model), spec.tp, spec.pp)
    replicas_of(spec.devices, tp=spec.tp, pp=spec.pp)
    for i, obj in enumerate(spec.objectives):
        if obj.metric not in METRICS:
            raise UnknownNameError(f"objectives[{i}].metric", obj.metric,
                                   f"unknown metric (known: {', '.join(METRICS)})")
    if not spec.objectives:
        raise ConfigError("objectives", [], "a study needs at least one objective")
    if len({o.metric for o in spec.objectives}) != len(spec.objectives):
        raise ConfigError("objectives", [o.metric for o in spec.objectives], "an objective appears twice")
    for i, c in enumerate(spec.constraints):
        if c.metric not in METRICS:
            raise UnknownNameError(f"constraints[{i}].metric", c.metric,
                                   f"unknown metric (known: {', '.join(METRICS)})")
        if (c.max is None) == (c.min is None):
            raise ConfigError(f"constraints[{i}]", c.metric, "give exactly one of max or min")
    w = spec.workload
    for field_name in ("batch", "input_len", "output_len", "requests"):
        if getattr(w, field_name) < 1:
            raise ConfigError(f"workload.{field_name}", getattr(w, field_name), "must be >= 1")
    from ador.serving import POLICIES
    if w.policy not in POLICIES:
        raise UnknownNameError("workload.policy", w.policy, f"unknown policy (known: {', '.join(POLICIES)})")
    from ador.serving.requests import MAX_RATE_PER_S, MAX_REQUESTS, MIN_RATE_PER_S
    if w.arrival_rate is not None and not MIN_RATE_PER_S <= w.arrival_rate <= MAX_RATE_PER_S:
        raise ConfigError("workload.arrival_rate", w.arrival_rate,
                          f"must be between {MIN_RATE_PER_S:g} and {MAX_RATE_PER_S:g} requests per second")
    for field_name in ("requests", "serving_max_requests"):
        if getattr(w, field_name) > MAX_REQUESTS:
            raise ConfigError(f"workload.{field_name}", getattr(w, field_name), f"at most {MAX_REQUESTS:,}")
    if w.serving_ci is not None and not 0 < w.serving_ci < 1:
        raise ConfigError("workload.serving_ci", w.serving_ci, "a relative precision must be between 0 and 1")
    if w.serving_max_requests < w.requests:
        raise ConfigError("workload.serving_max_requests", w.serving_max_requests, "must be >= workload.requests")
    used = {o.metric for o in spec.objectives} | {c.metric for c in spec.constraints}
    if spec.load is None and used & SYSTEM_METRICS:
        raise ConfigError("load", None, f"{sorted(used & SYSTEM_METRICS)[0]} needs an offered load "
                                        f"(a system-level study: load and economics)")
    if spec.load is not None:
        if spec.economics is None:
            raise ConfigError("economics", None, "a system-level study states its economics "
                                                 "(lifetime_years, energy_usd_per_kwh, markup)")
        if spec.iso is not None:
            raise ConfigError("iso", spec.iso.baseline, "iso rules shape chip studies; a system-level study "
                                                        "compares whole deployments")
    elif used & SERVING_METRICS and w.arrival_rate is None:
        raise ConfigError("workload.arrival_rate", None,
                          f"{sorted(used & SERVING_METRICS)[0]} needs the workload's arrival_rate")
    for i, b in enumerate(spec.baselines):
        if b not in GPUS:
            raise UnknownNameError(f"baselines[{i}]", b, f"unknown GPU (known: {', '.join(GPUS)})")
    try:
        get_runtime(spec.runtime)
    except ConfigError as err:
        raise (err.under("runtime") if err.field != "runtime" else err) from None
    if spec.design_runtime is not None:
        if not spec.design_runtime.reason.strip():
            raise ConfigError("design_runtime.reason", spec.design_runtime.reason,
                              "say why designs run under another profile than the GPUs")
        try:
            get_runtime(spec.design_runtime.profile)
        except ConfigError as err:
            raise ConfigError("design_runtime.profile", err.value, err.reason) from None
    if spec.power_rule not in POWER_RULES:
        raise UnknownNameError("power_rule", spec.power_rule, f"unknown power rule (known: {', '.join(POWER_RULES)})")
    if spec.iso is not None:
        if spec.iso.baseline not in GPUS:
            raise UnknownNameError("iso.baseline", spec.iso.baseline, f"unknown GPU (known: {', '.join(GPUS)})")
        if not spec.iso.rules() and spec.iso.matrix_efficiency is None:
            raise ConfigError("iso", spec.iso.baseline, f"name at least one of {', '.join(ISO_METRICS)}")
        if not 0 <= spec.iso.tolerance_pct < 100:
            raise ConfigError("iso.tolerance_pct", spec.iso.tolerance_pct, "must be in [0, 100)")
        if spec.iso.matrix_efficiency not in (None, "equal"):
            raise ConfigError("iso.matrix_efficiency", spec.iso.matrix_efficiency, "the only rule is 'equal'")
        if spec.iso.matrix_efficiency == "equal":
            from ador.perf.gpu import single_tensor_efficiency
            fitted = single_tensor_efficiency(GPUS[spec.iso.baseline], get_precision(spec.precision))
            space = dataclasses.replace(space, base=dataclasses.replace(space.base, matrix_efficiency=fitted))
    for key in SLO_KEYS:
        check_target(f"slo.{key}", getattr(spec.slo, key))
    if spec.trials < 1:
        raise ConfigError("trials", spec.trials, "must be >= 1")
    if not 0 <= spec.seed <= MAX_SEED:
        raise ConfigError("seed", spec.seed, f"a seed is 0..{MAX_SEED}")
    from ador.explore.samplers import check_sampler
    check_sampler(spec.sampler, space)
    return Study(name=name, spec=spec, space=space)


def load_study(path: str | Path) -> Study:
    """A study file, with every file it names (search space, runtime profiles, storage) found
    beside it, then among ador's own (see ador/explore/locate.py)."""
    from ador.explore.locate import file_storage, find_beside
    path = Path(path)
    raw = load_yaml(path)
    if isinstance(raw, dict):
        raw = dict(raw)
        serving = isinstance(raw.get("workload"), dict) and raw["workload"].get("arrival_rate") is not None
        raw["slo"] = upgrade(raw.get("slo", {}), serving=serving, where="slo")
        if "runtime" in raw:
            raw["runtime"] = _inline_profile(raw["runtime"], path, "runtime")
        if isinstance(raw.get("design_runtime"), dict) and "profile" in raw["design_runtime"]:
            raw["design_runtime"] = {**raw["design_runtime"], "profile": _inline_profile(
                raw["design_runtime"]["profile"], path, "design_runtime.profile")}
    spec = from_mapping(StudySpec, raw, "")
    found = find_beside(spec.search_space, path, "search_spaces", "search_space")
    try:
        space = load_space(found)
    except ConfigError as err:
        raise ConfigError(f"{found}: {err.field}", err.value, err.reason) from None
    if spec.storage:
        spec = dataclasses.replace(spec, storage=file_storage(spec.storage, path))
    study = resolve(spec, space, spec.name or path.stem)
    return dataclasses.replace(study, path=path)


def _inline_profile(value: Any, path: Path, field: str) -> Any:
    """A runtime profile named by file is read beside the study file and stored inline, so the
    stored study needs no file."""
    if not isinstance(value, str) or value in _profile_names() or not value.endswith((".yaml", ".yml")):
        return value
    from ador.explore.locate import find_beside
    from ador.hardware.runtime import load_runtime
    return load_runtime(find_beside(value, path, "", field)).to_mapping()


def _profile_names() -> set[str]:
    from ador.hardware.runtime import runtime_profiles
    return set(runtime_profiles())


def study_from_dict(data: dict[str, Any], name: str) -> Study:
    """Rebuild a study stored with its results (see ``Study.to_dict``); SLOs stored under the
    names of earlier versions are read as the explicit keys they now are."""
    data = dict(data)
    space_raw = data.pop("search_space")
    space = build_space(space_raw, "search_space")
    serving = isinstance(data.get("workload"), dict) and data["workload"].get("arrival_rate") is not None
    data["slo"] = upgrade(data.get("slo", {}), serving=serving, where="slo", warn=False)
    spec = from_mapping(StudySpec, {**data, "search_space": space_raw.get("base", "stored")}, "stored study")
    return resolve(spec, space, name)
