"""Worker processes: several processes on one machine (``--workers k``) or on many (``ador study
worker``) add trials to one stored study.

- Seeds: worker i of a run uses ``worker_seed(base, i)``; a worker started alone without
  ``--seed`` draws an index at random. Each worker records its seed in the study
  (``ador_worker:<id>``), so that workers' streams can be told apart. Its sampler starts from
  ``runner.run_seed(seed, trials stored at its start)``, and other workers' trials reach it as they
  are stored, so a multi-worker run is not replayed from the recorded seeds alone.
- Progress: the parent counts finished trials with one COUNT query, never by reading them.
- Others' trials: each worker pulls only the trials stored since its last pull
  (ador/explore/history.py).
- Lifetime: however the parent ends (an error, SIGINT, SIGTERM turned into SystemExit by the
  command, a SIGKILL), no worker outlives it: the parent stops them, and each worker watches its
  parent (PR_SET_PDEATHSIG on Linux, and a thread polling the parent's pid everywhere).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import threading
import time
from typing import Any

import optuna

from ador.errors import AdorError
from ador.explore.config import Study, study_from_dict
from ador.explore.history import RunStats
from ador.explore.record import settings, write_setting
from ador.explore.storage import open_storage
from ador.explore.stored import StoredTrials
from ador.progress import Progress

WORKER_KEY = "ador_worker:"      # study system attribute per worker: its seed, host, pid, start
SEED_STRIDE = 7919               # between the seeds of workers of one base seed (a prime)


def worker_seed(base: int, index: int) -> int:
    """The seed of worker ``index`` (0, 1, ...) of a study whose seed is ``base``."""
    return (base + SEED_STRIDE * (index + 1)) % (2 ** 31)


def record_worker(durable: optuna.Study, seed: int, index: int | None) -> None:
    """Note a worker's seed in the study (its sampler's stream starts from it and the trials stored
    when it starts)."""
    tag = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_setting(durable, WORKER_KEY + tag, {"seed": seed, "index": index, "host": socket.gethostname(),
                                              "pid": os.getpid(), "started": started})


def standalone_seed(durable: optuna.Study, study: Study, seed: int | None) -> int:
    """The seed of a worker started by itself: the one given, else the study's base seed with a
    random worker index (two workers started together never share a stream)."""
    if seed is not None:
        record_worker(durable, seed, None)
        return seed
    base = settings(durable).get("ador_sampler", {}).get("seed", study.spec.seed)
    index = secrets.randbelow(2 ** 20) + 1_000
    chosen = worker_seed(base, index)
    record_worker(durable, chosen, index)
    return chosen


def _worker_main(config: dict[str, Any], name: str, url: str, n_trials: int, sampler: str | None,
                 seed: int, index: int, queue, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    try:
        study = study_from_dict(config, name)
        durable = optuna.load_study(study_name=name, storage=open_storage(url))
        record_worker(durable, seed, index)
        from ador.explore.runner import run_trials
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
        from ador.explore.runner import run_trials
        return run_trials(study, durable, n_trials, sampler=sampler, seed=seed, progress=progress)
    base = settings(durable).get("ador_sampler", {}).get("seed", study.spec.seed) if seed is None else seed
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    shares = [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]
    procs = [ctx.Process(target=_worker_main, args=(study.to_dict(), study.name, url, share, sampler,
                                                    worker_seed(base, i), i, queue, os.getpid()))
             for i, share in enumerate(shares) if share]
    start = time.perf_counter()
    total = RunStats()
    errors = []
    bar = Progress(total=n_trials, label=f"{study.name} ({len(procs)} workers)") if progress else None
    counter = StoredTrials(durable._storage, durable._study_id)
    before = counter.finished() if bar else 0     # the bar counts this run's trials
    try:
        for p in procs:
            p.start()
        results = 0
        while results < len(procs):
            try:
                kind, payload = queue.get(timeout=0.5)
            except Exception:
                if bar:
                    done = counter.finished() - before
                    bar.update(min(done, n_trials))
                if not any(p.is_alive() for p in procs) and queue.empty():
                    break
                continue
            results += 1
            if kind == "ok":
                for key in ("completed", "failed", "feasible", "repeats"):
                    setattr(total, key, getattr(total, key) + payload[key])
                total.stopped = total.stopped or payload["stopped"]
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
