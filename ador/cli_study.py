"""``ador study ...``: launch, resume and scale out studies; read, plot, report and export them."""
from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from pathlib import Path
from typing import Callable
from ador.cli_args import LazyChoices, count, port, trial_number, trials
from ador.cli_args import seed as seed_arg
from ador.errors import AdorError, ConfigError

STORAGE_HELP = ("where the study is stored: sqlite:///x.db, postgresql://..., journal:PATH (default: see "
                "--storage-dir)")
DIR_HELP = ("folder of NAME.db files (default: $ADOR_STUDIES; else beside the study file for launch, and "
            "./NAME.db or ./studies/NAME.db for the other commands)")
NAME_HELP = "the study's name, or its study file (the storage is then found where launch put it)"


def _bulk_read(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A reading command, run with the cyclic garbage collector paused. Reading a 20,000-trial
    study decodes about a million small objects, none of them in a reference cycle (reference
    counting frees them), and each collection those allocations set off walks every one of them:
    0.13-0.2 s of a whole-table export, 0.02-0.04 s of status and best."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return command(args)
        finally:
            if was_enabled:
                gc.enable()
    return run


def _open(args: argparse.Namespace, *, write: bool = False, reads_only: bool = False):
    from ador.explore.reopen import load_stored
    return load_stored(args.name, args.storage, write=write, storage_dir=args.storage_dir, reads_only=reads_only)


def _print_best(study, durable, fmt: str) -> None:
    from ador.explore.pareto import HV_DEFINITION
    from ador.explore.record import baselines_of
    from ador.explore.results import pareto_rows, reader, status, study_front
    from ador.report.data import picks
    points = reader(durable).points()                      # the completed trials' values, read once
    front = study_front(durable, study.directions, points, table=True, space=study.space)   # only the front read whole
    rows = pareto_rows(study, durable, front)
    baselines = baselines_of(durable)
    chosen = {why: t.number for why, t in picks(study, front).items()}
    if fmt == "json":
        st = status(durable, front, points, study.space)
        print(json.dumps({"study": study.name, "objectives": study.metric_names, "directions": study.directions,
                          "baselines": baselines, "pareto": rows, "picks": chosen, "hypervolume": st["hypervolume"],
                          "hypervolume_reference": st["hypervolume_reference"],
                          "hypervolume_definition": HV_DEFINITION}, indent=2))
        return
    if fmt == "csv":
        import csv
        keys = list(rows[0]) if rows else ["trial"]
        writer = csv.DictWriter(sys.stdout, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        return
    print(f"Pareto-optimal feasible designs of {study.name} ({len(rows)} distinct):")
    gpus = [g for g, b in baselines.items() if "metrics" in b]
    head = f"{'trial':>6} " + " ".join(f"{m:>22}" for m in study.metric_names) + f" {'dies mm2':>8}"
    head += "".join(f" {'x vs ' + g.split('-')[0]:>12}" * len(study.metric_names) for g in gpus)
    print(head)
    marks = {n: why for why, n in reversed(list(chosen.items()))}
    for r in rows:
        line = f"{r['trial']:>6} " + " ".join(f"{r[m]:>22.4g}" for m in study.metric_names)
        line += f" {r['die_area_mm2']:>8.0f}" if r["die_area_mm2"] is not None else f" {'-':>8}"
        for g in gpus:
            for m in study.metric_names:
                x = r.get(f"{m}_x_vs_{g}")
                line += f" {('%.2fx' % x) if x else '-':>12}"
        print(line + (f"  <- {marks[r['trial']]}" if r["trial"] in marks else ""))
    for g, b in baselines.items():
        if "metrics" in b:
            vals = ", ".join(f"{m} {b['metrics'][m]:.4g}" for m in study.metric_names)
            note = "" if b.get("feasible", True) else f" (INFEASIBLE: {'; '.join(b['infeasible_reasons'])})"
            print(f"baseline {g}: {vals}{note}")
        else:
            print(f"baseline {g}: not evaluated ({b.get('error')})")
    if gpus:
        print("x vs GPU: how many times better than the GPU on that objective (>1 is better)")
    if chosen:
        print("picks: " + "; ".join(f"{why} = trial {n}" for why, n in chosen.items())
              + " (knee: closest to the ideal point, each objective scaled over the front)")


def _run_and_report(study, durable, url, args, n_trials: int) -> int:
    from ador.explore.results import status
    from ador.explore.runner import run_workers
    from ador.explore.storage import redact
    from ador.report.data import hv_caption
    stats = run_workers(study, durable, url, n_trials, max(1, args.workers), sampler=getattr(args, "sampler", None),
                        seed=getattr(args, "seed", None), progress=not args.quiet)
    st = status(durable, space=study.space)            # targeted queries: the study is not read again trial by trial
    repeats = f" ({stats.repeats} repeated designs answered from their stored trial)" if stats.repeats else ""
    print(f"{study.name}: {stats.completed} completed, {stats.failed} failed, {stats.feasible} feasible in "
          f"{stats.seconds:.1f} s ({(stats.completed + stats.failed) / max(stats.seconds, 1e-9):.0f} trials/s)"
          f"{repeats}; "
          f"study now has {st['n_complete']} complete trials, {st['n_pareto']} distinct designs on the feasible "
          f"front, hypervolume {st['hypervolume']:.4g}; storage {redact(url)}")
    print(f"({hv_caption(durable)})")
    if stats.stopped:
        print(f"note: {stats.stopped}")
    _print_best(study, durable, "table")
    if stats.failed and not st["n_complete"]:
        raise AdorError(f"study={study.name}: no trial has completed ({stats.failed} of this run failed; the most "
                        f"common reason: {_common_failure(durable)}); the failed trials are stored")
    return 0


def _note_context(study) -> None:
    """Say so where a request is longer than the model was trained for (priced anyway, as evaluate does)."""
    from ador.workload import get_model
    model, w = get_model(study.spec.model), study.spec.workload
    if w.input_len + w.output_len > model.max_seq_len:
        print(f"ador: note: workload.input_len + output_len = {w.input_len + w.output_len:,} tokens exceed "
              f"{model.name}'s trained context of {model.max_seq_len:,}; priced anyway", file=sys.stderr)


def _require_completed(study, durable) -> None:
    """Plots and reports of a study need a completed trial (its front, its history)."""
    from ador.explore.results import status
    st = status(durable, space=study.space)
    if not st["n_complete"]:
        raise AdorError(f"study={study.name}: no trial has completed, nothing to plot or report ({st['n_failed']} "
                        f"failed; the most common reason: {_common_failure(durable)})")


def _common_failure(durable) -> str:
    """The reason most failed trials of a study give (read only when no trial completed)."""
    from collections import Counter

    from optuna.trial import TrialState

    from ador.explore.record import REASONS
    reasons = Counter("; ".join(t.user_attrs.get(REASONS) or ["no reason recorded"])
                      for t in durable.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    return reasons.most_common(1)[0][0] if reasons else "no reason recorded"


def cmd_study_launch(args: argparse.Namespace) -> int:
    import dataclasses as dc

    from ador.explore.config import load_study
    from ador.explore.locate import find_study_file
    from ador.explore.runner import open_study
    from ador.explore.storage import check_study_name
    if args.name is not None:
        check_study_name(args.name, "--name")
    study = load_study(find_study_file(args.file))
    if args.name:
        study = dc.replace(study, name=args.name)
    _note_context(study)
    durable, url = open_study(study, args.storage, sampler=args.sampler, seed=args.seed, storage_dir=args.storage_dir)
    return _run_and_report(study, durable, url, args, args.trials or study.spec.trials)


def cmd_study_resume(args: argparse.Namespace) -> int:
    from ador.explore.record import settings
    from ador.explore.runner import check_same
    study, durable, url = _open(args, write=True)
    check_same(study, settings(durable))
    args.sampler, args.seed = None, None
    return _run_and_report(study, durable, url, args, args.trials or study.spec.trials)


def cmd_study_worker(args: argparse.Namespace) -> int:
    from ador.explore.record import settings
    from ador.explore.runner import check_same, run_trials
    from ador.explore.workers import standalone_seed
    study, durable, _ = _open(args, write=True)
    check_same(study, settings(durable))
    seed = standalone_seed(durable, study, args.seed)      # recorded in the study (ador_worker:...)
    stats = run_trials(study, durable, args.trials or study.spec.trials, seed=seed, progress=not args.quiet)
    print(f"worker: {stats.completed} completed, {stats.failed} failed in {stats.seconds:.1f} s")
    return 0


def cmd_study_enumerate(args: argparse.Namespace) -> int:
    from ador.explore.enumerate import write_front
    print(write_front(args.file, storage=args.storage, storage_dir=args.storage_dir, limit=args.limit,
                      progress=not args.quiet))
    return 0


@_bulk_read
def cmd_study_status(args: argparse.Namespace) -> int:
    from ador.explore.results import status
    from ador.explore.storage import redact
    study, durable, url = _open(args, reads_only=True)
    st = status(durable, space=study.space)
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print(f"{st['study']} ({redact(url)}): {st['n_trials']} trials: {st['n_complete']} complete, "
              f"{st['n_failed']} failed, {st['n_running']} running; {st['n_feasible']} feasible, {st['n_pareto']} "
              f"distinct designs on the feasible front; hypervolume {st['hypervolume']:.4g}; objectives "
              f"{', '.join(f'{m} ({d})' for m, d in zip(st['objectives'] or [], st['directions']))}")
    return 0


@_bulk_read
def cmd_study_best(args: argparse.Namespace) -> int:
    study, durable, _ = _open(args, reads_only=True)
    _print_best(study, durable, "json" if args.json else "csv" if args.csv else "table")
    return 0


@_bulk_read
def cmd_study_export(args: argparse.Namespace) -> int:
    from ador.config import dump_yaml
    from ador.explore.results import trial_design
    from ador.explore.storage import storage_file
    from ador.outputs import check_output
    if args.yaml and args.json:
        raise ConfigError("--json", True, "a design is written as YAML or as JSON: give one of --yaml, --json")
    study, durable, url = _open(args, reads_only=True)
    inputs = (storage_file(url), study.path)
    if args.trial is None:
        from ador.report.table import FORMATS, trials_table, write_table
        for flag in ("yaml", "json"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag}", True, f"a design file is one trial's: give the trial number (the "
                                                     f"table of every trial takes --format {FORMATS[1]})")
        fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "") or "csv"
        if args.format is None and fmt not in FORMATS:
            fmt = "csv"
        out = check_output(args.out, field="--out", suffixes=(f".{fmt}",), inputs=inputs) if args.out else None
        where = write_table(trials_table(study, durable), fmt, out)
        if where != "stdout":
            print(f"wrote {where}", file=sys.stderr)
        return 0
    if args.format:
        raise ConfigError("--format", args.format, "exports every trial: leave out the trial number")
    out = check_output(args.out, field="--out", suffixes=(".json",) if args.json else (".yaml", ".yml"),
                       inputs=inputs) if args.out else None
    design = trial_design(study, durable, args.trial)
    text = dump_yaml(design) if not args.json else json.dumps(design, indent=2) + "\n"
    if out is not None:
        out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_study_plot(args: argparse.Namespace) -> int:
    from ador.report.study_report import write_plots
    study, durable, _ = _open(args)
    _require_completed(study, durable)
    written = write_plots(study, durable, Path(args.out))
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_study_report(args: argparse.Namespace) -> int:
    from ador.explore.enumerate import stored_front
    from ador.report.study_report import write_report
    study, durable, url = _open(args)
    _require_completed(study, durable)
    print(write_report(study, durable, Path(args.out), exact=stored_front(study, url)))
    return 0


def cmd_study_dashboard(args: argparse.Namespace) -> int:
    from ador.report.dashboard import serve
    _, durable, _ = _open(args)
    def announce(link: str) -> None:
        print(f"optuna-dashboard on {durable.study_name}: {link} (Ctrl-C stops it)", flush=True)
    serve(durable._storage, args.host, args.port, announce)
    return 0


def _storage_options(p: argparse.ArgumentParser, storage_help: str = STORAGE_HELP) -> None:
    """--storage or --storage-dir, not both: a URL names the storage whole, with no folder to look in."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--storage", help=storage_help)
    where.add_argument("--storage-dir", help=DIR_HELP)


def _reader(study, name: str, help: str, func) -> argparse.ArgumentParser:
    p = study.add_parser(name, help=help, description=help)
    p.add_argument("name", help=NAME_HELP)
    _storage_options(p)
    p.set_defaults(func=func)
    return p


def register(sub) -> None:
    from ador.report.table import FORMATS
    study = sub.add_parser("study", help="design-space exploration studies").add_subparsers(
        dest="study_cmd", required=True, metavar="COMMAND")
    p = study.add_parser("launch", help="create (or continue) a study from a study file and run trials")
    p.add_argument("file", help="a study file, or the name of a study that ships with ador (llama3-70b-8dev, ...)")
    p.add_argument("--trials", type=trials, help="trials to run now (default: the file's budget)")
    _storage_options(p)
    p.add_argument("--sampler", choices=LazyChoices(module="ador.explore.samplers", name="SAMPLERS"),
                   help="override the file's sampler (default: the file's)")
    p.add_argument("--seed", type=seed_arg, help="override the file's seed (default: the file's)")
    p.add_argument("--name", help="study name (default: the file's name, else its stem)")
    p.add_argument("--workers", type=count, default=1, help="worker processes on this machine")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study_launch)
    p = study.add_parser("enumerate", help="score every design of a study's space and store its exact Pareto front "
                                           "beside the study (for comparing samplers' fronts with it)")
    p.add_argument("file", help="a study file, or the name of a study that ships with ador")
    _storage_options(p, "the study's SQLite URL (the front is written beside its file)")
    p.add_argument("--limit", type=count, default=10 ** 8, help="most designs to score (default: 100,000,000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study_enumerate)
    p = _reader(study, "resume", "run more trials of a stored study (sampler rebuilt from storage)", cmd_study_resume)
    p.add_argument("--trials", type=trials, help="trials to run now (default: the study's budget)")
    p.add_argument("--workers", type=count, default=1, help="worker processes on this machine")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = _reader(study, "worker", "one worker process of a shared study (run on any machine)", cmd_study_worker)
    p.add_argument("--trials", type=trials, help="trials this worker runs (default: the study's budget)")
    p.add_argument("--seed", type=seed_arg, help="this worker's seed (default: the study's seed with a random worker "
                                            "index, recorded in the study)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = _reader(study, "status", "trial counts, the front's size and the hypervolume", cmd_study_status)
    p.add_argument("--json", action="store_true", help="as JSON")
    p = _reader(study, "best", "the front (distinct feasible Pareto designs) with x-vs-GPU ratios, the knee and "
                               "the corners", cmd_study_best)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="as JSON")
    group.add_argument("--csv", action="store_true", help="as CSV")
    p = _reader(study, "plot", "Pareto front vs GPUs, projections, hypervolume, breakdown, roofline, importances",
                cmd_study_plot)
    p.add_argument("--out", default="out", help="folder for the PNG and SVG files")
    p = _reader(study, "report", "a Markdown report with the front, the plots and the recommended designs",
                cmd_study_report)
    p.add_argument("--out", default="out", help="folder for report.md and its plots")
    p = _reader(study, "export", "one trial's design (YAML for ador evaluate/area), or every trial as a table",
                cmd_study_export)
    p.add_argument("trial", type=trial_number, nargs="?", help="trial number (leave out to export every trial)")
    p.add_argument("--yaml", action="store_true", help="the design as YAML (the default for a trial)")
    p.add_argument("--json", action="store_true", help="the design as JSON")
    p.add_argument("--format", choices=FORMATS,
                   help="every trial as a table: csv (the default), json, parquet (needs pyarrow)")
    p.add_argument("--out", help="file to write (default: standard output; parquet needs a file)")
    p = _reader(study, "dashboard", "optuna-dashboard on the study, with ador's feasible front as its best trials "
                                    "(needs optuna-dashboard)", cmd_study_dashboard)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port, default=8080, help="port to listen on (0: any free port)")

