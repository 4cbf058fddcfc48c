"""The benchmarks run (quick mode) and write every figure; timings are printed, never asserted."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_quick_benchmarks_run_and_write_results(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    for key in ("eval_per_s", "vector_eval_per_s", "study_speedup_vs_optuna_sqlite", "serving_iterations_per_s",
                "optuna_memory_trials_per_s"):
        assert data[key] > 0
    scale = data["study_scale"]
    for key in ("trials_per_s_at_small", "trials_per_s_at_large"):
        assert scale["growth"][key] > 0
    assert scale["growth"]["resume"]["peak_rss_mb"] > 0 and scale["workers"]["speedup_2"] > 0
    assert scale["tpe_growth"]["resume"]["first_trial_s"] > 0
    assert any(k.startswith("hv_fraction_") for k in data)
    for heading in ("[1]", "[2]", "[3]", "[3b]", "[3c]", "[4]", "[5]"):
        assert heading in proc.stdout


def test_fit_floor_starts_from_the_shipped_fit_and_never_ends_above_it():
    from ador.hardware.calibration import fit_record
    from benchmarks import fit_floor

    out = fit_floor.run(hops=1)
    recorded = fit_record()
    assert out["shipped_mape_pct"] == pytest.approx(recorded["mape_pct"], abs=0.001)
    assert out["best_mape_pct"] <= out["shipped_mape_pct"]
    # the docs quote the run's figures next to the shipped ones
    text = (REPO / "docs" / "validation.md").read_text()
    assert f"(shipped: {recorded['mape_pct']:.2f}% / " in text
