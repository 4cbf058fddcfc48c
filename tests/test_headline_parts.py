"""The pieces the headline stands on (issue 19): the iso matrix-efficiency rule, model-error bands
and intervals, held-out errors stored by calibrate, and the p99 capacity search."""
import math

import pytest
import yaml

from ador.errors import ConfigError
from ador.explore.config import load_study
from ador.validation import uncertainty
from tests.conftest import REPO


def test_iso_matrix_efficiency_gives_designs_the_baselines_fitted_value(tmp_path):
    from ador.hardware import GPUS
    iso = load_study(REPO / "studies" / "llama3-70b-8dev-iso.yaml")
    assert iso.space.base.matrix_efficiency == GPUS["a100-sxm-80gb"].efficiency.tensor < 1
    assert load_study(REPO / "studies" / "llama3-70b-8dev.yaml").space.base.matrix_efficiency == 1.0
    data = yaml.safe_load((REPO / "studies" / "llama3-70b-8dev-iso.yaml").read_text())
    data["iso"]["matrix_efficiency"] = "half"
    data["search_space"] = str(REPO / "search_spaces" / "iso-a100.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="iso.matrix_efficiency"):
        load_study(bad)


def test_interval_combines_errors_in_quadrature():
    a = uncertainty.Band("a", 3, 0.0, 30.0)
    b = uncertainty.Band("b", 3, 0.0, 40.0)
    assert uncertainty.spread(a, b) == pytest.approx(0.5)
    lo, hi = uncertainty.interval(2.0, a, b)
    assert lo == pytest.approx(2.0 / 1.5) and hi == pytest.approx(3.0)
    assert uncertainty.interval(2.0) == (2.0, 2.0)


def test_bands_come_from_the_models_own_errors():
    g = uncertainty.gpu_band("decode")
    assert g.n > 20 and 0 < g.rms_pct < 50
    d = uncertainty.design_band("decode")
    assert d.n >= 3 and d.rms_pct > 0
    area = uncertainty.area_band()
    assert area.n == 3 and area.rms_pct < 10       # GA100, GH100, AD102 floorplans (docs/cost.md)


def test_gpu_band_says_how_to_get_heldout_errors(tmp_path, monkeypatch):
    import ador.hardware.calibration as cal
    plain = tmp_path / "calibration.yaml"
    doc = yaml.safe_load(cal.PACKAGED_CALIBRATION.read_text())
    doc["fit"].pop("heldout")
    plain.write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(cal, "CALIBRATION_FILE", plain)
    with pytest.raises(ConfigError, match="ador calibrate --cv"):
        uncertainty.gpu_band("decode")


def test_heldout_by_family_summarises_signed_errors():
    from ador.validation.calibrate import heldout_by_family
    cv = {"kfold": {"fold0": {"errors": [("tbt_ms", 10.0), ("ttft_ms", -5.0)]},
                    "fold1": {"errors": [("decode_tok_s_per_user", -10.0), ("output_tok_s", 3.0)]}}}
    out = heldout_by_family(cv)
    assert out["decode"] == {"n": 2, "bias_pct": 0.0, "rms_pct": 10.0}
    assert out["prefill"]["n"] == 1 and out["prefill"]["bias_pct"] == -5.0
    assert out["throughput"]["rms_pct"] == 3.0


def test_percentile_capacity_keeps_both_p99s_within_their_targets():
    from ador.hardware import GPUS, System
    from ador.serving import Lengths, SchedulerConfig, percentile_capacity, poisson, simulate
    from ador.workload import get_model, get_precision
    system = System.of(GPUS["h100-sxm-80gb"], tp=8)
    base = poisson(1.0, 300, Lengths("lognormal", 1024), Lengths("lognormal", 256), seed=3)

    def at(rate):
        return simulate(system, get_model("llama-3-70b"), get_precision("fp16"), base.at_rate(rate),
                        config=SchedulerConfig(policy="chunked"))
    rate, result = percentile_capacity(at, ttft_p99_ms=2000, tbt_p99_ms=60)
    assert rate > 0 and result.ttft_ms["p99"] <= 2000 and result.tbt_ms["p99"] <= 60
    above = at(rate * 1.25)
    assert above.ttft_ms["p99"] > 2000 or above.tbt_ms["p99"] > 60     # bisection within its 5% tolerance
    # a TBT target that binds (the TTFT-only capacity misses it): the capacity keeps the p99 TBT within
    tighter, at_tighter = percentile_capacity(at, ttft_p99_ms=2000, tbt_p99_ms=40)
    assert 0 < tighter < rate and at_tighter.tbt_ms["p99"] <= 40 < result.tbt_ms["p99"]
    with pytest.raises(ConfigError):
        percentile_capacity(at, ttft_p99_ms=None, tbt_p99_ms=None)
    assert math.isfinite(rate)
