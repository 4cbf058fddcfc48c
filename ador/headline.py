"""The headline study: Llama-3-70B on 8 devices against 8 x A100 and 8 x H100, end to end.

``ador headline`` runs two NSGA-II studies, one in the full template (any node and HBM the space
allows) and one at the A100's technology (iso-technology), then writes a Markdown report with the
assumptions, the Pareto fronts, the recommended designs' ratios against each GPU at several batch
sizes, a serving view, and what binds. ``--report-only`` rewrites the report from the stored
studies without running anything.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ador.config import dump_yaml
from ador.efficiency import efficiency
from ador.explore.config import load_study
from ador.explore.locate import find_study_file
from ador.explore.record import design_mapping, metrics_of
from ador.explore.metrics import evaluate_design, ratio_vs
from ador.explore.runner import load_stored, open_study, run_trials, status
from ador.hardware import GPUS, AdorChip, System, device_from_mapping
from ador.perf import evaluate
from ador.report import data as D
from ador.report import plots as P
from ador.workload import get_model, get_precision

STUDIES = {"unconstrained": "llama3-70b-8dev", "iso-technology": "llama3-70b-8dev-iso"}   # shipped study files
PUBLISHED = {"tbt_x": 2.51, "area_eff_x": 4.01}     # ADOR paper, Llama-3-70B on 8 devices vs A100
BATCHES = (64, 128, 256)


def run(trials: int | None = None, storage_dir: str = "studies", progress: bool = True) -> None:
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    for label, path in STUDIES.items():
        study = load_study(find_study_file(path))
        durable, _ = open_study(study, f"sqlite:///{storage_dir}/{study.name}.db")
        st = status(durable)
        done = st["n_complete"] + st["n_failed"]
        budget = trials or study.spec.trials
        if done < budget:
            run_trials(study, durable, budget - done, progress=progress, label=f"{label} ({study.name})")


def balanced_pick(study, durable) -> dict[str, Any] | None:
    """The knee of the study's front (ador/report/data.py ``picks``: the distinct feasible Pareto
    design closest to the ideal point once each objective is scaled over the front)."""
    best = D.picks(study, durable.get_trials(deepcopy=False)).get(D.KNEE)
    return {"trial": best.number, "design": design_mapping(study, best), "metrics": metrics_of(best)} \
        if best else None


def at_batches(study, design: dict[str, Any]) -> list[dict[str, Any]]:
    """The design and the GPUs at each batch size: p99 TBT, area efficiency, and the ratios."""
    spec = study.spec
    model, precision = get_model(spec.model), get_precision(spec.precision)
    device = device_from_mapping(design)
    rows = []
    for batch in BATCHES:
        w = dataclasses.replace(study.workload, batch=batch)
        mine = evaluate_design(device, model, precision, w, tp=spec.tp, devices=spec.devices, need_energy=False)
        row: dict[str, Any] = {"batch": batch, "tbt_p99_ms": mine["tbt_p99_ms"],
                               "output_tok_s_per_mm2": mine["output_tok_s_per_mm2"],
                               "fits": mine["memory_utilisation"] <= 1}
        for gpu in ("a100-sxm-80gb", "h100-sxm-80gb"):
            g = evaluate_design(GPUS[gpu], model, precision, w, tp=spec.tp, devices=spec.devices, need_energy=False)
            row[gpu] = {"tbt_p99_ms": g["tbt_p99_ms"], "output_tok_s_per_mm2": g["output_tok_s_per_mm2"],
                        "fits": g["memory_utilisation"] <= 1,
                        "tbt_x": ratio_vs("tbt_p99_ms", mine["tbt_p99_ms"], g["tbt_p99_ms"]),
                        "area_eff_x": ratio_vs("output_tok_s_per_mm2", mine["output_tok_s_per_mm2"],
                                               g["output_tok_s_per_mm2"])}
        rows.append(row)
    return rows


def binding(study, design: dict[str, Any]) -> dict[str, Any]:
    """What limits the design's decode step (share of time by bound) and its bandwidth vs the A100."""
    spec = study.spec
    device = device_from_mapping(design)
    assert isinstance(device, AdorChip)          # a recommended design
    system = System.of(device, tp=spec.tp, devices=spec.devices)
    w = study.workload
    r = evaluate(system, get_model(spec.model), get_precision(spec.precision), batch=w.batch, input_len=w.input_len,
                 output_len=w.output_len)
    a100 = GPUS["a100-sxm-80gb"]
    by = r.decode.by_bound()
    total = sum(by.values())
    eff = efficiency(system, r)
    return {"decode_share_by_bound": {k: v / total for k, v in sorted(by.items(), key=lambda kv: -kv[1])},
            "prefill_share_by_bound": {k: v / r.prefill.time_s for k, v in sorted(r.prefill.by_bound().items(),
                                                                                  key=lambda kv: -kv[1])},
            "hbm_tb_s": device.hbm_bw_bytes_per_s / 1e12, "a100_hbm_tb_s": a100.hbm_bw_bytes_per_s / 1e12,
            "die_area_mm2": eff["die_area_mm2_per_device"], "node_nm": device.node_nm,
            "hbm": f"{device.hbm.stacks} x {device.hbm.generation}"}


def serving_view(design_path: Path, spec) -> dict[str, Any]:
    from ador.serving.sweep import Line, rate_sweep
    lines = (Line("8 x recommended design, chunked", str(design_path), spec.tp, spec.devices, "chunked"),
             Line("8 x recommended design, concurrent", str(design_path), spec.tp, spec.devices, "concurrent"),
             Line("8 x A100, chunked", "a100-sxm-80gb", spec.tp, spec.devices, "chunked"),
             Line("8 x A100, continuous", "a100-sxm-80gb", spec.tp, spec.devices, "continuous"),
             Line("8 x H100, chunked", "h100-sxm-80gb", spec.tp, spec.devices, "chunked"))
    return rate_sweep(lines, model=spec.model, precision=spec.precision, rates=(1, 2, 4, 6, 8, 12, 16),
                      requests=1000, input_len=1024, output_len=256, ttft_slo_ms=2000, tbt_slo_ms=50)


def write_report(out: Path = Path("headline"), storage_dir: str = "studies", serving: bool = True) -> Path:
    from ador.report.serving import plot_rate_sweep
    from ador.serving.sweep import markdown_table
    out.mkdir(parents=True, exist_ok=True)
    sections: dict[str, dict[str, Any]] = {}
    for label in STUDIES:
        name = STUDIES[label]
        study, durable, _ = load_stored(name, f"sqlite:///{storage_dir}/{name}.db")
        st = status(durable)
        front = D.pareto_front_data(durable, "tbt_p99_ms", "output_tok_s_per_mm2")
        P.plot_pareto(front, out / f"{name}-pareto.png")
        pick = balanced_pick(study, durable)
        rows = at_batches(study, pick["design"]) if pick else []
        design_path = out / f"{name}-recommended.yaml"
        if pick:
            design_path.write_text(dump_yaml(pick["design"]))
        sections[label] = {"study": study, "durable": durable, "status": st, "pick": pick, "rows": rows,
                           "binding": binding(study, pick["design"]) if pick else None, "design_path": design_path}
    lines = ["# Llama-3-70B on 8 devices: searched designs against 8 x A100 and 8 x H100", "",
             "Generated by `ador headline` (regenerate from the stored studies with `ador headline --report-only`). "
             "Every number below is what the model says; nothing was tuned towards the published result "
             f"(ADOR: {PUBLISHED['tbt_x']}x better TBT and {PUBLISHED['area_eff_x']}x better area efficiency than the "
             "A100).", "", "## Assumptions", ""]
    spec = sections["unconstrained"]["study"].spec
    lines += [
        f"- Model {spec.model}, {spec.precision} weights, activations and KV cache; tensor parallelism {spec.tp} over "
        f"{spec.devices} devices; static batch of {spec.workload.batch} "
        f"(ratios also at batch {', '.join(map(str, BATCHES))}), "
        f"{spec.workload.input_len}-token prompts, {spec.workload.output_len} output tokens.",
        "- QoS is the p99 time between tokens over the generation (`tbt_p99_ms`); area efficiency is output tokens/s "
        "per mm2 of all dies of the system (`output_tok_s_per_mm2`): compute dies only, HBM stacks and packaging not "
        "counted; GPUs at their datasheet die area (A100 826 mm2, H100 814 mm2).",
        "- Every design fits the model and KV cache in memory, stays within the 858 mm2 reticle and within 1,000 W.",
        "- GPUs run with the efficiencies fitted on published measurements (docs/validation.md), TensorRT-LLM "
        "overheads; ADOR designs use the analytical model with no software overhead beyond per-operator dispatch.",
        "- Iso-technology: TSMC 7 nm, HBM2E stacks at the A100's 408 GB/s each, 25 GB/s links, clock up to 1.4 GHz. "
        "Unconstrained: 7, 5 or 3 nm, HBM2E/3/3E, links up to 100 GB/s, clock up to 2 GHz.", "",
        "The headline ratios below come from the **iso-technology** study: it asks what the architecture buys at the "
        "A100's technology. The unconstrained study adds what newer nodes and HBM buy.", ""]
    for label, sec in sections.items():
        st, pick = sec["status"], sec["pick"]
        name = sec["study"].name
        lines += [f"## {label.capitalize()} ({name})", "",
                  f"{st['n_complete']} trials ({st['n_feasible']} feasible), {st['n_pareto']} Pareto-optimal, sampler "
                  f"{st['sampler']['name']}, seed {st['sampler']['seed']}.", "",
                  f"![Pareto front]({name}-pareto.png)", ""]
        if not pick:
            lines += ["No feasible design.", ""]
            continue
        m = pick["metrics"]
        lines += [f"Recommended design: trial {pick['trial']} (the knee of the front: closest to its ideal "
                  f"point once each objective is scaled over the front), file `{sec['design_path'].name}`: die "
                  f"{m['die_area_mm2']:.0f} mm2, p99 TBT "
                  f"{m['tbt_p99_ms']:.2f} ms, {m['output_tok_s_per_mm2']:.4g} tokens/s per mm2, TTFT "
                  f"{m['ttft_ms']:.0f} ms at batch {spec.workload.batch}.", "",
                  "| batch | design p99 TBT ms | TBT x vs A100 | area eff. x vs A100 | TBT x vs H100 "
                  "| area eff. x vs H100 |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in sec["rows"]:
            a, h = r["a100-sxm-80gb"], r["h100-sxm-80gb"]
            lines.append(f"| {r['batch']} | {r['tbt_p99_ms']:.2f}{'' if r['fits'] else ' (does not fit)'} | "
                         f"{a['tbt_x']:.2f}x | {a['area_eff_x']:.2f}x | {h['tbt_x']:.2f}x | {h['area_eff_x']:.2f}x |")
        b = sec["binding"]
        dec = ", ".join(f"{k} {100 * v:.0f}%" for k, v in b["decode_share_by_bound"].items())
        pre = ", ".join(f"{k} {100 * v:.0f}%" for k, v in b["prefill_share_by_bound"].items())
        r128 = next(r for r in sec["rows"] if r["batch"] == spec.workload.batch)["a100-sxm-80gb"]

        def versus(got: float, published: float) -> str:
            if abs(got / published - 1) <= 0.02:
                return f"{got:.2f}x, equal to the published {published}x within 2%"
            return f"{got:.2f}x, {'above' if got > published else 'below'} the published {published}x"
        lines += ["", f"What binds: the decode step is {dec} (time by bound); the prefill is {pre}. The design has "
                      f"{b['hbm']} ({b['hbm_tb_s']:.2f} TB/s per device, {b['hbm_tb_s'] / b['a100_hbm_tb_s']:.2f}x the "
                      f"A100's {b['a100_hbm_tb_s']:.2f} TB/s) on a {b['die_area_mm2']:.0f} mm2 {b['node_nm']} nm die. "
                      f"At batch {spec.workload.batch} against 8 x A100: "
                      f"TBT {versus(r128['tbt_x'], PUBLISHED['tbt_x'])}; "
                      f"area efficiency {versus(r128['area_eff_x'], PUBLISHED['area_eff_x'])}. The decode step is "
                      f"HBM-bound on both, so the TBT ratio follows the HBM bandwidth ratio; the area ratio also "
                      f"reflects how little of the die the design spends beyond memory interfaces and MACs.", ""]
    if serving and sections["iso-technology"]["pick"]:
        sec = sections["iso-technology"]
        data = serving_view(sec["design_path"], sec["study"].spec)
        plot_rate_sweep(data, out / "llama3-70b-8dev-serving.png")
        lines += ["## Serving view (iso-technology design)", "",
                  "p99 TBT and goodput against Poisson arrival rate, 1,000 requests with long-tailed lengths (mean "
                  "prompt 1,024, mean output 256), SLOs TTFT 2 s and mean TBT 50 ms. The recommended design runs "
                  "chunked prefill and ADOR's concurrent policy; the GPUs run chunked prefill (Sarathi) and "
                  "prefill-first continuous batching (vLLM). See docs/serving.md for the simulator.", "",
                  "Read the concurrent line with care: the study scores static batches, where the systolic arrays "
                  "serve both phases best, so its knee design keeps small-buffered MAC trees (each buffer holds one "
                  "activation vector). Under the concurrent policy the decodes must run on those trees, which "
                  "re-stream the weights for every sequence of the batch, so the design serves far worse that way "
                  "than with chunked prefill. Sizing the trees for concurrent serving needs a study judged by the "
                  "serving simulator: `studies/llama3-70b-8dev-serving.yaml` maximises goodput under the concurrent "
                  "policy at 6 requests/s (`ador study launch studies/llama3-70b-8dev-serving.yaml`).", "",
                  "![serving view](llama3-70b-8dev-serving.png)", "", "p99 TBT ms / goodput req/s:", "",
                  markdown_table(data), ""]
    path = out / "llama3-70b-8dev.md"
    path.write_text("\n".join(lines) + "\n")
    return path
