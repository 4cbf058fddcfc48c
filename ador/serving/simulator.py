"""Iteration-level discrete-event simulation of LLM serving.

Requests arrive, wait, are admitted while paged KV-cache blocks are free, run under a scheduling
policy (``ador.serving.schedulers``: one class per policy, registered by name), and leave. Each
iteration is priced by the performance model (``IterationCost``): a mixed iteration is priced as
one iteration, not as two stages. What requests see (TTFT, time between tokens, TPOT, end-to-end
latency, queueing) streams into log-bucket histograms, so memory does not grow with the number of
requests; ``window`` picks which requests count (all of them, as a benchmark client reports, or
the steady state without warm-up and drain).
"""
from __future__ import annotations

from functools import lru_cache
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from ador.errors import AdorError, ConfigError
from ador.hardware.system import System
from ador.perf.evaluate import capacity_bytes
from ador.perf.iteration import IterationCost
from ador.perf.stage import rates as stage_rates
from ador.progress import Progress
from ador.serving.config import SchedulerConfig
from ador.serving.driver import Setting, measured_range, serve_colocated, serve_disaggregated
from ador.serving.recorder import Recorder
from ador.serving.requests import Request, RequestArrays
from ador.serving.schedulers import DisaggregatedScheduler, scheduler_class
from ador.serving.stats import LogHistogram
from ador.workload.memory import activation_bytes_per_device, kv_bytes_per_token_per_device, weight_bytes_per_device
from ador.workload.models import ModelSpec
from ador.workload.precision import Precision

DEFAULT_CONFIG = SchedulerConfig()    # vLLM's defaults (ador.serving.config)
ALL = (0.0, 1.0)              # every request counts (what a benchmark client reports)
STEADY = (0.1, 0.9)           # without the first 10% (warm-up: an empty system) and the last 10% (drain)
OVERLOAD_BACKLOG = 0.05       # overloaded: more than this share of requests still waiting at the last arrival


@dataclass(frozen=True)
class ServingResult:
    policy: str
    n_requests: int
    n_finished: int
    refused: int
    preemptions: int
    ttft_ms: dict[str, float]
    tbt_ms: dict[str, float]              # every gap between consecutive tokens, pooled
    tpot_ms: dict[str, float]             # each request's mean time per output token after the first
    e2e_ms: dict[str, float]
    queue_ms: dict[str, float]
    output_tok_s: float
    total_tok_s: float
    requests_per_s: float
    goodput_rps: float
    slo_attainment: float
    mean_in_system: float
    arrival_rate: float | None            # requests/s offered (None: all at once)
    mean_e2e_ms: float
    makespan_s: float
    utilisation: dict[str, float]
    hbm_utilisation: float
    iterations: int
    peak_in_service: int
    kv_capacity_tokens: int
    measured_requests: int
    backlog_at_last_arrival: int
    overloaded: bool
    ttft_slo_ms: float | None = None
    tbt_slo_ms: float | None = None
    histograms: dict[str, LogHistogram] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("histograms")
        return data


@lru_cache(maxsize=32)
def iteration_cost(system: System, model: ModelSpec, precision: Precision, engines: tuple | None) -> IterationCost:
    """One pricing cache per (system, model, precision, engine map), shared by every simulation of
    it: replications and studies' trials re-price nothing they have priced before."""
    return IterationCost(system, model, precision, dict(engines) if engines else None)


def kv_capacity_tokens(system: System, model: ModelSpec, precision: Precision, cfg: SchedulerConfig) -> int:
    """KV-cache tokens one replica holds: the share of device memory the runtime gives the cache
    (``memory_fraction`` of all memory, or of what is left, per ``memory_basis``) after the weights
    and the activations of the largest iteration (or only the weights: ``reserve``)."""
    free, per_token, _ = _kv_budget(system, model, precision, cfg)
    return max(0, int(free // per_token))


def _kv_budget(system: System, model: ModelSpec, precision: Precision, cfg: SchedulerConfig
               ) -> tuple[float, float, dict[str, float]]:
    """(bytes left to the KV cache, KV bytes per token, what takes the rest: weights, the largest
    iteration's activations and its tokens, the memory the runtime leaves), per device."""
    tokens = {"chunked": cfg.chunk_tokens, "concurrent": cfg.concurrent_chunk_tokens}.get(cfg.policy,
                                                                                           cfg.max_batched_tokens)
    per_token = kv_bytes_per_token_per_device(model, precision, system.tp, system.pp, system.dies)
    weights = weight_bytes_per_device(model, precision, system.tp, system.pp, system.dies)
    activations = activation_bytes_per_device(model, precision, system.tp, tokens, min(tokens, cfg.max_batch),
                                              system.dies)
    fixed = weights + activations
    total = capacity_bytes(system)
    if cfg.memory_basis == "reserve":          # SGLang: the share not given to weights and KV is the reserve
        free = cfg.memory_fraction * total - weights
    elif cfg.memory_basis == "total":
        free = cfg.memory_fraction * total - fixed
    else:
        free = cfg.memory_fraction * (total - fixed)
    return free, per_token, {"weights": weights, "activations": activations, "tokens": tokens, "total": total}


def simulate(system: System, model: ModelSpec, precision: Precision, requests: Sequence[Request] | RequestArrays, *,
             config: SchedulerConfig = DEFAULT_CONFIG, ttft_slo_ms: float | None = None,
             tbt_slo_ms: float | None = None, progress: bool = False,
             window: tuple[float, float] = ALL, step_by_step: bool = False,
             clients: int | None = None, prefix_cached: float = 0.0) -> ServingResult:
    """Serve ``requests`` on ``system`` under ``config.policy``; replicas share the load round-robin.
    ``window``: fractions of the requests (in arrival order) whose latencies count.
    ``clients``: a closed loop (a benchmark at fixed concurrency): that many clients, shared equally by
    the replicas, each keeps one request outstanding and sends the next, in the order given, when its
    previous one ends; the requests' arrival times are ignored. Latencies count from sending.
    ``step_by_step``: price decode iterations one at a time instead of in closed-form runs (same
    result; the reference for tests and the benchmark's baseline).
    ``prefix_cached``: share of each prompt whose KV cache the server already holds when it arrives
    (automatic prefix caching of prompts sent before, as a benchmark that replays its prompts to one
    server instance finds them: 1.0); the prefill computes the rest, attending to the cached part
    (``driver.cached_prefix_tokens``)."""
    config.check()
    if isinstance(prefix_cached, bool) or not isinstance(prefix_cached, (int, float)) \
            or not 0 <= prefix_cached <= 1:
        raise ConfigError("prefix_cached", prefix_cached, "must be a share of the prompt between 0 and 1")
    arrays = RequestArrays.of(requests)
    if not (0 <= window[0] < window[1] <= 1):
        raise ConfigError("window", window, "must be fractions 0 <= start < end <= 1")
    cls = scheduler_class(config.policy)
    engines = cls.engines(system)
    cap = kv_capacity_tokens(system, model, precision, config)
    if cap < config.block_tokens:
        _, _, took = _kv_budget(system, model, precision, config)
        gib = 2.0 ** 30
        raise ConfigError("hardware", system.device.name,
                          f"{model.name} ({precision.name}) leaves no memory for a KV cache at tp={system.tp}: of "
                          f"the {took['total'] / gib:.1f} GiB the runtime leaves a device, the weights take "
                          f"{took['weights'] / gib:.1f} GiB and the activations of a {took['tokens']:,}-token "
                          f"iteration {took['activations'] / gib:.1f} GiB")
    rates = stage_rates(system)
    rec = Recorder(None if ttft_slo_ms is None else ttft_slo_ms / 1e3, None if tbt_slo_ms is None else tbt_slo_ms / 1e3)
    rec.horizon = float(arrays.arrival_s[-1])
    per_replica = 0
    if clients is not None:
        if isinstance(clients, bool) or not isinstance(clients, int) or clients < 1:
            raise ConfigError("concurrency", clients, "must be a positive whole number of clients")
        if cls is DisaggregatedScheduler:
            raise ConfigError("policy", config.policy, "a closed loop (clients) needs the replica that ends a request "
                                                       "to admit its client's next one, which prefill and decode "
                                                       "replicas apart cannot do")
        if clients % system.replicas:
            raise ConfigError("concurrency", clients, f"must be a multiple of the {system.replicas} replicas (each "
                                                      f"serves an equal share of the clients)")
        per_replica = clients // system.replicas
        # a replica never holds more requests than its clients have sent
        config = replace(config, max_batch=min(config.max_batch, per_replica))
    cost = iteration_cost(system, model, precision, tuple(sorted(engines.items())) if engines else None)
    setting = Setting(config, cost, cap, rec, rates.hbm_bw, system.replicas, step_by_step,
                      request_overhead_s=system.runtime.request_overhead_s, link_bw=rates.link_bw,
                      kv_bytes_per_token=kv_bytes_per_token_per_device(model, precision, system.tp, system.pp,
                                                                       system.dies),
                      handoff_latency_s=rates.step_latency_s, clients=per_replica,
                      runtime=system.runtime, prefix_cached=float(prefix_cached))
    measured = measured_range(len(arrays), window)
    bar = Progress(total=len(arrays), label=f"simulate ({config.policy})") if progress else None
    try:
        if cls is DisaggregatedScheduler:
            if system.replicas < 2:
                raise ConfigError("devices", system.devices, f"disaggregated serving needs at least two replicas "
                                                             f"(devices >= 2 x tp = {2 * system.tp})")
            if system.runtime.first_token_from_decode:
                # the decode side would receive a prompt's KV cache one token short and owe its first
                # token; no runtime that splits the prompt so (TurboMind before lmdeploy 0.1.0) served
                # disaggregated
                raise ConfigError("runtime.first_token_from_decode", True, "disaggregated serving hands the decode "
                                                                           "side a request with its first token; "
                                                                           "simulate a profile without it")
            if rates.link_bw <= 0:
                raise ConfigError("links.count", 0, "disaggregated serving moves KV caches over chip-to-chip links")
            serve_disaggregated(cls.prefill, cls.decode, config.prefill_share, setting, arrays, measured, bar)
        else:
            serve_colocated(cls, setting, arrays, measured, bar)
    finally:
        if bar:
            bar.close()
    return _summarise(config, arrays, rec, system, ttft_slo_ms, tbt_slo_ms, cap, measured)


def _summarise(config, arrays: RequestArrays, rec: Recorder, system: System, ttft_slo, tbt_slo, cap,
               measured: tuple[int, int]) -> ServingResult:
    n = len(arrays)
    start = float(arrays.arrival_s[0])
    end = max(rec.last_done, start)
    makespan = max(end - start, 1e-12)
    span = float(arrays.arrival_s[-1]) - start
    rate = (n - 1) / span if n > 1 and span > 0 else None
    n_measured = measured[1] - measured[0]
    attainment = rec.slo_ok / n_measured if n_measured else 0.0
    busy, dram = rec.busy()
    replicas = system.replicas
    backlog = n - rec.refused - rec.admitted_in_horizon
    return ServingResult(
        policy=config.policy, n_requests=n, n_finished=rec.finished, refused=rec.refused,
        preemptions=rec.preemptions, ttft_ms=rec.ttft.summary(1e3), tbt_ms=rec.tbt.summary(1e3),
        tpot_ms=rec.tpot.summary(1e3), e2e_ms=rec.e2e.summary(1e3), queue_ms=rec.queue.summary(1e3),
        output_tok_s=rec.out_tokens / makespan, total_tok_s=(rec.out_tokens + rec.in_tokens) / makespan,
        requests_per_s=rec.finished / makespan, goodput_rps=attainment * rec.finished / makespan,
        slo_attainment=attainment, mean_in_system=rec.sojourn_s / makespan, arrival_rate=rate,
        mean_e2e_ms=rec.e2e.mean * 1e3, makespan_s=makespan,
        utilisation={k: v / (makespan * replicas) for k, v in sorted(busy.items())},
        hbm_utilisation=dram / (system.device.hbm_bw_bytes_per_s * makespan * replicas),
        iterations=rec.iterations, peak_in_service=rec.peak_in_service, kv_capacity_tokens=cap,
        measured_requests=rec.measured_finished, backlog_at_last_arrival=max(0, backlog),
        overloaded=rate is not None and backlog > max(10, OVERLOAD_BACKLOG * n),
        ttft_slo_ms=ttft_slo, tbt_slo_ms=tbt_slo,
        histograms={"ttft": rec.ttft, "tbt": rec.tbt, "tpot": rec.tpot, "e2e": rec.e2e, "queue": rec.queue},
    )


class NeverSaturatedError(AdorError):
    """A capacity search whose load met the SLOs at every rate it tried: no capacity to report."""


def max_sustainable_rate(run, *, target: float = 0.9, low: float = 0.01, high: float | None = None,
                         tolerance: float = 0.05, max_runs: int = 24) -> tuple[float, ServingResult | None]:
    """Highest arrival rate whose SLO attainment stays >= ``target``, by doubling then bisection.
    ``run(rate)`` returns a ServingResult (same requests' lengths and seed at every rate)."""
    best, best_result = 0.0, None
    rate = high or 1.0
    runs = 0
    if high is None:
        while runs < max_runs:
            res = run(rate)
            runs += 1
            if res.slo_attainment < target:
                high = rate
                break
            best, best_result, low = rate, res, rate
            rate *= 2
        if high is None:
            raise NeverSaturatedError(f"rate={best:.3g}: the SLOs still held at every rate tried up to this many "
                                      f"requests per second, so no capacity was found: the load has too few "
                                      f"requests to fill the system at any rate (give more)")
    hi = high if high is not None else rate
    lo = low if best else 0.0
    while runs < max_runs and (hi - lo) > tolerance * max(hi, 1e-9):
        mid = (lo + hi) / 2 if lo else hi / 2
        res = run(mid)
        runs += 1
        if res.slo_attainment >= target:
            best, best_result, lo = mid, res, mid
        else:
            hi = mid
        if not lo and mid < 1e-6:
            break
    return best, best_result


@dataclass(frozen=True)
class PercentileVerdict:
    """A run judged by its percentiles: passed when its p99 TTFT and p99 TBT are within the
    targets given (None: not judged). Reads as an attainment of 1 or 0, so ``max_sustainable_rate``
    bisects on it with ``target=1``."""
    result: ServingResult
    ttft_p99_ms: float | None
    tbt_p99_ms: float | None

    @property
    def passed(self) -> bool:
        return ((self.ttft_p99_ms is None or self.result.ttft_ms["p99"] <= self.ttft_p99_ms)
                and (self.tbt_p99_ms is None or self.result.tbt_ms["p99"] <= self.tbt_p99_ms))

    @property
    def slo_attainment(self) -> float:
        return 1.0 if self.passed else 0.0


def percentile_capacity(run, *, ttft_p99_ms: float | None, tbt_p99_ms: float | None,
                        **search) -> tuple[float, ServingResult | None]:
    """Highest arrival rate at which the simulated p99 TTFT and p99 TBT stay within the targets
    (``run(rate)`` returns a ServingResult), with the run at that rate."""
    if ttft_p99_ms is None and tbt_p99_ms is None:
        raise ConfigError("slo", None, "a percentile capacity needs ttft_p99_ms and/or tbt_p99_ms")
    verdicts: dict[float, PercentileVerdict] = {}

    def judged(rate: float) -> PercentileVerdict:
        verdicts[rate] = PercentileVerdict(run(rate), ttft_p99_ms, tbt_p99_ms)
        return verdicts[rate]
    rate, best = max_sustainable_rate(judged, target=1.0, **search)
    return rate, None if best is None else verdicts[rate].result

