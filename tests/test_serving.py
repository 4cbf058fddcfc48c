import dataclasses
import json
import math

import pytest

from ador.cli import main
from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.perf import evaluate
from ador.serving import Lengths, Request, SchedulerConfig, burst, load_trace, max_sustainable_rate, poisson, simulate
from ador.workload import get_model, get_precision

FP16 = get_precision("fp16")
L70 = get_model("llama-3-70b")
L8 = get_model("llama-3-8b")
A100x8 = System(device=PRESETS["a100-sxm-80gb"], tp=8)
ADORx8 = System(device=PRESETS["ador-example"], tp=8)
LONG = Lengths("lognormal", 512, 1.0)
LONG_OUT = Lengths("lognormal", 128, 1.0)


def test_deterministic_under_a_seed():
    a = simulate(A100x8, L70, FP16, poisson(3.0, 300, LONG, LONG_OUT, seed=4))
    b = simulate(A100x8, L70, FP16, poisson(3.0, 300, LONG, LONG_OUT, seed=4))
    c = simulate(A100x8, L70, FP16, poisson(3.0, 300, LONG, LONG_OUT, seed=5))
    assert a == b and a != c


@pytest.mark.parametrize("system", [A100x8, ADORx8], ids=["a100", "ador"])
@pytest.mark.parametrize("policy", ["continuous", "chunked"])
def test_one_request_is_prefill_plus_decode_of_the_perf_model(system, policy):
    r = simulate(system, L70, FP16, [Request(0, 0.0, 512, 64)], config=SchedulerConfig(policy=policy,
                                                                                        chunk_tokens=4096))
    e = evaluate(system, L70, FP16, batch=1, input_len=512, output_len=64)
    assert r.ttft_ms["mean"] == pytest.approx(e.ttft_s * 1e3, rel=1e-9)       # means are exact sums ...
    assert r.ttft_ms["p50"] == pytest.approx(e.ttft_s * 1e3, rel=6e-4)        # ... percentiles within a bucket
    assert r.e2e_ms["p50"] == pytest.approx(e.e2e_s * 1e3, rel=0.005)
    assert r.tbt_ms["mean"] == pytest.approx(e.tbt_s * 1e3, rel=0.005)


def _from_decode(system: System) -> System:
    return dataclasses.replace(system, runtime=dataclasses.replace(system.runtime, first_token_from_decode=True))


@pytest.mark.parametrize("system", [A100x8, ADORx8], ids=["a100", "ador"])
@pytest.mark.parametrize("policy", ["continuous", "chunked"])
def test_one_request_under_a_runtime_whose_first_token_comes_from_decode_is_the_perf_model(system, policy):
    """TurboMind's old split (a prefill of all but the last prompt token, then a decode step over it
    emits the first token): the simulator follows the same rule as ``evaluate``."""
    turbo = _from_decode(system)
    cfg = SchedulerConfig(policy=policy, chunk_tokens=4096)
    r = simulate(turbo, L70, FP16, [Request(0, 0.0, 512, 64)], config=cfg)
    e = evaluate(turbo, L70, FP16, batch=1, input_len=512, output_len=64)
    # the first token's decode step is priced at the KV bucket, as every simulated decode step is
    assert r.ttft_ms["mean"] == pytest.approx(e.ttft_s * 1e3, rel=2e-3)
    assert r.e2e_ms["p50"] == pytest.approx(e.e2e_s * 1e3, rel=0.005)
    assert r.tbt_ms["mean"] == pytest.approx(e.tbt_s * 1e3, rel=0.005)
    plain = simulate(system, L70, FP16, [Request(0, 0.0, 512, 64)], config=cfg)
    step_ms = plain.tbt_ms["mean"]
    # one prompt token less to prefill, one decode step more before the first token ...
    assert plain.ttft_ms["mean"] + 0.5 * step_ms < r.ttft_ms["mean"] < plain.ttft_ms["mean"] + 1.5 * step_ms
    # ... and then the same 63 gaps: the request ends later by about what the first token did
    assert r.e2e_ms["mean"] - plain.e2e_ms["mean"] == pytest.approx(r.ttft_ms["mean"] - plain.ttft_ms["mean"],
                                                                    rel=0.02)


@pytest.mark.parametrize("output", [1, 2, 17])
@pytest.mark.parametrize("prompt", [1, 2, 300])
def test_every_output_token_of_a_from_decode_runtime_is_a_decode_step(prompt, output):
    """Every token comes from a decode step (none from the prefill), so a request of n output tokens
    takes n decode steps; a one-token prompt still runs a one-token prefill pass."""
    turbo = _from_decode(A100x8)
    alone = simulate(turbo, L8, FP16, [Request(0, 0.0, prompt, output)])
    assert alone.n_finished == 1
    assert alone.iterations == 1 + output        # the prefill pass and n decode steps
    assert math.isnan(alone.tpot_ms["mean"]) if output == 1 else alone.tpot_ms["mean"] > 0
    plain = simulate(A100x8, L8, FP16, [Request(0, 0.0, prompt, output)])
    assert plain.iterations == output            # the prefill gives the first token
    if prompt > 2:
        # the pass leaves the last prompt token to the decode step: a chunk budget of all but one
        # token prefills the prompt in one iteration, where the whole prompt needs two (and then its
        # second gives the first token): both make 1 + n iterations, a whole prompt under turbo 2 + n
        cut = SchedulerConfig(policy="chunked", chunk_tokens=prompt - 1)
        assert simulate(turbo, L8, FP16, [Request(0, 0.0, prompt, output)], config=cut).iterations == 1 + output
        assert simulate(A100x8, L8, FP16, [Request(0, 0.0, prompt, output)], config=cut).iterations == 1 + output


def test_a_loaded_from_decode_runtime_finishes_every_request_with_later_first_tokens():
    load = poisson(5.0, 200, LONG, LONG_OUT, seed=3)
    busy, busy_plain = simulate(_from_decode(A100x8), L70, FP16, load), simulate(A100x8, L70, FP16, load)
    assert busy.n_finished == busy_plain.n_finished == 200
    assert busy.ttft_ms["mean"] > busy_plain.ttft_ms["mean"]


def test_disaggregated_serving_refuses_a_runtime_whose_first_token_comes_from_decode():
    system = _from_decode(System.of(PRESETS["a100-sxm-80gb"], tp=8, devices=16))
    with pytest.raises(ConfigError, match="runtime.first_token_from_decode"):
        simulate(system, L70, FP16, [Request(0, 0.0, 512, 64)], config=SchedulerConfig(policy="disaggregated"))


def test_memory_starved_system_queues_instead_of_over_admitting():
    system = System(device=PRESETS["a100-sxm-40gb"], tp=1)
    model = get_model("llama-2-13b")
    reqs = burst(12, Lengths("fixed", 4000), Lengths("fixed", 1000))
    r = simulate(system, model, FP16, reqs)
    per_request = 5000
    assert r.kv_capacity_tokens < 4 * per_request            # a handful fit at once ...
    assert r.peak_in_service <= r.kv_capacity_tokens // 4000  # ... and no more are let in
    assert r.n_finished == 12 and r.refused == 0
    assert r.queue_ms["p90"] > 1000                           # the rest waited their turn


def test_requests_that_can_never_fit_are_refused():
    system = System(device=PRESETS["a100-sxm-40gb"], tp=1)
    r = simulate(system, get_model("llama-2-13b"), FP16, [Request(0, 0.0, 100, 10), Request(1, 0.1, 60000, 10)])
    assert (r.n_finished, r.refused) == (1, 1)


def test_light_load_p99_tbt_is_the_single_request_tbt():
    single = simulate(A100x8, L70, FP16, [Request(0, 0.0, 512, 128)])
    light = simulate(A100x8, L70, FP16, poisson(0.02, 40, Lengths("fixed", 512), Lengths("fixed", 128), seed=1))
    assert light.tbt_ms["p99"] == pytest.approx(single.tbt_ms["p99"], rel=0.02)
    assert light.ttft_ms["p50"] == pytest.approx(single.ttft_ms["p50"], rel=0.02)
    # a request arriving while another decodes waits at most for the step under way
    assert single.ttft_ms["p99"] <= light.ttft_ms["p99"] <= single.ttft_ms["p99"] + 1.02 * single.tbt_ms["p99"]


@pytest.mark.parametrize("policy", ["continuous", "chunked", "concurrent"])
def test_littles_law_on_a_long_run(policy):
    r = simulate(ADORx8, L70, FP16, poisson(3.0, 4000, LONG, LONG_OUT, seed=2), config=SchedulerConfig(policy=policy))
    assert r.mean_in_system == pytest.approx(r.arrival_rate * r.mean_e2e_ms / 1e3, rel=0.03)


def test_policies_trade_tbt_as_expected_under_load():
    reqs = poisson(4.0, 1500, LONG, LONG_OUT, seed=3)
    cont = simulate(ADORx8, L70, FP16, reqs, config=SchedulerConfig(policy="continuous"))
    chunk = simulate(ADORx8, L70, FP16, reqs, config=SchedulerConfig(policy="chunked"))
    conc = simulate(ADORx8, L70, FP16, reqs, config=SchedulerConfig(policy="concurrent"))
    # prefill-first stalls decodes behind whole prompts; chunking bounds the stall; the
    # heterogeneous chip runs prefill on other engines and barely stalls at all
    assert cont.tbt_ms["p99"] > chunk.tbt_ms["p99"] > conc.tbt_ms["p99"]
    assert conc.tbt_ms["p99"] < 1.5 * conc.tbt_ms["p50"]
    for r in (cont, chunk, conc):
        assert r.n_finished == 1500
        assert r.output_tok_s == pytest.approx(cont.output_tok_s, rel=0.05)


def test_disaggregated_needs_two_replicas_and_removes_prefill_stalls():
    with pytest.raises(ConfigError, match="two replicas"):
        simulate(A100x8, L70, FP16, [Request(0, 0, 128, 8)], config=SchedulerConfig(policy="disaggregated"))
    system = System.of(PRESETS["a100-sxm-80gb"], tp=8, devices=16)
    reqs = poisson(8.0, 1000, LONG, LONG_OUT, seed=1)
    dis = simulate(system, L70, FP16, reqs, config=SchedulerConfig(policy="disaggregated"))
    cont = simulate(system, L70, FP16, reqs, config=SchedulerConfig(policy="continuous"))
    assert dis.n_finished == 1000
    assert dis.tbt_ms["p99"] < cont.tbt_ms["p99"]


def test_concurrent_needs_both_engines():
    with pytest.raises(ConfigError, match="policy='concurrent'"):
        simulate(A100x8, L70, FP16, [Request(0, 0, 128, 8)], config=SchedulerConfig(policy="concurrent"))


def test_finite_metrics_and_utilisation_in_range():
    r = simulate(ADORx8, L70, FP16, poisson(5.0, 500, LONG, LONG_OUT, seed=9),
                 config=SchedulerConfig(policy="concurrent"), ttft_slo_ms=1000, tbt_slo_ms=30)
    for q in (r.ttft_ms, r.tbt_ms, r.e2e_ms):
        assert all(math.isfinite(v) and v >= 0 for v in q.values())
        assert q["p50"] <= q["p90"] <= q["p99"]
    assert 0 <= r.slo_attainment <= 1 and r.goodput_rps <= r.n_finished / r.makespan_s + 1e-9
    assert all(0 <= u <= 1.0001 for u in r.utilisation.values()) and 0 < r.hbm_utilisation <= 1.0001


def test_capacity_search_finds_the_knee():
    base = poisson(1.0, 300, LONG, LONG_OUT, seed=7)

    def at(rate):
        from dataclasses import replace
        return simulate(A100x8, L70, FP16, [replace(r, arrival_s=r.arrival_s / rate) for r in base],
                        ttft_slo_ms=1000, tbt_slo_ms=40)

    rate, result = max_sustainable_rate(at, target=0.9)
    assert rate > 0 and result.slo_attainment >= 0.9
    assert at(rate * 1.5).slo_attainment < 0.9


def test_trace_file(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,prompt_len,output_len\n0.5,100,10\n0.0,200,20\n")
    reqs = load_trace(path)
    assert [(r.arrival_s, r.prompt_len) for r in reqs] == [(0.0, 200), (0.5, 100)]
    path.write_text("time,prompt\n1,2\n")
    with pytest.raises(ConfigError, match="needs columns"):
        load_trace(path)
    path.write_text("arrival_s,prompt_len,output_len\n0,abc,3\n")
    with pytest.raises(ConfigError, match="trace:2"):
        load_trace(path)


def test_cli_json(capsys, tmp_path):
    assert main(["simulate", "--hardware", "ador-example", "--model", "llama-3-8b", "--policy", "concurrent",
                 "--rate", "5", "--requests", "200", "--ttft-slo", "500", "--tbt-slo", "20", "--json",
                 "--seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("ttft_ms", "tbt_ms", "output_tok_s", "goodput_rps", "slo_attainment", "mean_in_system",
                "arrival_rate", "mean_e2e_ms"):
        assert key in data
    assert set(data["ttft_ms"]) >= {"p50", "p90", "p99"}
    assert main(["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--policy", "nope"]) == 2
    assert "policy='nope'" in capsys.readouterr().err


def test_cli_ci_sizes_the_run_and_reports_intervals(capsys):
    assert main(["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--rate", "6",
                 "--requests", "300", "--lengths", "long-tailed", "--ci", "10%", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    p = data["precision"]
    assert p["met"] and p["replications"] >= 3 and p["target"] == 0.1
    iv = p["intervals"]["tbt_p99_ms"]
    assert iv["half_width"] <= 0.1 * iv["value"] and data["tbt_ms"]["p99"] == iv["value"]
    assert main(["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--rate", "6",
                 "--requests", "300", "--ci", "10%"]) == 0
    assert "95% interval a repeat with fresh seeds falls in" in capsys.readouterr().out


def test_cli_stack_takes_a_serving_systems_settings(capsys):
    args = ["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--rate", "4", "--requests", "200",
            "--json"]
    assert main(args + ["--stack", "vllm --num-scheduler-steps 10"]) == 0
    multi = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    single = json.loads(capsys.readouterr().out)
    assert multi["policy"] == single["policy"] == "continuous"
    assert multi["ttft_ms"]["p50"] > single["ttft_ms"]["p50"]     # new prompts wait for the 10-step block
    assert main(args + ["--stack", "tensorrt-llm (trtllm-bench)"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "chunked"


def test_cli_concurrency_runs_a_closed_loop_and_refuses_a_rate_beside_it(capsys):
    args = ["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--requests", "300",
            "--input-len", "200", "--output-len", "100"]
    assert main(args + ["--concurrency", "8", "--json"]) == 0
    loop = json.loads(capsys.readouterr().out)
    assert loop["clients"] == 8 and loop["peak_in_service"] == 8
    assert loop["mean_in_system"] == pytest.approx(8, rel=0.02)           # Little's law: 8 always outstanding
    assert main(args + ["--concurrency", "8"]) == 0
    assert "from 8 clients, one request each at a time" in capsys.readouterr().out
    assert main(args + ["--concurrency", "8", "--rate", "2"]) == 2
    assert "--rate=2.0" in capsys.readouterr().err
