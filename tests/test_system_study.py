"""System-level studies: GPUs and designs as candidates of one search, judged by the offered load."""
import re

import pytest
import yaml

from ador.cli import main
from ador.errors import ConfigError
from ador.explore.config import load_study
from ador.explore.record import metrics_of
from ador.explore.runner import open_study, run_trials, scorer_for
from ador.explore.space import build_space
from ador.explore.system import Candidate, score_candidate
from ador.hardware import PRESETS
from ador.hardware.runtime import get_runtime
from ador.workload import get_model, get_precision
from tests.conftest import REPO

SPACE = {"base": "ador-example",
         "knobs": {"system.device": {"type": "categorical", "choices": ["h100-sxm-80gb", "design"]},
                   "system.tp": {"type": "categorical", "choices": [2, 4, 8]},
                   "system.precision": {"type": "categorical", "choices": ["fp8"]},
                   "serving.policy": {"type": "categorical", "choices": ["chunked"]},
                   "mactree.count": {"type": "int", "low": 0, "high": 256, "step": 64}},
         "constraints": ["system.tp <= 8"]}


def _study(workdir, name="sys", **changes):
    raw = {"model": "llama-3-70b", "precision": "fp16", "tp": 8,
           "workload": {"batch": 16, "input_len": 512, "output_len": 128, "policy": "chunked"},
           "load": {"rate_rps": 4, "input_len": 512, "output_len": 128, "ttft_slo_ms": 1000, "tbt_slo_ms": 30,
                    "requests": 120},
           "economics": {"lifetime_years": 4, "energy_usd_per_kwh": 0.1, "markup": 3.0},
           "objectives": [{"metric": "cost_per_mtok_usd"}, {"metric": "system_package_area_mm2"}],
           "search_space": "sys-space.yaml", "sampler": {"name": "grid"}, "trials": 12, "seed": 1, "baselines": []}
    raw.update(changes)
    (workdir / "search_spaces" / "sys-space.yaml").write_text(yaml.safe_dump(SPACE))
    path = workdir / "studies" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_study(path)


def test_system_knobs_name_things_that_exist():
    for knob, bad in (("system.device", "tpu-v9"), ("system.precision", "fp2"), ("serving.policy", "fastest")):
        raw = {"base": "ador-example", "knobs": {knob: {"type": "categorical", "choices": [bad]}}}
        with pytest.raises(ConfigError, match=bad):
            build_space(raw)
    with pytest.raises(ConfigError, match="categorical"):
        build_space({"base": "ador-example", "knobs": {"system.device": {"type": "int", "low": 1, "high": 2}}})


def test_a_system_study_needs_its_economics_and_keeps_system_metrics_to_itself(workdir):
    with pytest.raises(ConfigError, match="economics"):
        _study(workdir, economics=None)
    with pytest.raises(ConfigError, match="load"):
        _study(workdir, load=None, objectives=[{"metric": "cost_per_mtok_usd"}])


def test_gpus_and_designs_on_one_front_with_the_simulators_numbers(workdir):
    study = _study(workdir)
    durable, _ = open_study(study, f"sqlite:///{workdir / 'sys.db'}")
    run_trials(study, durable, 12, progress=False)
    trials = [t for t in durable.get_trials() if t.state.name == "COMPLETE"]
    kinds = {t.user_attrs["system"]["kind"] for t in trials}
    assert kinds == {"gpu", "ador"}
    gpu = next(t for t in trials if t.user_attrs["system"]["device"] == "h100-sxm-80gb"
               and t.user_attrs["system"]["tp"] == 4)
    again, _ = score_candidate(Candidate(PRESETS["h100-sxm-80gb"], 4, 1, get_precision("fp8"), get_runtime(None),
                                         policy="chunked"), get_model("llama-3-70b"), study.spec.load,
                               study.spec.economics, seed=study.spec.seed)
    for key in ("cost_per_mtok_usd", "replicas", "serving_tbt_p99_ms", "system_package_area_mm2"):
        assert metrics_of(gpu)[key] == pytest.approx(again[key])
    # a cheaper system meeting the same SLOs dominates: among the H100 deployments the front keeps only
    # those no other one beats on both cost and area
    feasible = [t for t in trials if t.user_attrs["feasible"]]
    best = {t.number for t in durable.best_trials}
    assert best and best <= {t.number for t in feasible}
    for t in feasible:
        beaten = any(o.values[0] <= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
                     for o in feasible)
        assert (t.number in best) == (not beaten), t.number


def test_missing_the_p99_slos_at_the_load_is_a_violated_constraint(workdir):
    scorer = scorer_for(_study(workdir, name="judge"))
    ok = {"memory_utilisation": 0.5, "die_area_mm2": 500.0, "shoreline_utilisation": 0.5,
          "serving_ttft_p99_ms": 900.0, "serving_tbt_p99_ms": 29.0}
    constraints, reasons = scorer.judge(ok)
    assert len(constraints) == scorer.n_constraints and max(constraints) <= 0 and not reasons
    slow = dict(ok, serving_tbt_p99_ms=45.0)
    constraints, reasons = scorer.judge(slow, design=False)
    assert len(constraints) == scorer.n_constraints and constraints[-1] == pytest.approx(45 / 30 - 1)
    assert reasons == ["p99 TBT 45 ms > 30 ms at 4 req/s"]


def test_an_invalid_split_is_a_failed_trial_with_its_reason(workdir):
    values = {"system.device": "h100-sxm-80gb", "system.tp": 8, "system.precision": "fp8",
              "serving.policy": "chunked", "mactree.count": 0}
    scorer = scorer_for(_study(workdir, name="tp3"))
    out = scorer({**values, "system.tp": 3})                                     # 64 heads: TP 3 does not divide
    assert out.values is None and any("tp=3 does not divide the 64 attention heads" in r
                                      for r in out.user_attrs["infeasible_reasons"])
    llama = scorer_for(_study(workdir, name="pp3", pp=3))                       # 80 layers: PP 3 does not divide
    out = llama(values)
    assert out.values is None and any("pp=3 does not divide the 80 layers" in r
                                      for r in out.user_attrs["infeasible_reasons"])


def test_a_die_split_the_counts_do_not_allow_is_a_failed_trial_with_its_reason(workdir):
    SPACE["knobs"]["dies"] = {"type": "categorical", "choices": [1, 2, 4]}
    try:
        scorer = scorer_for(_study(workdir, name="dies"))
    finally:
        del SPACE["knobs"]["dies"]
    values = {"system.device": "design", "system.tp": 8, "system.precision": "fp8", "serving.policy": "chunked",
              "mactree.count": 64}
    out = scorer({**values, "dies": 4})                   # the base design's 5 HBM stacks: not 4 equal shares
    assert out.values is None and any("hbm.stacks=5: must split evenly over dies=4" in r
                                      for r in out.user_attrs["infeasible_reasons"])
    assert scorer({**values, "dies": 1}).values is not None


def test_a_system_study_holds_each_die_not_the_device_to_the_reticle(workdir):
    import dataclasses as dc
    scorer = scorer_for(_study(workdir, name="reticle"))
    base = PRESETS["ador-example"]
    big = dc.replace(base, systolic=dc.replace(base.systolic, count=32), mactree=dc.replace(base.mactree, count=256),
                     hbm=dc.replace(base.hbm, stacks=8))          # about 1,050 mm2 of silicon per device
    study = scorer.study
    found = {}
    for dies in (1, 2):
        metrics, _ = score_candidate(Candidate(dc.replace(big, dies=dies), 8, 1, get_precision("fp8"),
                                               get_runtime(None), policy="chunked"),
                                     get_model("llama-3-70b"), study.spec.load, study.spec.economics, seed=1)
        assert metrics is not None and metrics["dies"] == dies
        found[dies] = any("reticle" in r for r in scorer.judge(metrics)[1])
    assert found == {1: True, 2: False}


def test_the_study_file_asks_the_operators_question():
    study = load_study(REPO / "studies" / "llama3-70b-20rps.yaml")
    assert study.spec.load.rate_rps == 20 and study.spec.load.ttft_slo_ms == 1000
    assert study.spec.load.tbt_slo_ms == 50
    assert {"system.device", "system.tp", "system.pp", "system.precision", "serving.policy",
            "serving.max_batch", "serving.chunk_tokens", "dies", "die_to_die_bw_bytes_per_s",
            "hbm.capacity_bytes_per_stack", "mactree.shared_buffer_bytes",
            "sram.capacity_bytes"} <= set(study.space.knobs)
    devices = study.space.knobs["system.device"].choices
    assert "design" in devices and "a100-sxm-80gb" in devices and "h100-sxm-80gb" in devices


def test_report_has_a_what_to_buy_section(workdir):
    study = _study(workdir, name="buy")
    durable, url = open_study(study, f"sqlite:///{workdir / 'buy.db'}")
    run_trials(study, durable, 12, progress=False)
    assert main(["study", "report", "buy", "--storage", url, "--out", str(workdir / "rep")]) == 0
    text = (workdir / "rep" / "report.md").read_text()
    assert "## What to buy" in text and "cheapest GPU system" in text and "cheapest ADOR design" in text
    assert re.search(r"\d+ x design \(1 die of \d+ mm2\)", text)           # what the design is, not its name


def test_a_system_study_gives_designs_half_its_trials_and_each_gpu_its_turn(workdir):
    from collections import Counter

    from ador.explore.system_study import strata
    study = _study(workdir, "strata", sampler={"name": "nsga2", "options": {"population_size": 8}})
    assert strata(study, "nsga2") == [{"system.device": "design"}, {"system.device": "h100-sxm-80gb"}]
    assert strata(study, "grid") == []
    assert strata(load_study(REPO / "studies" / "llama3-70b-8dev.yaml"), "nsga2") == []
    durable, _ = open_study(study, f"sqlite:///{workdir}/strata.db")
    run_trials(study, durable, 6, progress=False)
    run_trials(study, durable, 3, progress=False)          # resumed: the turns go on where they stopped
    devices = [t.params["system.device"] for t in sorted(durable.get_trials(), key=lambda t: t.number)]
    assert devices == ["design", "h100-sxm-80gb"] * 4 + ["design"]
    assert Counter(devices)["design"] == 5
