"""`python -m benchmarks [--quick]`: run every benchmark, print a table, write benchmarks/results.json.

Figures are medians over repeats with their spread; ratios are taken between figures measured in
the same run, since the machine is shared and its speed drifts. No target is asserted here.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ador.explore.samplers import TPE_ABOVE_WINDOW, TPE_BELOW_LIMIT
from benchmarks import batch_speed, eval_speed, search_quality, serving_speed, study_scale, study_speed

RESULTS = Path(__file__).with_name("results.json")


def _spread(growth: dict[str, Any], size: str) -> str:
    """The repeats' range of a growth window ("[low .. high]")."""
    rates = growth[f"repeats_at_{size}"]
    return f"[{min(rates):.1f} .. {max(rates):.1f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="short run that checks the benchmarks work")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"quick": args.quick, "python": platform.python_version(),
                               "machine": platform.machine()}
    print(f"ador benchmarks ({'quick' if args.quick else 'full'}), Python {platform.python_version()}")
    print(f"\n[1] single-design evaluation: {eval_speed.MODEL}, TP{eval_speed.TP}, prefill "
          f"{eval_speed.BATCH}x{eval_speed.INPUT_LEN} + decode at batch {eval_speed.BATCH} (target >= 2,000/s)")
    rates = eval_speed.run(args.quick)
    for key, r in rates.items():
        if not key.startswith("vector"):
            print("    " + r.row())
    speedup = rates["eval_per_s"].median_per_s / rates["eval_cold_per_s"].median_per_s
    print(f"    graph cache speed-up over the baseline: {speedup:.1f}x")
    vector_x = rates["vector_eval_per_s"].median_per_s / rates["eval_per_s"].median_per_s
    print("\n[2] vectorised population evaluation, same workload (target >= 1,000,000 designs/s)")
    for key in ("vector_eval_per_s", "vector_all_metrics_per_s", "vector_eval_with_conversion_per_s",
                "vector_from_knobs_per_s"):
        print("    " + rates[key].row())
    print(f"    {vector_x:.0f}x one design at a time")
    results["vector_speedup_vs_scalar"] = vector_x
    results.update({key: r.median_per_s for key, r in rates.items()})
    results["eval_spread"] = {key: [r.min_per_s, r.max_per_s] for key, r in rates.items()}
    results["eval_cache_speedup"] = speedup

    print("\n[3] persisted study throughput, smoke study, NSGA-II, each trial committed to SQLite (target >= 5x)")
    speed = study_speed.run(args.quick)
    print(f"    plain Optuna + SQLite (WAL) {speed['optuna_sqlite_trials_per_s']:8.1f} trials/s")
    print(f"    plain Optuna in memory      {speed['optuna_memory_trials_per_s']:8.1f} trials/s")
    print(f"    ador default path           {speed['ador_trials_per_s']:8.1f} trials/s")
    print(f"    speed-up (pairwise median) {speed['study_speedup_vs_optuna_sqlite']:.1f}x "
          f"[{speed['study_speedup_spread'][0]:.1f} .. {speed['study_speedup_spread'][1]:.1f}]; "
          f"{speed['study_speed_vs_optuna_memory']:.2f}x Optuna in memory")
    results.update(speed)
    study_batch = batch_speed.run(args.quick)
    low, high = study_batch["batch_spread"]
    p_low, p_high = study_batch["pymoo_spread"]
    print(f"    llama3-70b-8dev, {study_batch['trials']:,} trials, NSGA-II generations of 100, a generation per "
          f"transaction (target >= 2,000 trials/s): pymoo engine {study_batch['pymoo_trials_per_s']:,.0f} trials/s "
          f"[{p_low:,.0f} .. {p_high:,.0f}]; Optuna's NSGA-II {study_batch['batch_trials_per_s']:,.0f} trials/s "
          f"[{low:,.0f} .. {high:,.0f}]; Optuna's, one trial at a time and one transaction each "
          f"{study_batch['scalar_trials_per_s']:,.0f}/s")
    results["study_batch"] = study_batch
    scale = study_scale.run(args.quick)
    g, w = scale["growth"], scale["workers"]
    print("\n[3b] per-trial cost as the study grows (Llama-3-70B 8-device study, NSGA-II, SQLite in /dev/shm; "
          "target: within 25%)")
    print(f"    {g['window']} trials at {g['window']:,}: {g['trials_per_s_at_small']:6.1f} trials/s "
          f"{_spread(g, 'small')}; {g['window']} trials at {g['trials_large']:,}: "
          f"{g['trials_per_s_at_large']:6.1f} trials/s {_spread(g, 'large')} ({100 * g['large_over_small']:.0f}%; "
          f"each the median of the window run on {len(g['repeats_at_small'])} copies of the study), once started "
          f"(the run started in {g['start_s_at_small']:.2f} s and {g['start_s_at_large']:.2f} s); filling took "
          f"{g['fill_seconds']:.0f} s")
    t = scale["tpe_growth"]
    o, u = t["optuna"], t["uncapped"]
    print(f"    TPE (ador's, ador/explore/flat_tpe.py: estimators of at most the best {TPE_BELOW_LIMIT} and the "
          f"newest {TPE_ABOVE_WINDOW} other trials): {t['window']} trials at {t['window']:,}: "
          f"{t['trials_per_s_at_small']:6.1f} trials/s {_spread(t, 'small')}; "
          f"{t['window']} trials at {t['trials_large']:,}: {t['trials_per_s_at_large']:6.1f} trials/s "
          f"{_spread(t, 'large')} "
          f"({100 * t['large_over_small']:.0f}%; the run started in {t['start_s_at_small']:.2f} s and "
          f"{t['start_s_at_large']:.2f} s); filling took {t['fill_seconds']:.0f} s")
    r = t["resume"]
    print(f"    resume of the {t['trials_large']:,}-trial TPE study in a fresh process: open {r['open_s']:.2f} s, "
          f"first trial {r['first_trial_s']:.2f} s later, peak RSS {r['peak_rss_mb']:.0f} MB (target < 2 s, "
          f"< 300 MB)")
    print(f"    TPE with every trial in its estimators (Optuna's split), {u['window']} trials at {u['window']:,} and "
          f"at {u['trials_large']:,}: ador's sampler {u['trials_per_s_at_small']:.1f} and "
          f"{u['trials_per_s_at_large']:.1f} trials/s ({100 * u['large_over_small']:.0f}%); Optuna's TPESampler "
          f"{o['trials_per_s_at_small']:.1f} and {o['trials_per_s_at_large']:.1f} trials/s "
          f"({100 * o['large_over_small']:.0f}%)")
    r = g["resume"]
    print(f"    resume of the {g['trials_large']:,}-trial study in a fresh process: open {r['open_s']:.2f} s, "
          f"first trial {r['first_trial_s']:.2f} s later, 10 trials {r['ten_trials_s']:.2f} s, "
          f"peak RSS {r['peak_rss_mb']:.0f} MB "
          f"(imports {r['import_s']:.2f} s)")
    rd = g["reads"]
    print(f"    reading the {g['trials_large']:,}-trial study (target < 1 s): status / best / export (all, CSV) "
          f"in process {' / '.join(f'{v:.2f}' for v in rd['in_process_s'].values())} s; whole commands, start-up "
          f"included, {' / '.join(f'{v:.2f}' for v in rd['whole_command_s'].values())} s")
    print(f"\n[3c] workers: {w['study']}, {w['trials']} trials on {w['storage']}, {w['cores']} cores, load average "
          f"{w['load_average_1min']:.1f} after (target >= 0.8 x k)")
    print(f"    1 process {w['seconds_1']:.1f} s, --workers 2 {w['seconds_2']:.1f} s: {w['speedup_2']:.2f}x; CPU "
          f"{w['cpu_seconds_1']:.1f} s vs {w['cpu_seconds_2']:.1f} s, so with a free core per worker about "
          f"{w['speedup_2_free_cores_estimate']:.2f}x")
    results["study_scale"] = scale

    print("\n[4] serving simulator: Llama-3-70B on 8 devices, Poisson arrivals, long-tailed lengths "
          "(target >= 1,000,000 scheduler iterations/s; 1M requests in < 500 MB)")
    serving = serving_speed.run(args.quick)
    for name, _, _ in serving_speed.CASES:
        r = serving[name]
        print(f"    {name:16} {r['iterations_per_s']:11,.0f} iterations/s [{r['spread'][0]:,.0f} .. "
              f"{r['spread'][1]:,.0f}] ({r['iterations']:,} iterations); {r['speedup_vs_step_by_step']:.1f}x the "
              f"step-by-step baseline ({r['step_by_step_iterations_per_s']:,.0f}/s)")
    for key in ("small", "large"):
        m = serving["memory"][key]
        print(f"    {m['requests']:>9,} requests (Llama-3-8B, 1 x H100, 30/s): peak RSS {m['peak_rss_mb']:.0f} MB "
              f"(process before simulating {m['rss_before_mb']:.0f} MB), {m['seconds']:.1f} s, "
              f"{m['iterations'] / m['seconds']:,.0f} iterations/s")
    results["serving"] = serving
    results["serving_iterations_per_s"] = serving["scheduler_iterations_per_s"]
    results["serving_peak_rss_mb_at_1m"] = serving["peak_rss_mb_at_1m"]

    quality = search_quality.run(args.quick)
    print(f"\n[5] search quality on the {quality['study']} study: hypervolume / exact front's, mean over seeds "
          f"{quality['seeds']} [lowest seed] (target NSGA-II >= 98% by 5,000 trials, clearly above random)")
    print(f"    {quality['space_designs']:,} designs enumerated in {quality['enumerate_s']:.1f} s "
          f"({quality['feasible_designs']:,} feasible); exact front {quality['true_front_size']} designs "
          f"under model version {quality['model_version']}")
    for row in search_quality.table(quality):
        print("    " + row)
    results["search_quality"] = quality
    for key, value in quality.items():
        if key.startswith("hv_fraction_"):
            results[key] = value

    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
