"""`ador validate`, `ador calibrate` and `ador fairness`: the model against measurements, its fit, and a
design's ratios as each modelling asymmetry is removed."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ador.cli_args import LazyChoices, count
from ador.errors import AdorError, ConfigError


# --- ador validate / calibrate ---------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ador.validation.accelerators import is_accelerator_file, validate_accelerators
    from ador.validation.data import DEFAULT_DATA, load_measurements
    from ador.validation.serving import DEFAULT_DATA as SERVING_DATA
    from ador.validation.serving import is_serving_file, load_serving, validate_serving
    data = args.data
    if data is not None and not Path(data).exists() and (DEFAULT_DATA.parent / data).is_file():
        data = str(DEFAULT_DATA.parent / data)     # a data file shipped with ador, by name
    from ador.outputs import PLOT_SUFFIXES, check_output
    if args.plot:
        check_output(args.plot, field="--plot", suffixes=PLOT_SUFFIXES, inputs=(data,))
    if args.update_doc:
        check_output(args.update_doc, field="--update-doc", suffixes=(".md",), inputs=(data,))
    serving = args.serving or (data is not None and is_serving_file(data))
    from ador.validation import collectives
    if not serving and data is not None and collectives.is_allreduce_file(data):
        return _validate_allreduce(args, data)
    from ador.validation import energy_serving
    if not serving and data is not None and energy_serving.is_energy_file(data):
        return _validate_energy_serving(args, data)
    accelerators = not serving and is_accelerator_file(data or DEFAULT_DATA)
    if args.profile and not accelerators:
        raise AdorError(f"profile={args.profile}: --profile applies to accelerator files (a 'design' column)")
    from ador.validation import ratios, serving_report
    from ador.validation import report as gpu_report
    render: Any = serving_report if serving else gpu_report
    ratio_lines: list[dict[str, Any]] = []
    if serving:
        results = validate_serving(load_serving(data or SERVING_DATA))
        report = results.to_dict()
        ratio_lines = ratios.summary(results.rows)      # where two GPUs ran the same runs
        if ratio_lines:
            report["ratios"] = ratio_lines
    elif accelerators:                     # published accelerators expressed as ADOR designs
        report = validate_accelerators(data, profile=args.profile).to_dict()
    else:
        from ador.validation.predict import validate
        report = validate(load_measurements(data or DEFAULT_DATA)).to_dict()
    _require_predictions(report["summary"], data or (SERVING_DATA if serving else DEFAULT_DATA))
    if args.plot:
        render.plot(report, Path(args.plot))
    if args.update_doc:
        doc = Path(args.update_doc)
        plot_name = None
        if args.plot:
            plot_name = Path(args.plot).name if Path(args.plot).parent == doc.parent else str(args.plot)
        section = render.markdown_section(report, plot_name)
        if serving:
            shipped = data is None or Path(data).resolve() == SERVING_DATA.resolve()
            # a file shipped with ador keys its section by name however it was named on the command line
            packaged = data is not None and Path(data).resolve().parent == DEFAULT_DATA.parent.resolve()
            render.update_doc(doc, section, None if shipped else Path(data).name if packaged else str(args.data))
        else:       # each data file its own section (the default file's keeps its historical name)
            default = data is None or Path(data).resolve() == DEFAULT_DATA.resolve()
            render.update_doc(doc, section, None if default else Path(data).name)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render.text_table(report, args.worst))
        if ratio_lines:
            print("\nratios between GPUs that ran the same runs (measured vs predicted):")
            print(ratios.table(ratio_lines))
    return 0


def _validate_allreduce(args: argparse.Namespace, data: str) -> int:
    """Published all-reduce timings against the model's collectives (ador/validation/collectives.py)."""
    from ador.validation import collectives
    return _validate_check(args, data, "all-reduce", collectives.DEFAULT_DATA,
                           report=lambda path: collectives.compare(collectives.load(path)),
                           plot=lambda report, path: collectives.plot(collectives.curves(report), path),
                           text=lambda report: collectives.table(report, every_row=False),
                           update_doc=collectives.update_doc)


def _validate_energy_serving(args: argparse.Namespace, data: str) -> int:
    """Published GPU power under serving load against the model's (ador/validation/energy_serving.py)."""
    from ador.validation import energy_serving
    return _validate_check(args, data, "serving-power", energy_serving.DEFAULT_DATA,
                           report=lambda path: energy_serving.compare(energy_serving.load(path)),
                           plot=energy_serving.plot, text=energy_serving.table, update_doc=energy_serving.update_doc)


def _require_predictions(summary: dict[str, Any], data: Any) -> None:
    """A file of which no row could be predicted is an error, not a MAPE of nan over 0 rows."""
    if summary["n"] > 0:
        return
    reasons = summary.get("skipped_reasons") or {}
    why = f"no row could be predicted ({next(iter(reasons))})" if reasons else "the file holds no rows"
    raise ConfigError("data", str(data), why)


def _validate_check(args: argparse.Namespace, data: str, what: str, shipped: Any, *, report: Any, plot: Any,
                    text: Any, update_doc: Any) -> int:
    """`ador validate` on a file of one of the checks with a schema of its own (``what``: its name):
    no runtime profile to choose, a plot, the JSON report or a table, and the doc section of the
    ``shipped`` file only."""
    from pathlib import Path
    if args.profile:
        article = "an" if what[0] in "aeiou" else "a"
        raise AdorError(f"data={args.data}: --profile does not apply to {article} {what} file")
    result = report(data)
    if args.plot:
        plot(result, Path(args.plot))
    if args.update_doc:
        if Path(data).resolve() != Path(shipped).resolve():
            raise AdorError(f"data={args.data}: --update-doc writes the shipped {what} file's section only")
        update_doc(args.update_doc)
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


CALIBRATION_OUT = "calibration.yaml"


def _check_calibration_out(out: Any, data: Any) -> None:
    """--out: a YAML file that is not the data, and, where it exists, a calibration (a refit
    replaces an earlier one; nothing else is replaced)."""
    from ador.outputs import check_output
    check_output(out, field="--out", suffixes=(".yaml", ".yml"), inputs=(data,))
    if out.exists():
        from ador.hardware.calibration import parse_calibration
        try:
            parse_calibration(out)
        except ConfigError:
            raise ConfigError("--out", str(out), "exists and is not a calibration; writing it would replace "
                                                 "it") from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ador.hardware.calibration import PACKAGED_CALIBRATION
    from ador.progress import Progress
    from ador.validation.calibrate import (CV_EVALUATIONS, FIT_EVALUATIONS, cross_validation, cv_fits, fit,
                                          write_calibration)
    from ador.validation.data import DEFAULT_DATA, load_measurements
    data = Path(args.data or DEFAULT_DATA)
    if not args.write_package:
        _check_calibration_out(Path(args.out), data)
    rows = load_measurements(data)
    if not rows:
        raise ConfigError("data", str(data), "holds no rows to fit (nothing was written)")
    out = PACKAGED_CALIBRATION if args.write_package else Path(args.out)
    if not out.parent.is_dir():
        raise AdorError(f"out={out}: directory {out.parent} does not exist")
    # the fit and the folds each stop at their evaluation budget (or earlier, converged)
    budget = args.max_evaluations or FIT_EVALUATIONS
    if args.cv_evaluations and not args.cv:
        raise ConfigError("cv_evaluations", args.cv_evaluations, "sets the cross-validation's budget: add --cv")
    cv_budget = args.cv_evaluations or min(CV_EVALUATIONS, budget)
    total = budget + (cv_budget * cv_fits(rows) if args.cv else 0)
    bar = Progress(total=total, label=f"calibrate ({len(rows)} rows{', CV' if args.cv else ''})",
                   min_seconds=0.5) if not args.quiet else None
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(min(done, total), evaluations=done)
    try:
        result = fit(rows, max_evaluations=budget, tick=tick)
        done = max(done, budget)        # a fit that converged early: its budget is spent
        cv = cross_validation(rows, max_evaluations=cv_budget, tick=tick) if args.cv else None
        if bar is not None:
            bar.update(total, evaluations=done)
    finally:
        if bar is not None:
            bar.close()
    doc = write_calibration(result, data, out, rows, cv)
    report: dict[str, Any] = {"mape_pct": result.mape_pct, "rows": result.n_rows, "evaluations": result.evaluations,
                              "values": doc["fit"]["values"], "on_bounds": list(result.on_bounds),
                              "by_metric": doc["fit"]["by_metric"], "out": str(out), **(cv or {})}
    for key in result.on_bounds:
        print(f"ador: warning: fitted constant {key} ended on a bound of its range (see docs/validation.md)",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"MAPE {result.mape_pct:.2f}% after {result.evaluations} evaluations; wrote {out}"
          + ("" if args.write_package else f" (ador uses it with ADOR_CALIBRATION={out}; the calibration shipped "
                                           "with ador is unchanged unless --write-package)"))
    for key, value in doc["fit"]["values"].items():
        print(f"  {key:42} {value:.4g}{'  (on a bound)' if key in result.on_bounds else ''}")
    if args.cv:
        for title, key in (("5-fold by row", "kfold"), ("leave one source out (a held-out stack takes the "
                                                          "default profile)", "loso")):
            print(f"cross-validation, {title}:")
            for group, r in report[key].items():
                mape = "-" if r["mape_pct"] is None else f"{r['mape_pct']:6.2f}%"
                print(f"  {group:28} held-out MAPE {mape} over {r['n']:3} rows (train {r['train_mape_pct']:.2f}%)")
            print(f"  {'all held-out rows':28} MAPE {report[key + '_mape_pct']:6.2f}%")
    return 0


# --- ador fairness ---------------------------------------------------------------------------

FAIRNESS_COMMAND = "ador fairness --update-doc"


def cmd_fairness(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ador.explore.fairness import ladder, render_markdown
    from ador.explore.metrics import Workload
    from ador.hardware import GPUS, get_device
    from ador.workload import get_model, get_precision
    if args.update_doc:
        from ador.outputs import check_output
        check_output(args.update_doc, field="--update-doc", suffixes=(".md",),
                     inputs=(args.design, args.reoptimised))
    design = get_device(args.design)
    if design.kind != "ador":
        raise AdorError(f"design={args.design}: a ladder compares an ADOR design with a GPU, not {design.kind}")
    if args.baseline not in GPUS:
        raise AdorError(f"baseline={args.baseline}: unknown GPU (known: {', '.join(GPUS)})")
    reoptimised = get_device(args.reoptimised) if args.reoptimised else None
    if reoptimised is not None and reoptimised.kind != "ador":
        raise AdorError(f"reoptimised={args.reoptimised}: expected an ADOR design, not {reoptimised.kind}")
    model, precision = get_model(args.model), get_precision(args.precision)
    workload = Workload(args.batch, args.input_len, args.output_len)
    rows = ladder(design, GPUS[args.baseline], model, precision, workload, tp=args.tp, devices=args.devices,
                  gpu_runtime=args.runtime, reoptimised=reoptimised)
    devices = args.devices or args.tp
    context = (f"{model.name} {precision.name}, TP{args.tp} on {devices} devices, batch {args.batch}, "
               f"{args.input_len}-token prompts, {args.output_len} output tokens; regenerate with `ador fairness "
               f"--design {args.design} --baseline {args.baseline} --model {args.model} --tp {args.tp} "
               f"--devices {devices} --batch {args.batch} --input-len {args.input_len} "
               f"--output-len {args.output_len} --precision {args.precision}"
               + (f" --runtime {args.runtime}" if args.runtime else "")
               + (f" --reoptimised {args.reoptimised}" if args.reoptimised else "") + "`")
    text = render_markdown(rows, design=design.name, gpu=f"{devices} x {args.baseline}", context=context)
    if args.update_doc:
        from ador.markdown import update_section
        update_section(Path(args.update_doc), FAIRNESS_COMMAND, text)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(text)
    return 0


def register(sub: Any) -> None:
    """Add the three commands to ``ador``'s subcommand parser."""

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    p = command("fairness", "a design's ratios against a GPU as each modelling asymmetry is removed")
    p.add_argument("--design", required=True, help="ADOR design: preset name or design .yaml")
    p.add_argument("--baseline", default="a100-sxm-80gb", help="GPU preset to compare with")
    p.add_argument("--model", default="llama-3-70b", help="zoo name or a Hugging Face config.json")
    p.add_argument("--precision", default="fp16", choices=LazyChoices(module="ador.workload", name="PRECISIONS"),
                   help="weights, activations and KV cache")
    p.add_argument("--tp", type=count, default=8, help="tensor-parallel degree")
    p.add_argument("--devices", type=count, default=None, help="devices in all (default: tp)")
    p.add_argument("--batch", type=count, default=128, help="static batch")
    p.add_argument("--input-len", type=count, default=2048, help="prompt tokens")
    p.add_argument("--output-len", type=count, default=256, help="output tokens")
    p.add_argument("--runtime", default=None, help="the GPU's runtime profile (default: tensorrt-llm)")
    p.add_argument("--reoptimised", help="a design searched under the symmetric rules, for a last row")
    p.add_argument("--update-doc", help="rewrite the ladder section of this Markdown file (docs/modelling.md)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_fairness)

    p = command("validate", "compare the model with measured GPU, accelerator and serving results")
    p.add_argument("--data", help="CSV in the schema of shared/validation/measured.csv (default: the shipped copy); "
                                  "a CSV with a 'design' column holds published accelerators as ADOR designs "
                                  "(accelerators.csv, shipped); one in the schema of serving.csv holds serving "
                                  "measurements (told apart by their columns); a file shipped with ador by its name")
    p.add_argument("--serving", action="store_true", help="the serving rows (default: the packaged serving.csv)")
    p.add_argument("--profile", help="accelerator rows: predict every row under this runtime profile "
                                     "(default: the row's stack's, else the default profile)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.add_argument("--worst", type=count, default=5, help="worst rows to list")
    p.add_argument("--plot", help="write a predicted-vs-measured PNG here")
    p.add_argument("--update-doc", help="rewrite the generated section of this Markdown file")
    p.set_defaults(func=cmd_validate)

    p = command("calibrate", "fit the GPU efficiencies and runtime profiles on measured data")
    p.add_argument("--data", help="CSV to fit on (default: the public file shipped with ador)")
    p.add_argument("--out", default=CALIBRATION_OUT,
                   help="calibration YAML to write (use it with ADOR_CALIBRATION=PATH)")
    p.add_argument("--write-package", action="store_true",
                   help="replace the calibration shipped inside ador (what every study uses) instead of --out")
    p.add_argument("--cv", action="store_true", help="also report 5-fold and leave-one-source-out errors")
    p.add_argument("--max-evaluations", type=count, default=None,
                   help="loss evaluations of the fit at most (default 40000; it stops when a Powell + "
                        "Nelder-Mead cycle gains under 0.01 points)")
    p.add_argument("--cv-evaluations", type=count, default=None,
                   help="loss evaluations of each cross-validation fit at most (default 2000, or --max-evaluations "
                        "if lower: about a minute in all; 40000 fits every fold as the shipped fit is, about 12 "
                        "minutes, and its held-out errors are higher: docs/validation.md)")
    p.add_argument("--json", action="store_true", help="the fit and cross-validation as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_calibrate)
