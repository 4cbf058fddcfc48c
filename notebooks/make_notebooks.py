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
        new_code_cell("import pandas as pd\n"
                      "rows = []\n"
                      "for name in ('ador-example', 'a100-sxm-80gb', 'h100-sxm-80gb'):\n"
                      "    system = System(device=PRESETS[name], tp=8)\n"
                      "    r = evaluate(system, model, precision, batch=64, input_len=2048, output_len=256)\n"
                      "    e = efficiency(system, r)\n"
                      "    rows.append({'hardware': name, 'ttft_ms': r.ttft_s * 1e3, 'tbt_ms': r.tbt_s * 1e3,\n"
                      "                 'output_tok_s': r.output_tok_s, 'output_tok_s_per_mm2': e['output_tok_s_per_mm2'],\n"
                      "                 'mj_per_token': e['energy_per_output_token_j'] * 1e3, 'fits': r.fits})\n"
                      "table = pd.DataFrame(rows).set_index('hardware')\n"
                      "table.round(3)"),
        new_code_cell("area = assess(chip)\n"
                      "print(f'{chip.name}: {area.die_area_mm2:.0f} mm2, {area.tdp_w:.0f} W, {area.cost_usd:.0f} USD')\n"
                      "pd.Series(area.components, name='mm2').sort_values(ascending=False).head(6).round(1)"),
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
        new_markdown_cell("# Run a study\n\nLaunch the smoke study (shipped with ador) on a SQLite file, resume "
                          "it, read the Pareto front against the GPU baselines, and read every trial as a "
                          "DataFrame, with ador's table or with plain Optuna."),
        new_code_cell("import tempfile\n"
                      "from pathlib import Path\n"
                      "from ador.explore.config import load_study\n"
                      "from ador.explore.locate import find_study_file\n"
                      "from ador.explore.runner import open_study, run_trials, status, pareto_rows\n"
                      "study = load_study(find_study_file('smoke'))\n"
                      "storage = f\"sqlite:///{tempfile.mkdtemp()}/smoke.db\"\n"
                      "durable, url = open_study(study, storage)\n"
                      "run_trials(study, durable, 100, progress=False)\n"
                      "status(durable)"),
        new_code_cell("import pandas as pd\n"
                      "run_trials(study, durable, 60, progress=False)   # a resume is just more trials on the stored study\n"
                      "st = status(durable)\n"
                      "assert st['n_complete'] + st['n_failed'] == 160\n"
                      "front = pd.DataFrame(pareto_rows(study, durable)).set_index('trial')\n"
                      "front[['tbt_p99_ms', 'cost_usd', 'tbt_p99_ms_x_vs_a100-sxm-80gb', 'cost_usd_x_vs_a100-sxm-80gb']].round(3)"),
        new_code_cell("from ador.report.table import trials_frame\n"
                      "trials = trials_frame(study, durable)          # every trial: feasibility, metrics, knob values\n"
                      "print(trials.groupby('feasible')['tbt_p99_ms'].describe().round(2))\n"
                      "trials[trials.on_front].sort_values('tbt_p99_ms').head()"),
        new_code_cell("import optuna\n"
                      "plain = optuna.load_study(study_name='smoke', storage=url)   # Optuna alone sees the same front\n"
                      "assert {t.number for t in plain.best_trials} >= set(front.index)\n"
                      "plain.trials_dataframe()[['number', 'values_tbt_p99_ms', 'values_cost_usd', 'user_attrs_feasible']].head()"),
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
                      "from ador.explore.locate import find_study_file\n"
                      "study = load_study(find_study_file('smoke'))\n"
                      "tmp = tempfile.mkdtemp()\n"
                      "studies = []\n"
                      "for sampler in ('nsga2', 'tpe', 'pymoo-nsga2', 'random'):\n"
                      "    s = dataclasses.replace(study, name=f'cmp-{sampler}')\n"
                      "    durable, _ = open_study(s, f'sqlite:///{tmp}/cmp.db', sampler=sampler, seed=3)\n"
                      "    run_trials(s, durable, 150, progress=False)\n"
                      "    studies.append((sampler, durable))"),
        new_code_cell("import pandas as pd\n"
                      "histories = D.hypervolume_history(studies)\n"
                      "print(D.hv_caption(studies[0][1]))\n"
                      "hv = pd.DataFrame({h.label: pd.Series(h.hypervolume, index=h.trials) for h in histories})\n"
                      "out = Path('notebook-output'); out.mkdir(exist_ok=True)\n"
                      "P.plot_hypervolume(histories, out / 'samplers.png', 'Samplers on the smoke space', D.hv_caption(studies[0][1]))\n"
                      "hv.iloc[[9, 29, -1]].round(3)"),
        new_code_cell("from benchmarks.search_quality import exhaustive_front\n"
                      "from ador.explore.pareto import hv_reference, ratio_hypervolume\n"
                      "from ador.explore.record import baselines_of\n"
                      "points, front = exhaustive_front(study)\n"
                      "ref = [v for _, v in hv_reference(baselines_of(studies[0][1]), study.metric_names).values()]\n"
                      "true_hv = ratio_hypervolume(front, study.directions, ref)\n"
                      "share = {}\n"
                      "for label, durable in studies:\n"
                      "    feas = [t.values for t in durable.best_trials]   # feasible (Optuna reads the constraints)\n"
                      "    share[label] = 100 * ratio_hypervolume(feas, study.directions, ref) / true_hv\n"
                      "pd.Series(share, name='% of the true front\\'s hypervolume').round(1)"),
    ],
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)
