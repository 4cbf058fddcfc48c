"""Running the headline's studies: every role at every seed, one SQLite database per (study, seed)
in the storage folder, side by side in worker processes. Resumable: a study already at its
budget is left alone, one cut short is topped up."""
from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import optuna

from ador.explore.config import Study, load_study
from ador.explore.locate import find_study_file
from ador.headline.plan import ROLES, SEEDS, WORKERS


def seeded(role: str, seed: int) -> Study:
    """The role's shipped study at ``seed`` (named ``<study>-s<seed>``)."""
    study = load_study(find_study_file(ROLES[role]))
    return dataclasses.replace(study, name=f"{study.name}-s{seed}",
                               spec=dataclasses.replace(study.spec, seed=seed))


def storage_url(storage_dir: str | Path, study: Study) -> str:
    return f"sqlite:///{Path(storage_dir) / study.name}.db"


def budget(role: str, trials: int | None) -> int:
    """Trials per seed: the study file's budget, or ``trials`` (the serving studies, which
    simulate 1,000 requests per trial, get a tenth of it, at least 20)."""
    study = load_study(find_study_file(ROLES[role]))
    if trials is None:
        return study.spec.trials
    return max(20, trials // 10) if study.serving is not None else trials


def _run_one(role: str, seed: int, n: int, storage_dir: str) -> tuple[str, int, float]:
    from ador.explore.runner import open_study, run_trials, status
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = seeded(role, seed)
    started = time.perf_counter()
    durable, _ = open_study(study, storage_url(storage_dir, study))
    st = status(durable, space=study.space)
    done = st["n_complete"] + st["n_failed"]
    if done < n:
        run_trials(study, durable, n - done, progress=False)
    return study.name, n, time.perf_counter() - started


def run(trials: int | None = None, storage_dir: str | Path = "studies", *, seeds: tuple[int, ...] = SEEDS,
        roles: tuple[str, ...] = tuple(ROLES), workers: int = WORKERS, progress: bool = True) -> None:
    """Every (role, seed) study to its budget. The slow serving studies are started first."""
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    jobs = sorted(((role, seed, budget(role, trials)) for role in roles for seed in seeds),
                  key=lambda j: "serving" not in j[0])
    if workers <= 1:
        for role, seed, n in jobs:
            _report(_run_one(role, seed, n, str(storage_dir)), progress)
        return
    # spawn: a fresh interpreter per worker (no fork of a parent holding database connections)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_one, role, seed, n, str(storage_dir)) for role, seed, n in jobs]
        for f in as_completed(futures):
            _report(f.result(), progress)


def _report(done: tuple[str, int, float], progress: bool) -> None:
    if progress:
        name, n, seconds = done
        print(f"headline: {name} at {n} trials ({seconds:.0f} s)", file=sys.stderr, flush=True)
