"""Studies at scale: per-trial cost as the study grows, the cost of resuming a large study, and
what a second worker process adds.

- Growth: ador's default path (NSGA-II, every trial committed to SQLite) on the Llama-3-70B
  8-device study (the default search space: few repeated designs), trials/s of 500 trials run on
  the study once it holds 500 and once it holds 20,000 (until 2026-11-27 the first window was the
  study's first 500 trials, which favours a sampler whose estimators grow over its first trials);
  each window is run 3 times on copies of the study (same trials, same seed: the same designs) and
  the median reported, the repeats' range beside it (from 2026-11-28; before, one run each).
  The study file lives in /dev/shm where there is one, so that the figure is the per-trial
  bookkeeping rather than this disk's fsync (the disk's figure is benchmark [3]).
- The same for ador's TPE (its estimators bounded: at 500 and 20,000), and beside it, at 200 and
  2,000, ador's TPE with Optuna's split and Optuna's own TPESampler, whose estimators hold every
  trial.
- Resume: a fresh process opens the 20,000-trial study (NSGA-II's, and TPE's) and runs 10 trials:
  seconds to open, to the first trial, and peak memory.
- Reads: ``ador study status`` / ``best`` / ``export`` (every trial, CSV) on that study: each
  whole command in a fresh process (wall time, start-up included), and in one process once the
  imports are warm (the command's own work, opening the storage included).
- Workers: the serving-judged study (every trial simulates requests: CPU-bound) resumed by one
  process and by ``--workers 2`` on PostgreSQL when the server answers (else SQLite), same
  number of trials: wall time of the command (start-up included) and CPU time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import optuna

from ador.explore.config import load_study
from ador.explore.runner import open_study, run_trials

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("ADOR_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WINDOW = 500
REPEATS = 3          # each window timed this many times, on copies of one study (median reported)


def _study(path: str, name: str):
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return dataclasses.replace(load_study(path), name=name)
    finally:
        os.chdir(cwd)


def _fast_dir() -> str:
    return tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None, prefix="ador-bench-")


_ADOR_ONLY = ("below_limit", "above_window")     # ador's TPE options, which Optuna's has no counterpart of


@contextlib.contextmanager
def _tpe_built_by(make) -> Iterator[None]:
    """Studies naming "tpe" get the sampler ``make(ador's builder)`` builds, for the time of the block."""
    from ador.explore import samplers
    ours = samplers._BUILDERS["tpe"]
    samplers._BUILDERS["tpe"] = make(ours)
    try:
        yield
    finally:
        samplers._BUILDERS["tpe"] = ours


def _optunas_tpe():
    """Optuna's own TPESampler (the baseline of ador's, flat_tpe.py), with the options ador's gets
    (multivariate), its estimators over every trial."""
    from ador.explore.samplers import operator_defaults
    return _tpe_built_by(lambda ours: lambda s, o, seed: optuna.samplers.TPESampler(
        seed=seed, **{k: v for k, v in {**operator_defaults("tpe"), **o}.items() if k not in _ADOR_ONLY}))


def _tpe_uncapped():
    """ador's TPE with Optuna's split (every trial in its estimators): what the caps replace."""
    return _tpe_built_by(lambda ours: lambda s, o, seed: ours(s, {**o, "below_limit": None, "above_window": None},
                                                              seed))


def tpe_growth(quick: bool) -> dict[str, Any]:
    """TPE's trials/s at a small and a large study: ador's sampler (bounded estimators) at 500 and
    20,000 trials, as NSGA-II; Optuna's, whose estimators hold every trial, at 200 and 2,000 (it
    would take hours to reach 20,000), with ador's sampler uncapped beside it at the same sizes."""
    sizes = (50, 300, 50) if quick else (200, 2_000, 200)
    ours = growth(quick, "tpe", sizes if quick else None)
    with _tpe_uncapped():
        uncapped = growth(quick, "tpe", sizes, resume=False)
    with _optunas_tpe():
        theirs = growth(quick, "tpe", sizes, resume=False)
    return {**ours, "uncapped": uncapped, "optuna": theirs}


def growth(quick: bool, sampler: str = "nsga2", sizes: tuple[int, int, int] | None = None, *,
           resume: bool = True) -> dict[str, Any]:
    """Trials/s of a window of trials on a study of ``small`` and of ``large`` trials; with
    ``resume``, a fresh process's resume of the large study (the stored sampler: a builder swapped in
    this process does not reach it, hence off for the baselines)."""
    if sizes is not None:
        small, large, window = sizes
    else:
        small, large, window = (200, 1_000, 200) if quick else (WINDOW, 20_000, WINDOW)
    folder = _fast_dir()
    db = f"{folder}/growth.db"
    try:
        study = _study("studies/llama3-70b-8dev.yaml", "growth")
        durable, _ = open_study(study, f"sqlite:///{db}", sampler=sampler)
        run_trials(study, durable, small, sampler=sampler, progress=False)
        first, first_start, first_all = _windows(study, db, folder, window, sampler)   # on a study of ``small``
        done = small
        fill_start = time.perf_counter()
        while done < large:
            step = min(5_000, large - done)
            run_trials(study, durable, step, sampler=sampler, progress=False)        # each chunk is a resume
            done += step
        fill_s = time.perf_counter() - fill_start
        resumed = _resume_in_fresh_process(db, "growth") if resume else {}
        reads = _reads(db, "growth", folder) if sampler == "nsga2" else {}
        late, late_start, late_all = _windows(study, db, folder, window, sampler)
    finally:
        for f in Path(folder).glob("*"):
            f.unlink()
        os.rmdir(folder)
    return {"trials_small": small, "trials_large": large, "window": window,
            "trials_per_s_at_small": first, "trials_per_s_at_large": late, "large_over_small": late / first,
            "repeats_at_small": first_all, "repeats_at_large": late_all,
            "start_s_at_small": first_start, "start_s_at_large": late_start,
            "fill_seconds": fill_s, "resume": resumed, "reads": reads}


def _windows(study, db: str, folder: str, n: int, sampler: str) -> tuple[float, float, list[float]]:
    """``_window`` ``REPEATS`` times, each on a copy of the study as it is now (the same stored
    trials and the same seed: the same designs, so the repeats differ only by the machine's noise),
    the study itself left as it was: the median trials/s, the start of the median run, and every
    repeat's trials/s."""
    import sqlite3
    runs = []
    for i in range(REPEATS):
        copy = f"{folder}/window-{i}.db"
        with contextlib.closing(sqlite3.connect(db)) as src, contextlib.closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)                      # a consistent copy, the write-ahead log included
        durable, _ = open_study(study, f"sqlite:///{copy}", sampler=sampler)
        runs.append(_window(study, durable, n, sampler))
        rdb = getattr(durable._storage, "rdb", None)      # (ador's RetryingStorage)
        if rdb is not None:
            rdb.engine.dispose()                 # its connections closed: the copy's space is freed
        for f in Path(folder).glob(f"window-{i}.db*"):
            f.unlink()
    rates = [rate for rate, _ in runs]
    median = sorted(runs)[len(runs) // 2]
    return median[0], median[1], rates


def _window(study, durable, n: int, sampler: str) -> tuple[float, float]:
    """Trials/s of ``n`` trials once the run has started (the per-trial cost), and the seconds the
    run took to start (reading what the sampler needs of the stored study: a cost per run, not per
    trial, with a target of its own: the resume figures)."""
    start = time.perf_counter()
    stats = run_trials(study, durable, n, sampler=sampler, progress=False)
    return n / stats.seconds, time.perf_counter() - start - stats.seconds


_RESUME = """
import json, resource, sys, time
t0 = time.perf_counter()
from ador.explore.runner import load_stored, run_trials
t1 = time.perf_counter()
study, durable, url = load_stored(sys.argv[2], sys.argv[1], write=True)
t2 = time.perf_counter()
run_trials(study, durable, 1, progress=False)
t3 = time.perf_counter()
run_trials(study, durable, 9, progress=False)
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "first_trial_s": t3 - t2,
                  "ten_trials_s": time.perf_counter() - t2,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_READS = """
import json, sys, time
from ador.cli import main
from ador.explore.reopen import load_stored
load_stored(sys.argv[2], sys.argv[1], reads_only=True)     # the imports a reading command needs, warm
out = {}
for label, argv in json.loads(sys.argv[3]).items():
    t = time.perf_counter()
    assert main(argv) == 0
    out[label] = time.perf_counter() - t
print(json.dumps(out))
"""


def _reads(db: str, name: str, folder: str) -> dict[str, Any]:
    """Seconds of status, best and a whole-table CSV export: whole commands, and in process."""
    url = f"sqlite:///{db}"
    commands = {"status": ["study", "status", name, "--json", "--storage", url],
                "best": ["study", "best", name, "--json", "--storage", url],
                "export": ["study", "export", name, "--format", "csv", "--out", f"{folder}/t.csv", "--storage", url]}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole = {}
    for label, argv in commands.items():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ador.cli", *argv], capture_output=True, cwd=REPO, env=env,
                       timeout=600, check=True)
        whole[label] = time.perf_counter() - t
    out = subprocess.run([sys.executable, "-c", _READS, url, name, json.dumps(commands)], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=600, check=True)
    return {"whole_command_s": whole, "in_process_s": json.loads(out.stdout.strip().splitlines()[-1])}


def _resume_in_fresh_process(db: str, name: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _RESUME, f"sqlite:///{db}", name], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pg_available() -> bool:
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return True
    except Exception:
        return False


def workers(quick: bool) -> dict[str, Any]:
    """``ador study resume --trials N --workers k`` for k = 1 and 2, each on a fresh study of the
    same definition (made by ``launch --trials 1`` first): wall time of the whole command, start-up
    included, and the CPU time of the command and its workers (from which the speed-up with a free
    core per worker is estimated: the machine is shared, and a second process may get no core)."""
    import resource
    path, n = ("studies/smoke.yaml", 40) if quick else ("studies/llama3-70b-8dev-serving.yaml", 120)
    on_pg = _pg_available()
    folder = tempfile.mkdtemp(prefix="ador-bench-")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    wall, cpu, names = {}, {}, []
    try:
        for k in (1, 2):
            name = f"bench-w{k}-{uuid.uuid4().hex[:6]}"
            names.append(name)
            url = PG_URL if on_pg else f"sqlite:///{folder}/{name}.db"
            ador = [sys.executable, "-m", "ador.cli", "study"]
            subprocess.run([*ador, "launch", path, "--name", name, "--storage", url, "--trials", "1", "--quiet"],
                           cwd=REPO, env=env, check=True, capture_output=True, timeout=900)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([*ador, "resume", name, "--storage", url, "--trials", str(n), "--workers", str(k),
                            "--quiet"], cwd=REPO, env=env, check=True, capture_output=True, timeout=1800)
            wall[k] = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        if on_pg:
            import optuna
            for name in names:
                try:
                    optuna.delete_study(study_name=name, storage=PG_URL.replace("postgresql://", "postgresql+psycopg://"))
                except KeyError:
                    pass
        for f in Path(folder).glob("*"):
            f.unlink()
        os.rmdir(folder)
    return {"study": path, "trials": n, "storage": "postgresql" if on_pg else "sqlite",
            "seconds_1": wall[1], "seconds_2": wall[2], "speedup_2": wall[1] / wall[2],
            "cpu_seconds_1": cpu[1], "cpu_seconds_2": cpu[2],
            # each worker does half the CPU work; with a core each, the command takes about that long
            "speedup_2_free_cores_estimate": cpu[1] / (cpu[2] / 2),
            "cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}


def run(quick: bool = False) -> dict[str, Any]:
    return {"growth": growth(quick), "tpe_growth": tpe_growth(quick), "workers": workers(quick)}
