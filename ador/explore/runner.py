"""Running studies: create or reopen, evaluate baselines once, run trials, resume, scale out.

The default path keeps the sampler's study in memory and writes each *completed* trial to the
durable storage in one transaction: the sampler's many reads never touch the database, a crash
never leaves a half-written or RUNNING trial behind, and every completed trial is on disk before
the next one starts. What the in-memory study is given (at a resume, from other workers, for a
design met before) is ador/explore/history.py's; scoring is ador/explore/scoring.py's, worker
processes ador/explore/workers.py's, reopening a stored study ador/explore/reopen.py's, reading
results ador/explore/results.py's.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any, Sequence

import optuna

from ador.errors import AdorError
from ador.explore.config import SamplerSpec, Study, model_version
from ador.explore.params import distributions, knob_values
from ador.explore.pareto import hv_reference, ratio_hypervolume
from ador.explore.record import BASELINE_PREFIX, baseline_summary, settings, write_setting
from ador.explore.reopen import COMPLETE_KEY, check_same, fail_orphans, is_made, load_stored  # noqa: F401
from ador.explore.samplers import PYMOO, build_sampler, check_sampler, operator_defaults, stored_options
from ador.explore.locate import launch_storage
from ador.explore.history import History, RunStats, TrialWriter, tell
from ador.explore.scoring import GPU_POLICY_FOR_CONCURRENT, Outcome, Scorer, scorer_for  # noqa: F401 (re-exported)
from ador.explore.storage import NoStorageError, check_study_name, open_storage, redact  # noqa: F401
from ador.explore.stored import StoredTrials
from ador.explore.table_rows import TableLayout
from ador.hardware import GPUS
from ador.progress import Progress

SYNC_EVERY_S = 2.0                # seconds between pulls of other workers' trials


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
    if durable is not None and is_made(durable):
        check_same(study, settings(durable))
        fail_orphans(durable)
        return durable, url
    made: dict[str, Any] = {"ador_config": study.to_dict(), "ador_config_hash": study.config_hash(),
                "ador_model_version": model_version(),
                # the operators ador defaults to today, named: a resume keeps them whatever later defaults are
                "ador_sampler": {"name": name, "options": {**operator_defaults(name), **options},
                                 "seed": study.spec.seed if seed is None else seed},
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


# --- running ---------------------------------------------------------------------------------

def run_seed(base_seed: int, n_stored: int) -> int:
    """The sampler's seed for a run: a resumed run must not replay the random stream of the first."""
    return (base_seed * 1_000_003 + n_stored) % (2 ** 31)


def run_trials(study: Study, durable: optuna.Study, n_trials: int, *, sampler: str | None = None,
               seed: int | None = None, progress: bool = True, label: str = "") -> RunStats:
    """Run ``n_trials`` new trials into ``durable`` with the stored (or given) sampler settings."""
    made = settings(durable)
    stored = made.get("ador_sampler", {})
    name = sampler or stored.get("name", study.spec.sampler.name)
    if name == stored.get("name"):
        options = stored_options(name, stored.get("options", {}))
    else:                      # another sampler than the stored one: the study file's options are for its own
        options = dict(study.spec.sampler.options) if name == study.spec.sampler.name else {}
    base_seed = stored.get("seed", study.spec.seed) if seed is None else seed
    if name == PYMOO:
        from ador.explore.pymoo_engine import run_pymoo
        reader = StoredTrials(durable._storage, durable._study_id)
        writer = TrialWriter(durable, table_row=TableLayout.of(study).row_of, space=study.space)
        return run_pymoo(study, writer, reader, n_trials, options,
                         run_seed(base_seed, reader.finished()), progress, label)
    # the seed depends on the stored count, so the sampler is made once that is known
    seed_now = run_seed(base_seed, StoredTrials(durable._storage, durable._study_id).finished())
    mem = optuna.create_study(directions=study.directions, sampler=build_sampler(name, options, study.space, seed_now))
    history = History(durable, mem, table_row=TableLayout.of(study).row_of, space=study.space)
    n_stored = history.start()
    from ador.explore.batch import batch_size, run_batches      # a batch scored in one vectorised call
    size = batch_size(study, name, options)
    if size:
        return run_batches(study, mem, history, n_trials, size, progress, label or f"{study.name} ({name})", made)
    scorer = scorer_for(study)
    dists = distributions(study.space)
    stats = RunStats()
    bar = Progress(total=n_trials, label=label or f"{study.name} ({name})") if progress else None
    feasible_points: list[Sequence[float]] = [p.values for p in history.stored.points() if p.feasible] if bar else []
    hv_ref = list(hv_reference(made.get("ador_baselines") or {}, study.metric_names).values())
    start = time.perf_counter()
    hv, hv_at = 0.0, 0.0
    pulled_at = start
    from ador.explore.system_study import strata
    turns = strata(study, name)
    try:
        for i in range(n_trials):
            if turns:          # a system-level study: the device stratum of this trial, in turn
                mem.enqueue_trial(turns[(n_stored + i) % len(turns)])
            trial = mem.ask(dists)
            answer = history.repeat_of(trial.params, dists)
            if answer is not None:
                values, constraints, attrs = answer
                stats.repeats += 1
            else:
                outcome = scorer(knob_values(study.space, trial.params))
                values, constraints, attrs = outcome.values, outcome.constraints, outcome.user_attrs
            if tell(mem, trial, values, constraints, attrs, stats) and values is not None:
                feasible_points.append(values)
            history.write(mem._storage.get_trial(trial._trial_id))
            now = time.perf_counter()
            if now - pulled_at > SYNC_EVERY_S:
                history.pull()
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


# the rest of the study API, where it lives (imported from here by the command and older code)
from ador.explore.results import find_trial, pareto_rows, status, to_minimise_key, trial_design  # noqa: E402,F401
from ador.explore.workers import run_workers  # noqa: E402,F401
