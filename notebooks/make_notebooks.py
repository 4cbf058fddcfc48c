"""Writes the worked-example notebooks (stored without outputs). Run: python notebooks/make_notebooks.py"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

NOTEBOOKS = {
    "01_evaluate_a_design.ipynb": [
        new_markdown_cell("# Evaluate a design\n\nScore one ADOR design and the A100 on Llama-3-70B (8 devices, "
                          "TP8): latency, throughput, memory, area, energy, and where the time goes."),
        new_code_cell("from ador.hardware import PRESETS, System, device_to_yaml\n"
                      "from ador.workload import get_model, get_precision\n"
                      "from ador.perf import evaluate\n"
                      "from ador.efficiency import efficiency\n"
                      "from ador.cost import assess\n"
                      "model, precision = get_model('llama-3-70b'), get_precision('fp16')\n"
                      "chip = PRESETS['ador-example']\n"
                      "print(device_to_yaml(chip))"),
        new_code_cell("rows = []\n"
                      "for name in ('ador-example', 'a100-sxm-80gb', 'h100-sxm-80gb'):\n"
                      "    system = System(device=PRESETS[name], tp=8)\n"
                      "    r = evaluate(system, model, precision, batch=64, input_len=2048, output_len=256)\n"
                      "    e = efficiency(system, r)\n"
                      "    rows.append((name, r.ttft_s * 1e3, r.tbt_s * 1e3, r.output_tok_s, e['output_tok_s_per_mm2'],\n"
                      "                 e['energy_per_output_token_j'] * 1e3, r.fits))\n"
                      "print(f\"{'hardware':16} {'TTFT ms':>9} {'TBT ms':>8} {'tok/s':>8} {'tok/s/mm2':>10} {'mJ/tok':>8}\")\n"
                      "for name, ttft, tbt, tps, eff, mj, fits in rows:\n"
                      "    print(f'{name:16} {ttft:9.1f} {tbt:8.2f} {tps:8.0f} {eff:10.4f} {mj:8.1f}')"),
        new_code_cell("area = assess(chip)\n"
                      "print(f'{chip.name}: {area.die_area_mm2:.0f} mm2, {area.tdp_w:.0f} W, {area.cost_usd:.0f} USD')\n"
                      "for part, mm2 in sorted(area.components.items(), key=lambda kv: -kv[1])[:6]:\n"
                      "    print(f'  {part:20} {mm2:7.1f} mm2')"),
        new_code_cell("from pathlib import Path\n"
                      "from ador.report import data as D, plots as P\n"
                      "results = [(n, evaluate(System(device=PRESETS[n], tp=8), model, precision, batch=64,\n"
                      "                       input_len=2048, output_len=256)) for n in ('ador-example', 'a100-sxm-80gb')]\n"
                      "out = Path('notebook-output'); out.mkdir(exist_ok=True)\n"
                      "P.plot_breakdown(D.breakdown_data(results), out / 'breakdown.png')\n"
                      "P.plot_roofline([D.roofline_data(n, PRESETS[n], r) for n, r in results], out / 'roofline.png')\n"
                      "sorted(p.name for p in out.iterdir())"),
    ],
    "02_run_a_study.ipynb": [
        new_markdown_cell("# Run a study\n\nLaunch the smoke study on a SQLite file, resume it, and read the "
                          "Pareto front against the GPU baselines."),
        new_code_cell("import dataclasses, os, tempfile\n"
                      "from pathlib import Path\n"
                      "from ador.explore.config import load_study\n"
                      "from ador.explore.runner import open_study, run_trials, status, pareto_rows\n"
                      "repo = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
                      "study = load_study(repo / 'studies' / 'smoke.yaml')\n"
                      "storage = f\"sqlite:///{tempfile.mkdtemp()}/smoke.db\"\n"
                      "durable, url = open_study(study, storage)\n"
                      "run_trials(study, durable, 100, progress=False)\n"
                      "status(durable)"),
        new_code_cell("run_trials(study, durable, 60, progress=False)   # a resume is just more trials on the stored study\n"
                      "st = status(durable)\n"
                      "assert st['n_complete'] + st['n_failed'] == 160\n"
                      "for row in pareto_rows(study, durable)[:8]:\n"
                      "    print(row['trial'], round(row['tbt_p99_ms'], 3), round(row['cost_usd']),\n"
                      "          f\"{row['tbt_p99_ms_x_vs_a100-sxm-80gb']:.2f}x TBT vs A100\")"),
        new_code_cell("from ador.report.study_report import write_report\n"
                      "report = write_report(study, durable, Path('notebook-output') / 'smoke-report')\n"
                      "print(report.read_text()[:1500])"),
    ],
    "03_compare_samplers.ipynb": [
        new_markdown_cell("# Compare samplers\n\nNSGA-II, TPE and pymoo's NSGA-II on the smoke space, against "
                          "the true Pareto front found by enumerating all 1,728 designs."),
        new_code_cell("import dataclasses, tempfile\n"
                      "from pathlib import Path\n"
                      "from ador.explore.config import load_study\n"
                      "from ador.explore.runner import open_study, run_trials\n"
                      "from ador.report import data as D, plots as P\n"
                      "repo = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
                      "study = load_study(repo / 'studies' / 'smoke.yaml')\n"
                      "tmp = tempfile.mkdtemp()\n"
                      "studies = []\n"
                      "for sampler in ('nsga2', 'tpe', 'pymoo-nsga2', 'random'):\n"
                      "    s = dataclasses.replace(study, name=f'cmp-{sampler}')\n"
                      "    durable, _ = open_study(s, f'sqlite:///{tmp}/cmp.db', sampler=sampler, seed=3)\n"
                      "    run_trials(s, durable, 150, progress=False)\n"
                      "    studies.append((sampler, durable))"),
        new_code_cell("histories = D.hypervolume_history(studies)\n"
                      "for h in histories:\n"
                      "    print(f'{h.label:12} HV after {h.trials[-1]} trials: {h.hypervolume[-1]:.4f}')\n"
                      "out = Path('notebook-output'); out.mkdir(exist_ok=True)\n"
                      "P.plot_hypervolume(histories, out / 'samplers.png', 'Samplers on the smoke space')"),
        new_code_cell("from benchmarks.search_quality import exhaustive_front\n"
                      "from ador.explore.pareto import hypervolume, normaliser\n"
                      "points, front = exhaustive_front(study)\n"
                      "scale = normaliser(points, study.directions)\n"
                      "true_hv = hypervolume(front, study.directions, scale=scale)\n"
                      "for label, durable in studies:\n"
                      "    feas = [t.values for t in durable.get_trials() if t.state.name == 'COMPLETE' and t.user_attrs['feasible']]\n"
                      "    print(f'{label:12} {100 * hypervolume(feas, study.directions, scale=scale) / true_hv:5.1f}% of the true front')"),
    ],
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)
