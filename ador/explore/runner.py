"""Running studies: create or reopen, evaluate baselines once, run trials, resume, scale out.

The default path keeps the sampler's study in memory and writes each *completed* trial to the
durable storage in one transaction: the sampler's many reads never touch the database, a crash
never leaves a half-written or RUNNING trial behind, and every completed trial is on disk before
the next one starts. Resume (and every worker, every few trials) replays the stored trials into
the in-memory study, so samplers see all trials of all workers.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from ador.errors import AdorError, ConfigError
from ador.explore.config import SamplerSpec, Study, model_version, study_from_dict
from ador.explore.metrics import ENERGY_METRICS, evaluate_design, feasibility, finite, serving_metrics
from ador.explore.params import distributions, knob_values
from ador.explore.pareto import front_trials, hv_reference, ratio_hypervolume
from ador.explore.record import (BASELINE_PREFIX, REASONS, baseline_summary, baselines_of, is_feasible,
                                 settings, stored_metrics, trial_attrs, write_setting)
from ador.explore.samplers import PYMOO, build_sampler, check_sampler
from ador.explore.locate import STUDIES_ENV, launch_storage, read_storage
from ador.explore.storage import (UID_KEY, NoStorageError, TrialRecorder, check_study_name, open_storage, redact,
                                  with_retries)
from ador.hardware import GPUS
from ador.progress import Progress
from ador.workload import get_model, get_precision

optuna.logging.set_verbosity(optuna.logging.WARNING)

GPU_POLICY_FOR_CONCURRENT = "chunked"   # GPUs cannot split phases over engines; chunked prefill is their best
SYNC_EVERY_S = 2.0                # seconds between pulls of other workers' trials


@dataclass
class RunStats:
    completed: int = 0
    failed: int = 0
    feasible: int = 0
    seconds: float = 0.0


# --- scoring ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    values: list[float] | None          # None: the trial failed
    constraints: dict[str, float]       # name -> value, <= 0 feasible (Optuna's constraint API)
    user_attrs: dict[str, Any]


class Scorer:
    """Scores knob values for one study (holds the resolved model, precision, workload)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        spec = study.spec
        self.model = get_model(spec.model)
        self.precision = get_precision(spec.precision)
        self.constraints = study.all_constraints()
        self.baseline_constraints = study.all_constraints(iso=False)
        needed = set(study.metric_names) | {c.metric for c in self.constraints}
        self.need_energy = bool(needed & ENERGY_METRICS)
        self.keep = stored_metrics(study)

    def metrics(self, device) -> dict[str, float]:
        spec = self.study.spec
        runtime = self.study.runtime_for(device.kind)
        out = evaluate_design(device, self.model, self.precision, self.study.workload, tp=spec.tp, pp=spec.pp,
                              devices=spec.devices, need_energy=self.need_energy, runtime=runtime,
                              power_rule=spec.power_rule)
        load = self.study.serving
        if load is not None and device.kind == "gpu" and load.policy == "concurrent":
            load = dataclasses.replace(load, policy=GPU_POLICY_FOR_CONCURRENT)
        if load is not None and out["memory_utilisation"] <= 1.0:
            # the same requests (same seed) for every design, so designs compare on equal terms
            out.update(serving_metrics(device, self.model, self.precision, self.study.workload, load, tp=spec.tp,
                                       pp=spec.pp, devices=spec.devices, seed=spec.seed, runtime=runtime))
        return out

    @property
    def n_constraints(self) -> int:
        """Length of the constraint vector ``judge`` returns for a design."""
        return 1 + (2 if self.study.spec.reticle_limit else 0) + len(self.constraints)

    def constraint_names(self, design: bool = True) -> list[str]:
        """The names of ``judge``'s constraint values, in order (Optuna stores each by name)."""
        names = ["fits_memory"]
        if design and self.study.spec.reticle_limit:
            names += ["within_reticle", "shoreline"]
        for c in (self.constraints if design else self.baseline_constraints):
            names.append(f"{c.metric}<={c.max:g}" if c.max is not None else f"{c.metric}>={c.min:g}")
        return names

    def judge(self, metrics: dict[str, float], *, design: bool = True) -> tuple[list[float], list[str]]:
        """Constraint values (<= 0 feasible; named by ``constraint_names``) and the reasons a scored
        device misses them. Designs and GPU baselines are judged by the same constraints and SLOs; the
        die limits (reticle, shoreline) and the iso rules, which say what designs may be, apply to
        designs only (``design``)."""
        reticle = design and self.study.spec.reticle_limit
        reasons = feasibility(metrics, reticle=reticle)
        constraints = [metrics["memory_utilisation"] - 1.0]
        if reticle:
            from ador.cost import RETICLE_LIMIT_MM2
            constraints.append(metrics["die_area_mm2"] / RETICLE_LIMIT_MM2 - 1.0)
            constraints.append(metrics["shoreline_utilisation"] - 1.0)
        for c in (self.constraints if design else self.baseline_constraints):
            v = metrics[c.metric]
            if c.max is not None:
                constraints.append((v - c.max) / abs(c.max) if c.max else v)
                if v > c.max:
                    reasons.append(f"{c.metric} {v:.4g} > {c.max:g}")
            else:
                assert c.min is not None                 # a constraint has a max or a min (checked on load)
                constraints.append((c.min - v) / abs(c.min) if c.min else -v)
                if v < c.min:
                    reasons.append(f"{c.metric} {v:.4g} < {c.min:g}")
        return constraints, reasons

    def __call__(self, values: dict[str, Any]) -> Outcome:
        space = self.study.space
        try:
            changes, broken = space.resolve(values)
            if broken:
                return Outcome(None, {}, {REASONS: [f"structural constraint: {c}" for c in broken]})
            device = space.apply(changes)
            metrics = self.metrics(device)
        except AdorError as err:
            return Outcome(None, {}, {REASONS: [str(err)]})
        return self.outcome(metrics)

    def outcome(self, metrics: dict[str, float], *, is_design: bool = True) -> Outcome:
        """The trial's result from its metrics: judged, with named constraints and a compact record."""
        if not finite(metrics):
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            return Outcome(None, {}, {REASONS: [f"non-finite metrics: {', '.join(bad)}"]})
        values, reasons = self.judge(metrics, design=is_design)
        constraints = dict(zip(self.constraint_names(is_design), values, strict=True))
        missing = [m for m in self.study.metric_names if m not in metrics]
        if missing:   # serving metrics of a design that cannot hold the model: nothing to serve with
            return Outcome(None, {}, trial_attrs(metrics, reasons or [f"no {', '.join(missing)}"], self.keep))
        return Outcome([metrics[m] for m in self.study.metric_names], constraints,
                       trial_attrs(metrics, reasons, self.keep))


def scorer_for(study: Study) -> Scorer:
    """The scorer a study needs: a system-level study (one with an offered ``load``) scores whole
    deployments, any other study one design at its fixed system."""
    if study.spec.load is not None:
        from ador.explore.system_study import SystemScorer
        return SystemScorer(study)
    return Scorer(study)


# --- opening studies -------------------------------------------------------------------------

def _baselines(study: Study) -> dict[str, Any]:
    """Each GPU baseline scored and judged like a design: a GPU that misses the study's SLOs or
    constraints is stored as infeasible with its reasons, never as a feasible reference."""
    scorer = Scorer(study)
    out: dict[str, Any] = {}
    for name in study.spec.baselines:
        try:
            metrics = scorer.metrics(GPUS[name])
        except AdorError as err:
            out[name] = {"error": str(err), "feasible": False, "infeasible_reasons": [str(err)]}
            continue
        constraints, reasons = scorer.judge(metrics, design=False)
        out[name] = {"metrics": metrics, "feasible": not reasons, "infeasible_reasons": reasons,
                     "constraints": constraints, "constraint_names": scorer.constraint_names(design=False),
                     "runtime": study.runtime_for("gpu").name}
        if study.serving is not None:
            out[name]["serving_policy"] = GPU_POLICY_FOR_CONCURRENT if study.serving.policy == "concurrent" \
                else study.serving.policy
    return out


COMPLETE_KEY = "ador_complete"   # written last when a study is created: without it the creation was cut short


def open_study(study: Study, storage_url: str | None = None, *, sampler: str | None = None,
               seed: int | None = None, storage_dir: str | None = None) -> tuple[optuna.Study, str]:
    """Create the study in storage, or reopen it after checking it was made from the same study
    definition and the same model version.

    Creation is complete only once every setting (definition, model version, sampler, baselines,
    metric names) is stored and, last, the ``ador_complete`` marker: a study without the marker
    and without trials is a creation that was cut short (a kill, a lost database), which reading
    commands refuse and which this function redoes."""
    check_study_name(study.name)
    name = sampler or study.spec.sampler.name
    # a sampler given on the command line starts from its defaults: the file's options are
    # those of the file's sampler
    options = dict(study.spec.sampler.options) if name == study.spec.sampler.name else {}
    check_sampler(SamplerSpec(name, options), study.space)      # before anything is stored
    url, folder = launch_storage(study.name, study.path, storage=storage_url, file_storage_url=study.spec.storage,
                                 directory=storage_dir)        # where: see ador/explore/locate.py
    if folder is not None:
        folder.mkdir(exist_ok=True)                              # the default place; other folders must exist
    storage = open_storage(url, create=True)
    try:
        durable = optuna.load_study(study_name=study.name, storage=storage)
    except KeyError:
        durable = None
    if durable is not None and _is_made(durable):
        check_same(study, settings(durable))
        fail_orphans(durable)
        return durable, url
    made: dict[str, Any] = {"ador_config": study.to_dict(), "ador_config_hash": study.config_hash(),
                "ador_model_version": model_version(),
                "ador_sampler": {"name": name, "options": options, "seed": study.spec.seed if seed is None else seed},
                "ador_created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "ador_baselines": _baselines(study)}
    directions = [optuna.study.StudyDirection.MINIMIZE if d == "minimize" else optuna.study.StudyDirection.MAXIMIZE
                  for d in study.directions]
    if durable is not None and durable.directions != directions:   # half made from another definition
        optuna.delete_study(study_name=study.name, storage=storage)
        durable = None
    if durable is None:
        durable = optuna.create_study(storage=storage, study_name=study.name, directions=study.directions,
                                      load_if_exists=True)
    for key, value in made.items():
        write_setting(durable, key, value)
    for gpu, base in made["ador_baselines"].items():     # what optuna-dashboard and `optuna studies` show
        durable.set_user_attr(BASELINE_PREFIX + gpu, baseline_summary(base, study.metric_names))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        durable.set_metric_names(study.metric_names)
    write_setting(durable, COMPLETE_KEY, True)
    return durable, url


def _is_made(durable: optuna.Study) -> bool:
    """Creation finished: the marker, or trials (a study made before the marker existed)."""
    return bool(settings(durable).get(COMPLETE_KEY)) or bool(durable.get_trials(deepcopy=False))


def fail_orphans(durable: optuna.Study) -> int:
    """Mark RUNNING trials as FAIL. ador's workers never leave a trial RUNNING in storage (a trial is
    written once, finished), so a RUNNING trial belongs to a client that died mid-trial (a plain
    Optuna process, or an older ador); left alone it would never finish."""
    storage = durable._storage
    orphans = durable.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        storage.set_trial_user_attr(t._trial_id, REASONS, ["worker died while this trial was running"])
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(orphans)


def check_same(study: Study, attrs: dict[str, Any]) -> None:
    if attrs.get("ador_config_hash") != study.config_hash():
        stored = attrs.get("ador_config", {})
        current = study.to_dict()
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise ConfigError("study", study.name, f"the stored study was created from a different definition "
                                               f"(changed: {', '.join(changed) or 'details'}); launch it under "
                                               f"another name or restore the original file")
    if attrs.get("ador_model_version") != model_version():
        raise ConfigError("study", study.name, f"the stored study was scored by model {attrs.get('ador_model_version')}"
                                               f", this ador is {model_version()}; results would mix two models, "
                                               f"so launch it under another name")


def load_stored(name: str, storage_url: str | None, *, write: bool = False,
                storage_dir: str | None = None) -> tuple[Study, optuna.Study, str]:
    """Reopen a stored study from its storage alone (no study file needed). ``name`` is a study
    name, or a study file (its storage is found where ``launch`` put it). ``write``: the caller
    will add trials (RUNNING trials of dead clients are failed first); reading creates nothing."""
    url, looked = storage_url, list[Path]()
    if name.endswith((".yaml", ".yml")) and not storage_url:
        from ador.explore.config import load_study
        from ador.explore.locate import find_study_file
        study_file = load_study(find_study_file(name))
        name = study_file.name
        url, _ = launch_storage(name, study_file.path, file_storage_url=study_file.spec.storage,
                                directory=storage_dir)
    check_study_name(name)
    if url is None:
        url, looked = read_storage(name, directory=storage_dir)
    try:
        storage = open_storage(url, create=False)
    except NoStorageError as err:
        where = f" (looked in {', '.join(str(d) for d in looked)}; --storage-dir or ${STUDIES_ENV} name " \
                "another folder)" if looked else ""
        raise ConfigError("study", name, f"no such study: {err.value} {err.reason}{where}") from None
    try:
        durable = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError("study", name, f"no such study in {redact(url)} "
                                         f"(studies: {', '.join(names) or 'none'})") from None
    try:
        attrs = settings(durable)
    except RecursionError:
        raise ConfigError("study", name, "its stored settings are nested too deeply to read") from None
    if not _is_made(durable):
        raise ConfigError("study", name, "has no settings: its creation was interrupted (launch it again to finish "
                                         "it) or it was not made by ador")
    if "ador_config" not in attrs:
        raise ConfigError("study", name, "was not created by ador (no stored definition)")
    study = study_from_dict(attrs["ador_config"], name)
    if write:
        fail_orphans(durable)
    return study, durable, url


# --- running ---------------------------------------------------------------------------------

def _copy_in(mem: optuna.Study, trials: list[FrozenTrial]) -> None:
    if trials:
        mem.add_trials([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)])


class TrialWriter:
    """Writes finished trials to the durable storage, one transaction each, and pulls the trials
    of other workers."""

    def __init__(self, durable: optuna.Study) -> None:
        self.durable = durable
        self.storage = durable._storage
        self.study_id = durable._study_id
        self.recorder = TrialRecorder(self.storage, self.study_id)
        self.seen: set[int] = set()         # durable trial ids already in the in-memory study

    def write(self, trial: FrozenTrial) -> int:
        """Store a finished trial exactly once: it carries a random id, and a retry after an error
        first looks for that id (a commit whose acknowledgement was lost did happen)."""
        trial = copy.copy(trial)
        trial.system_attrs = {**trial.system_attrs, UID_KEY: trial.system_attrs.get(UID_KEY) or uuid.uuid4().hex}
        uid = str(trial.system_attrs[UID_KEY])
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            found = self.recorder.find(uid) if attempts > 1 else None
            return found if found is not None else self.recorder.write(trial)
        trial_id = with_retries(attempt, "writing a trial", reset=self.storage.remove_session)
        self.seen.add(trial_id)
        return trial_id

    def pull(self) -> list[FrozenTrial]:
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False,
                                             states=(TrialState.COMPLETE, TrialState.FAIL))
        new = [t for t in trials if t._trial_id not in self.seen]
        self.seen.update(t._trial_id for t in new)
        return new


def run_trials(study: Study, durable: optuna.Study, n_trials: int, *, sampler: str | None = None,
               seed: int | None = None, progress: bool = True, label: str = "") -> RunStats:
    """Run ``n_trials`` new trials into ``durable`` with the stored (or given) sampler settings."""
    made = settings(durable)
    stored = made.get("ador_sampler", {})
    name = sampler or stored.get("name", study.spec.sampler.name)
    options = stored.get("options", {}) if name == stored.get("name") else dict(study.spec.sampler.options)
    base_seed = stored.get("seed", study.spec.seed) if seed is None else seed
    writer = TrialWriter(durable)
    previous = writer.pull()
    # a resumed run must not replay the random stream of the first run
    run_seed = (base_seed * 1_000_003 + len(previous)) % (2 ** 31)
    if name == PYMOO:
        from ador.explore.pymoo_engine import run_pymoo
        return run_pymoo(study, writer, previous, n_trials, options, run_seed, progress, label)
    hv_ref = list(hv_reference(made.get("ador_baselines") or {}, study.metric_names).values())
    from ador.explore.batch import batch_size, run_batches      # a batch scored in one vectorised call
    size = batch_size(study, name, options)
    if size:
        return run_batches(study, writer, previous, n_trials, build_sampler(name, options, study.space, run_seed),
                           size, progress, label or f"{study.name} ({name})", [v for _, v in hv_ref])
    mem = optuna.create_study(directions=study.directions, sampler=build_sampler(name, options, study.space, run_seed))
    _copy_in(mem, previous)
    scorer = scorer_for(study)
    dists = distributions(study.space)
    stats = RunStats()
    bar = Progress(total=n_trials, label=label or f"{study.name} ({name})") if progress else None
    feasible_points = [t.values for t in previous if is_feasible(t)]
    start = time.perf_counter()
    hv, hv_at = 0.0, 0.0
    pulled_at = start
    from ador.explore.system_study import strata
    turns = strata(study, name)
    try:
        for i in range(n_trials):
            if turns:          # a system-level study: the device stratum of this trial, in turn
                mem.enqueue_trial(turns[(len(previous) + i) % len(turns)])
            trial = mem.ask(dists)
            outcome = scorer(knob_values(study.space, trial.params))
            for key, value in outcome.user_attrs.items():
                trial.set_user_attr(key, value)
            if outcome.values is None:
                mem.tell(trial, state=TrialState.FAIL)
                stats.failed += 1
            else:
                for key, value in outcome.constraints.items():
                    trial.set_constraint(key, value)
                mem.tell(trial, outcome.values)
                stats.completed += 1
                if outcome.user_attrs["feasible"]:
                    stats.feasible += 1
                    feasible_points.append(outcome.values)
            writer.write(mem._storage.get_trial(trial._trial_id))
            now = time.perf_counter()
            if now - pulled_at > SYNC_EVERY_S:
                _copy_in(mem, writer.pull())
                pulled_at = now
            if bar:
                if now - hv_at > 1.0:
                    hv, hv_at = ratio_hypervolume(feasible_points, study.directions, [v for _, v in hv_ref]), now
                bar.update(i + 1, feasible=stats.feasible, HV=f"{hv:.3f}")
    finally:
        if bar:
            bar.close()
        stats.seconds = time.perf_counter() - start
    return stats


def _worker_main(config: dict[str, Any], name: str, url: str, n_trials: int, sampler: str | None,
                 seed: int, queue, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    try:
        study = study_from_dict(config, name)
        durable = optuna.load_study(study_name=name, storage=open_storage(url))
        stats = run_trials(study, durable, n_trials, sampler=sampler, seed=seed, progress=False)
        queue.put(("ok", dataclasses.asdict(stats)))
    except AdorError as err:
        queue.put(("error", str(err)))


PARENT_POLL_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive the command that started it (a killed launch would leave its
    workers adding trials). On Linux the kernel sends SIGKILL when the parent dies; everywhere, a
    thread checks the parent every half second."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass                                     # the thread below still watches

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)
    if os.getppid() != parent_pid:                   # the parent died before the watch began
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="ador-parent-watch").start()


def run_workers(study: Study, durable: optuna.Study, url: str, n_trials: int, workers: int, *,
                sampler: str | None = None, seed: int | None = None, progress: bool = True) -> RunStats:
    """``workers`` processes on this machine share the study; trials are split between them.
    However this function ends (an error, SIGINT, SIGTERM turned into SystemExit by the command),
    no worker outlives it; if the process is killed outright, the workers see it and exit."""
    if workers <= 1:
        return run_trials(study, durable, n_trials, sampler=sampler, seed=seed, progress=progress)
    base = settings(durable).get("ador_sampler", {}).get("seed", study.spec.seed) if seed is None else seed
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    shares = [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]
    procs = [ctx.Process(target=_worker_main, args=(study.to_dict(), study.name, url, share, sampler,
                                                    base + 7919 * (i + 1), queue, os.getpid()))
             for i, share in enumerate(shares) if share]
    start = time.perf_counter()
    total = RunStats()
    errors = []
    bar = Progress(total=n_trials, label=f"{study.name} ({len(procs)} workers)") if progress else None
    before = len(durable.get_trials(deepcopy=False)) if bar else 0     # the bar counts this run's trials
    try:
        for p in procs:
            p.start()
        results = 0
        while results < len(procs):
            try:
                kind, payload = queue.get(timeout=0.5)
            except Exception:
                if bar:
                    done = len(durable.get_trials(deepcopy=False)) - before
                    bar.update(min(done, n_trials))
                if not any(p.is_alive() for p in procs) and queue.empty():
                    break
                continue
            results += 1
            if kind == "ok":
                for key in ("completed", "failed", "feasible"):
                    setattr(total, key, getattr(total, key) + payload[key])
            else:
                errors.append(payload)
        for p in procs:
            p.join()
    finally:
        _stop(procs)
        if bar:
            bar.close()
    total.seconds = time.perf_counter() - start
    if errors:
        raise AdorError(errors[0])
    dead = [p.exitcode for p in procs if p.exitcode]
    if dead:
        raise AdorError(f"{len(dead)} worker process(es) died (exit codes {dead}); completed trials are saved, "
                        f"resume the study")
    return total


def _stop(procs: list) -> None:
    """Terminate workers still running (SIGTERM, then SIGKILL after 5 s)."""
    alive = [p for p in procs if p.pid is not None and p.is_alive()]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + 5.0
    for p in alive:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


# --- reading results -------------------------------------------------------------------------

def status(durable: optuna.Study) -> dict[str, Any]:
    trials = durable.get_trials(deepcopy=False)
    count = lambda s: sum(1 for t in trials if t.state == s)  # noqa: E731
    made = settings(durable)
    directions = [d.name.lower() for d in durable.directions]
    front = front_trials(trials, directions)
    names = durable.metric_names or []
    ref = hv_reference(made.get("ador_baselines") or {}, names)
    return {
        "study": durable.study_name, "n_trials": len(trials), "n_complete": count(TrialState.COMPLETE),
        "n_failed": count(TrialState.FAIL), "n_running": count(TrialState.RUNNING),
        "n_feasible": sum(1 for t in trials if is_feasible(t)), "n_pareto": len(front),
        "hypervolume": ratio_hypervolume([t.values for t in front], directions, [v for _, v in ref.values()]),
        "hypervolume_reference": {m: {"gpu": g, "value": v} for m, (g, v) in ref.items()},
        "objectives": durable.metric_names, "directions": directions,
        "model_version": made.get("ador_model_version"),
        "sampler": made.get("ador_sampler"), "created": made.get("ador_created"),
    }


def pareto_rows(study: Study, durable: optuna.Study) -> list[dict[str, Any]]:
    """The front (distinct feasible Pareto designs) with their metrics and ratios against each
    baseline, best first on the first objective."""
    from ador.explore.metrics import ratio_vs
    from ador.explore.record import metrics_of
    baselines = baselines_of(durable)
    rows = []
    front = front_trials(durable.get_trials(deepcopy=False), study.directions)
    for t in sorted(front, key=lambda t: (to_minimise_key(t.values, study.directions), t.number)):
        metrics = metrics_of(t)
        row: dict[str, Any] = {"trial": t.number, **{m: metrics.get(m) for m in study.metric_names}}
        for extra in ("die_area_mm2", "ttft_ms", "tbt_p99_ms", "output_tok_s", "cost_usd"):
            row.setdefault(extra, metrics.get(extra))
        for gpu, base in baselines.items():
            for m in study.metric_names:
                bm, v = base.get("metrics", {}).get(m), metrics.get(m)
                row[f"{m}_x_vs_{gpu}"] = ratio_vs(m, v, bm) if bm is not None and v is not None else None
        rows.append(row)
    return rows


def to_minimise_key(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    return tuple(v if d == "minimize" else -v for v, d in zip(values, directions))


def find_trial(durable: optuna.Study, number: int) -> FrozenTrial:
    trials = durable.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise ConfigError("trial", number, f"no such trial (0..{len(trials) - 1})")
    return match[0]


def trial_design(study: Study, durable: optuna.Study, number: int) -> dict[str, Any]:
    """A trial's design as a mapping, rebuilt from its parameters and the stored search space."""
    from ador.explore.record import design_mapping
    return design_mapping(study, find_trial(durable, number))
