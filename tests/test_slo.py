"""SLO keys name their statistic, mean the same in studies and in `ador simulate`, and the names of
earlier versions still work, with a warning."""
import json
import warnings

import pytest

from ador.cli import main
from ador.errors import ConfigError
from ador.explore.config import load_study, study_from_dict
from ador.slo import SLO_KEYS, SloDeprecationWarning, parse_option, upgrade
from tests.conftest import REPO

SMOKE = (REPO / "studies" / "smoke.yaml").read_text()
SERVING = "workload: {batch: 16, input_len: 512, output_len: 128, arrival_rate: 2.0, requests: 60}\n"


def _study(tmp_path, slo: str, serving: bool = False):
    text = SMOKE.replace("workload: {batch: 16, input_len: 512, output_len: 128}\n", SERVING) if serving else SMOKE
    path = tmp_path / "s.yaml"
    path.write_text(text + f"slo: {slo}\n")
    return load_study(path)


def _bounds(study):
    return {c.metric: c.max for c in study.all_constraints()}


def test_each_key_bounds_its_statistic(tmp_path):
    static = _study(tmp_path, "{ttft_p99_ms: 900, tbt_p99_ms: 30, tbt_mean_ms: 25}")
    assert _bounds(static) == {"ttft_ms": 900, "tbt_p99_ms": 30, "tbt_ms": 25}
    assert static.serving is None
    served = _study(tmp_path, "{ttft_p99_ms: 900, tbt_p99_ms: 30, tbt_mean_ms: 25}", serving=True)
    # under an arrival rate: p99 keys bound the simulated percentiles; a request is served in time
    # when its own TTFT and its own mean TBT are within the TTFT and mean-TBT goals
    assert _bounds(served) == {"serving_ttft_p99_ms": 900, "serving_tbt_p99_ms": 30}
    assert (served.serving.ttft_slo_ms, served.serving.tbt_slo_ms) == (900, 25)
    assert set(served.serving.targets) >= {"serving_ttft_p99_ms", "serving_tbt_p99_ms"}


@pytest.mark.parametrize("serving,old,new", [
    (False, "{ttft_ms: 900}", {"ttft_p99_ms": 900}),
    (False, "{tbt_ms: 30}", {"tbt_p99_ms": 30}),          # it was applied to the p99 decode step
    (True, "{tbt_ms: 30}", {"tbt_mean_ms": 30}),          # under load it judged each request's mean
])
def test_old_names_read_as_the_key_they_meant(tmp_path, serving, old, new):
    with pytest.warns(SloDeprecationWarning, match=f"write {next(iter(new))}"):
        study = _study(tmp_path, old, serving=serving)
    assert {k: getattr(study.spec.slo, k) for k in SLO_KEYS if getattr(study.spec.slo, k) is not None} == new
    # a stored study keeps its old names and is read the same way, silently
    stored = study.to_dict()
    stored["slo"] = {"ttft_ms" if "ttft" in old else "tbt_ms": next(iter(new.values()))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = study_from_dict(stored, "again")
    assert again.all_constraints() == study.all_constraints()


def test_an_old_and_a_new_name_together_or_a_bad_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="ttft_p99_ms is given too"), pytest.warns(SloDeprecationWarning):
        upgrade({"ttft_ms": 1, "ttft_p99_ms": 2}, serving=False, where="slo")
    for bad in ("{tbt_p99_ms: -3}", "{tbt_p99_ms: .nan}", "{tbt_p99_ms: fast}"):
        with pytest.raises(ConfigError, match="slo"):
            _study(tmp_path, bad)
    with pytest.raises(ConfigError, match="unknown field"):
        _study(tmp_path, "{tbt_p95_ms: 10}")


def test_the_deprecation_is_one_line_on_stderr(tmp_path):
    import subprocess
    import sys
    from tests.conftest import ador_env
    (tmp_path / "old.yaml").write_text(SMOKE + "slo: {tbt_ms: 40}\n")
    r = subprocess.run([sys.executable, "-m", "ador.cli", "study", "launch", "old.yaml", "--trials", "2", "--quiet"],
                       cwd=tmp_path, env=ador_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("ador: warning: slo.tbt_ms is deprecated: write tbt_p99_ms (99th-percentile time between "
                        "tokens, ms)\n")


SIM = ["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--rate", "4", "--requests", "120",
       "--json"]


def test_simulate_takes_the_study_keys(capsys):
    assert main([*SIM, "--slo", "ttft_p99_ms=500", "--slo", "tbt_mean_ms=40", "--slo", "tbt_p99_ms=1"]) == 0
    data = json.loads(capsys.readouterr().out)
    # each request is judged by its TTFT and its mean TBT (what a study's goodput counts)
    assert (data["ttft_slo_ms"], data["tbt_slo_ms"]) == (500, 40)
    v = data["slo"]
    assert v["tbt_p99_ms"]["value_ms"] == data["tbt_ms"]["p99"] and v["tbt_p99_ms"]["met"] is False
    assert v["ttft_p99_ms"]["met"] == (data["ttft_ms"]["p99"] <= 500)
    assert "per request" in v["tbt_mean_ms"]["judged"]


def test_simulate_old_flags_still_work_with_a_warning(capsys):
    with pytest.warns(SloDeprecationWarning) as caught:
        assert main([*SIM, "--ttft-slo", "500", "--tbt-slo", "40"]) == 0
    assert {str(w.message) for w in caught} == {"--ttft-slo is deprecated: write --slo ttft_p99_ms=500",
                                                 "--tbt-slo is deprecated: write --slo tbt_mean_ms=40"}
    data = json.loads(capsys.readouterr().out)
    assert (data["ttft_slo_ms"], data["tbt_slo_ms"]) == (500, 40)
    assert main([*SIM, "--slo", "tbt_p95_ms=3"]) == 2
    assert "unknown SLO" in capsys.readouterr().err
    with pytest.warns(SloDeprecationWarning):
        assert parse_option("tbt_ms=40") == ("tbt_mean_ms", 40.0)
