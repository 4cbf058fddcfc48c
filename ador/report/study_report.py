"""`ador study plot` and `ador study report`: every figure of a stored study, and a Markdown report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ador.config import dump_yaml
from ador.errors import AdorError
from ador.explore.record import baselines_of, settings
from ador.hardware import GPUS, System, device_from_mapping
from ador.perf import evaluate
from ador.report import data as D
from ador.report import plots as P
from ador.workload import get_model, get_precision


def evaluations_for(study, durable) -> list[tuple[str, Any, Any]]:
    """(label, device, Evaluation) for the recommended design and the study's baselines."""
    spec = study.spec
    if spec.load is not None:      # a system-level study: its trials are deployments, not designs at one system
        return []
    model, precision = get_model(spec.model), get_precision(spec.precision)
    w = study.workload
    out = []
    rec = D.recommended(study, durable)
    if rec:
        pick = rec[D.KNEE]
        device = device_from_mapping(pick["design"])
        label = f"knee (trial {pick['trial']})"
        out.append((label, device, evaluate(System.of(device, tp=spec.tp, pp=spec.pp, devices=spec.devices,
                                                      runtime=study.runtime_for(device.kind)),
                                            model, precision, batch=w.batch, input_len=w.input_len,
                                            output_len=w.output_len)))
    for gpu in spec.baselines:
        device = GPUS[gpu]
        try:
            evaluation = evaluate(System.of(device, tp=spec.tp, pp=spec.pp, devices=spec.devices,
                                            runtime=study.runtime_for("gpu")), model, precision, batch=w.batch,
                                  input_len=w.input_len, output_len=w.output_len)
        except AdorError:       # a baseline that cannot run this model or precision is not drawn
            continue
        out.append((gpu.split("-")[0].upper(), device, evaluation))
    return out


def write_plots(study, durable, out: Path, formats=("png", "svg")) -> dict[str, list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}

    def save(name: str, draw) -> None:
        written[name] = [draw(out / f"{name}.{fmt}") for fmt in formats]

    names = study.metric_names
    if len(names) >= 2:
        front = D.pareto_front_data(durable, names[0], names[1], study)
        save("pareto", lambda p: P.plot_pareto(front, p))
        if len(names) >= 3:
            fronts = D.projections(durable, study)
            save("projections", lambda p: P.plot_projections(fronts, p))
    hv = D.hypervolume_history([(settings(durable).get("ador_sampler", {}).get("name", "study"), durable)])
    save("hypervolume", lambda p: P.plot_hypervolume(hv, p, f"{study.name}: search progress", D.hv_caption(durable)))
    evals = evaluations_for(study, durable)
    if evals:
        bars = D.breakdown_data([(label, r) for label, _, r in evals])
        save("breakdown", lambda p: P.plot_breakdown(bars, p))
        roofs = [D.roofline_data(label, dev, r, get_precision(study.spec.precision).compute_dtype)
                 for label, dev, r in evals]
        save("roofline", lambda p: P.plot_roofline(roofs, p))
    imp = D.importances(durable)
    if imp:
        save("importances", lambda p: P.plot_importances(imp, p))
    return written


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _exact_line(durable, exact) -> list[str]:
    if exact is None:
        return []
    from ador.explore.record import is_feasible
    feasible = [t.values for t in durable.get_trials(deepcopy=False) if is_feasible(t)]
    share = 100 * exact.fraction(feasible)
    return [f"- exact front (`ador study enumerate`): {len(exact.points)} distinct designs of the space's "
            f"{exact.counts()}; this study's feasible designs reach {share:.1f}% "
            f"of its hypervolume (objectives scaled over the space's feasible designs)"]


def _shown(metrics: dict[str, Any], key: str, spec: str) -> str:
    """A metric as the report prints it; "-" where the trial lacks it (another client's trial)."""
    return "-" if metrics.get(key) is None else format(metrics[key], spec)

def write_report(study, durable, out: Path, exact=None) -> Path:
    """A Markdown report: settings, best designs against the baselines, plots, recommended designs;
    with ``exact`` (the space's exact front, ``ador study enumerate``) how close the study came to it."""
    from ador.explore.runner import pareto_rows, status
    plots = write_plots(study, durable, out, formats=("png",))
    st = status(durable, space=study.space)
    spec = study.spec
    lines = [f"# Study report: {study.name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    w = spec.workload
    lines += [
        "## Settings", "",
        f"- model: {spec.model}, precision {spec.precision}, TP {spec.tp}, PP {spec.pp}, "
        f"devices {spec.devices or spec.tp * spec.pp}",
        f"- workload: batch {w.batch}, input {w.input_len} tokens, output {w.output_len} tokens",
        "- objectives: " + ", ".join(f"{m} ({d})" for m, d in zip(study.metric_names, study.directions)),
        "- constraints: " + (", ".join(f"{c.metric} {'<=' if c.max is not None else '>='} "
                                         f"{c.max if c.max is not None else c.min:g}"
                                         for c in study.all_constraints()) or "none")
        + ("; die within the 858 mm2 reticle" if spec.reticle_limit else "") + "; model fits in memory",
        f"- search space: base {study.space.spec.base}, knobs {', '.join(study.space.knobs)}",
        f"- sampler: {st['sampler']}; model version {st['model_version']}",
        f"- trials: {st['n_complete']} complete ({st['n_feasible']} feasible), {st['n_failed']} failed; "
        f"{st['n_pareto']} distinct feasible designs on the front; hypervolume {st['hypervolume']:.4g} "
        f"({D.hv_caption(durable)})", *_exact_line(durable, exact), "",
        "## Pareto-optimal designs against the GPUs", "",
        "Ratios say how many times better than the GPU on that objective (above 1 is better), on the same "
        "workload and system size.", "",
    ]
    rows = pareto_rows(study, durable)
    baselines = baselines_of(durable)
    gpus = [g for g, b in baselines.items() if "metrics" in b]
    head = ["trial", *study.metric_names, "die_area_mm2"] + [f"{m} x vs {g.split('-')[0].upper()}" for g in gpus
                                                             for m in study.metric_names]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join("---:" for _ in head) + " |")
    for r in rows[:25]:
        cells = [str(r["trial"]), *(_fmt(r[m]) for m in study.metric_names), _fmt(r["die_area_mm2"])]
        cells += [(f"{r[f'{m}_x_vs_{g}']:.2f}x" if r.get(f"{m}_x_vs_{g}") else "-") for g in gpus
                  for m in study.metric_names]
        lines.append("| " + " | ".join(cells) + " |")
    for g, b in baselines.items():
        if "metrics" in b:
            verdict = "" if b.get("feasible", True) else \
                f" — **infeasible under this study's SLOs and constraints**: {'; '.join(b['infeasible_reasons'])}"
            lines.append(f"\nBaseline {g} (runtime {b.get('runtime', '?')}): "
                         + ", ".join(f"{m} {_fmt(b['metrics'][m])}" for m in study.metric_names) + verdict)
    if study.spec.load is not None:          # a system-level study: the operator's answer first
        from ador.report.what_to_buy import markdown, purchase
        lines += ["", markdown(purchase(durable), study.spec.load)]
    lines += ["", "## Plots", ""]
    for name, paths in plots.items():
        lines += [f"![{name}]({paths[0].name})", ""]
    lines += [] if study.spec.load is not None else [
        "## Recommended designs", "",
        "All on the front (never a dominated design). The knee is the front's design closest to the ideal point once "
        "each objective is scaled over the front to [0, 1] (0 its best value, 1 its worst); beside it, the best "
        "design on each objective.", ""]
    for why, rec in ({} if study.spec.load is not None else D.recommended(study, durable)).items():
        m = rec["metrics"]
        lines += [f"### {why}: trial {rec['trial']}", "",
                  f"TTFT {_shown(m, 'ttft_ms', '.1f')} ms, p99 TBT {_shown(m, 'tbt_p99_ms', '.2f')} ms, "
                  f"{_shown(m, 'output_tok_s', '.0f')} output tokens/s, {_shown(m, 'output_tok_s_per_mm2', '.4g')} "
                  f"tokens/s per mm2, dies {_shown(m, 'die_area_mm2', '.0f')} mm2, system cost "
                  f"{_shown(m, 'cost_usd', '.0f')} USD.", ""]
        for gpu, ratios in rec["x_vs"].items():
            lines.append(f"- vs {gpu}: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items() if v))
        lines += ["", "```yaml", dump_yaml(rec["design"]).rstrip(), "```", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
