"""Serving rows in `ador validate`: the shipped data, the schema detection, the predictions."""
import csv
import dataclasses
import json
import math

import pytest

from ador.cli import main
from ador.serving.stacks import benchmark_requests
from ador.errors import ConfigError
from ador.validation.serving import (
    DEFAULT_DATA, lengths_for, load_serving, summarise_serving, validate_serving,
)
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "validation" / "serving.csv"
HEADER = ("id,source,software,hardware,devices,model,precision,tp,policy,rate_rps,input_mean,output_mean,"
          "input_max,output_max,metric,value,unit\n")
ROW = ("x1,src,tensorrt-llm 0.14.0 (trtllm-bench),a100-sxm-80gb,1,llama-3.1-8b,fp16,1,offline,,128,128,128,128,"
       "output_tok_s,6701.8,tok/s\n")


def test_shipped_rows_are_sourced_and_hold_nothing_reserved():
    rows = load_serving()
    assert len(rows) >= 600 and len({r.source for r in rows}) >= 6
    for r in rows:
        assert r.source and r.software
        assert "mlperf" not in (r.source + r.software).lower()
        overview_014_or_10 = "e00d4e65" in r.source or "00f37686" in r.source
        assert not (overview_014_or_10 and r.hardware.startswith("h200")), r.id
        assert "0.9.0" not in r.software, r.id
    if SHARED.exists():                       # the public rows are shipped unchanged
        shipped = {r.id: r for r in rows}
        for pub in load_serving(SHARED):
            assert shipped[pub.id].value == pub.value and shipped[pub.id].metric == pub.metric


def test_length_rules():
    assert lengths_for(467, None).kind == "fixed" and lengths_for(128, 128).kind == "fixed"
    sharegpt = lengths_for(226.09, 1024)
    assert sharegpt.kind == "truncated-lognormal" and sharegpt.maximum == 1024
    uniform = lengths_for(508.7, 1024, "uniform")
    assert (uniform.kind, uniform.minimum, uniform.maximum) == ("uniform", 1, 1024)


@pytest.mark.parametrize("text, needle", [
    (HEADER.replace("policy,", "") + ROW, "missing columns: policy"),
    (HEADER + ROW.replace("offline", "batch"), "policy='batch'"),
    (HEADER + ROW.replace(",offline,", ",closed,"), "concurrency=''"),      # a closed loop needs its clients
    (HEADER + ROW.replace("6701.8", "nan"), "value='nan'"),
    (HEADER + ROW + ROW, "id='x1': appears twice"),
    (HEADER.replace("unit\n", "unit,length_dist\n") + ROW.replace("tok/s\n", "tok/s,gaussian\n"),
     "length_dist='gaussian'"),
])
def test_bad_serving_files_are_refused_with_the_field_named(tmp_path, text, needle):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_serving(path)


def test_validate_detects_the_serving_schema_and_gives_the_summary_shape(tmp_path, capsys):
    rows = {r["id"]: r for r in csv.DictReader(DEFAULT_DATA.open())}
    path = tmp_path / "serving.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows["s001"]))
        w.writeheader()
        for key in ("s025", "s026", "s027", "s051", "v116", "v117"):
            w.writerow(rows[key])
    assert main(["validate", "--data", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    s = report["summary"]
    for key in ("mape_pct", "by_metric", "by_hardware", "by_source", "by_software", "n", "n_skipped",
                "n_extrapolated", "mape_source_balanced_pct", "by_family"):
        assert key in s
    # SGLang has no fitted profile, and TensorRT-LLM's was fitted on releases 0.5-0.9, not 0.14
    assert s["n"] == 6 and s["n_skipped"] == 0 and s["n_extrapolated"] == 6
    assert set(s["by_metric"]) == {"ttft_mean_ms", "tpot_mean_ms", "output_tok_s", "requests_per_s"}
    assert all(math.isfinite(r["predicted"]) and r["predicted"] > 0 for r in report["rows"])
    png, doc = tmp_path / "v.png", tmp_path / "serving.md"
    assert main(["validate", "--data", str(path), "--plot", str(png), "--update-doc", str(doc)]) == 0
    # a file other than the shipped one has a section of its own, named by its path
    assert png.stat().st_size > 10_000 and f"ador validate --data {path} --update-doc" in doc.read_text()
    assert "MAPE" in capsys.readouterr().out


def test_a_packaged_serving_file_keeps_one_section_however_it_is_named(tmp_path, monkeypatch):
    """A file shipped with ador keys its generated section by its name, whether the command names it
    bare or by its path (named by path, it used to append a second copy of the section)."""
    import ador.validation.data as measured_data
    package = tmp_path / "package"
    package.mkdir()
    monkeypatch.setattr(measured_data, "DEFAULT_DATA", package / "measured.csv")   # where shipped files live
    rows = {r["id"]: r for r in csv.DictReader(DEFAULT_DATA.open())}
    with (package / "tiny.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows["s001"]))
        w.writeheader()
        w.writerow(rows["s025"])
    doc = tmp_path / "serving.md"
    monkeypatch.chdir(tmp_path)
    for named in ("tiny.csv", str(package / "tiny.csv"), "package/tiny.csv"):
        assert main(["validate", "--data", named, "--update-doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.count("<!-- BEGIN GENERATED") == 1 and "ador validate --data tiny.csv --update-doc" in text


def test_rows_of_one_benchmark_run_share_one_simulation():
    rows = [r for r in load_serving() if r.id in ("s025", "s026", "s027")]
    report = validate_serving(rows)
    assert {r.row.metric for r in report.rows} == {"ttft_mean_ms", "tpot_mean_ms", "output_tok_s"}
    low_load = {r.row.metric: r for r in report.rows}
    # at 2 req/s the 8B model on an H100 serves what arrives: 2 x 256 output tokens per second
    assert low_load["output_tok_s"].predicted == pytest.approx(2 * 256, rel=0.1)


def test_a_replicated_row_carries_its_seeds_range_and_an_unsettled_one_is_listed_in_the_reports():
    report = validate_serving([r for r in load_serving() if r.id in ("s025", "s026", "s027")])
    for r in report.rows:                     # Poisson arrivals: replicated over seeds 0, 1, ...
        lo, hi = r.seed_range
        assert r.replications >= 2 and lo <= r.predicted <= hi and 0 <= r.interval < 0.10
    from ador.validation.serving_report import markdown_section, text_table
    rows = [r.to_dict() for r in report.rows]
    chaotic = {**rows[0], "id": "x1", "interval_pct": 97.0, "seed_range": [530.0, 11266.0], "replications": 8}
    full = {"rows": rows + [chaotic], "summary": summarise_serving(report.rows)}
    section = markdown_section(full, None)
    assert "cannot pin down" in section and "1 of 4" in section
    assert "| x1 |" in section and "530 to 1.127e+04 over 8" in section and "±97%" in section
    assert not any(f"| {r['id']} | " in section.split("cannot pin down")[1].split("<details>")[0] for r in rows)
    assert "x1 " + chaotic["metric"] + " 530 to 1.127e+04 over 8 seeds (±97%)" in text_table(full, 3)


@pytest.mark.slow
def test_a_sample_of_every_source_is_predicted_within_the_documented_error():
    """Every 8th row (84 rows, every source): the simulator's error stays where docs/serving.md says."""
    rows = load_serving()[::8]
    s = summarise_serving(validate_serving(rows).rows)
    assert s["n_skipped"] == 0 and s["n_sources"] >= 6
    assert s["mape_pct"] < 20


def test_rows_that_do_not_state_a_request_count_get_the_count_their_benchmark_sends():
    assert benchmark_requests("tensorrt-llm 0.14.0 (Triton tensorrtllm_backend)", 467, 256) == 500
    assert benchmark_requests("tensorrt-llm 0.14.0 (trtllm-bench; TRT engine)", 128, 128) == 30000
    assert benchmark_requests("tensorrt-llm 1.0 (trtllm-bench; PyTorch backend)", 2048, 2048) == 1500
    assert benchmark_requests("tensorrt-llm 1.0 (trtllm-bench)", 300, 300) == 1000       # not in its table
    assert benchmark_requests("vllm 0.6.0", 467, 256) == benchmark_requests("sglang 0.3.0", 1, 1) == 1000


def test_the_public_files_schema_predicts_an_overloaded_run_as_its_benchmark_ran_it():
    """The public serving file has no `requests` column: an overloaded Triton run (32 req/s on
    4 x H100, 500 requests in the source) is replayed with 500 requests, as the shipped copy that
    states them is; 1,000 would double the queue's growth and the predicted TTFT with it."""
    stated = [r for r in load_serving() if r.id in ("s010", "s011", "s012")]
    unstated = [dataclasses.replace(r, requests=None) for r in stated]
    assert {r.requests for r in stated} == {500}
    for a, b in zip(validate_serving(stated).rows, validate_serving(unstated).rows):
        assert a.predicted == pytest.approx(b.predicted, rel=1e-9), a.row.metric


@pytest.mark.skipif(not SHARED.exists(), reason="the public validation folder is not beside this checkout")
def test_the_public_serving_file_read_in_its_own_schema_scores_what_the_docs_say():
    """The public file has no `requests` column: every row's run is replayed from what the file says
    (the stack's benchmark decides the request count). docs/serving.md quotes the figure; a
    regression beyond 2 points fails."""
    s = summarise_serving(validate_serving(load_serving(SHARED)).rows)
    text = (REPO / "docs" / "serving.md").read_text()
    section = text.split("ador validate --data ../shared/validation/serving.csv --update-doc -->", 1)[1]
    quoted = float(section.split("**MAPE ", 1)[1].split("%", 1)[0])
    assert s["n"] == 46 and s["n_skipped"] == 0
    assert s["mape_pct"] == pytest.approx(quoted, abs=0.005)
    assert s["mape_pct"] <= quoted + 2.0


def test_the_closed_loop_nim_rows_are_held_out_and_quoted_at_the_models_figure():
    """ador/data/serving-nim-closed.csv: NIM on H100 at 2-250 clients, never in the shipped serving
    rows; docs/serving.md quotes the figure the simulator gives today."""
    rows = load_serving(DEFAULT_DATA.parent / "serving-nim-closed.csv")
    assert len(rows) == 567 and {r.policy for r in rows} == {"closed"}
    assert all(r.concurrency and r.concurrency >= 2 for r in rows)
    assert not {r.source for r in rows} & {r.source for r in load_serving()}
    s = summarise_serving(validate_serving(rows).rows)
    assert s["n_skipped"] == 0 and s["n_extrapolated"] == 567
    text = (REPO / "docs" / "serving.md").read_text()
    section = text.split("ador validate --data serving-nim-closed.csv --update-doc -->", 1)[1]
    assert float(section.split("**MAPE ", 1)[1].split("%", 1)[0]) == pytest.approx(s["mape_pct"], abs=0.005)


def test_the_p99_rows_are_held_out_and_quoted_at_the_models_figure():
    """ador/data/serving-p99.csv: published p99 TTFT/TPOT with the means of the same runs, from four
    publishers, never in the shipped serving rows or the fit; docs/serving.md quotes the figures the
    simulator gives today, the p99 family included."""
    rows = load_serving(DEFAULT_DATA.parent / "serving-p99.csv")
    assert len(rows) == 656
    p99 = [r for r in rows if "_p99_" in r.metric]
    assert len(p99) == 176
    publishers = {r.source.split("/blob/")[0] for r in p99}
    assert len(publishers) == 4
    assert not {r.source for r in rows} & {r.source for r in load_serving()}
    s = summarise_serving(validate_serving(rows).rows)
    assert s["n_skipped"] == 0                 # the A100's FP8 checkpoints run weight-only (fp8-wo)
    assert {r.precision for r in rows if r.hardware == "a100-sxm-80gb"} == {"bf16", "fp8-wo"}
    text = (REPO / "docs" / "serving.md").read_text()
    section = text.split("ador validate --data serving-p99.csv --update-doc -->", 1)[1].split("END GENERATED", 1)[0]
    assert float(section.split("**MAPE ", 1)[1].split("%", 1)[0]) == pytest.approx(s["mape_pct"], abs=0.005)
    row = section.split("\n| p99 | ", 1)[1].split("\n", 1)[0]         # "136 | 51.4% |"
    quoted_p99 = float(row.split("|")[1].strip().rstrip("%"))
    assert quoted_p99 == pytest.approx(s["by_family"]["p99"], abs=0.05)


def test_a_closed_loop_counts_its_warm_up_unless_its_client_reports_a_steady_window():
    """benchmark_serving.py with --max-concurrency sends its first N requests at once into an empty
    server and reports every request; GenAI-Perf reports a steady window of the running load."""
    from ador.serving.stacks import measures_stable_window
    from ador.validation.serving import ServingMeasurement, simulate_row
    assert measures_stable_window("NVIDIA NIM (TRT-LLM backend); GenAI-Perf closed loop")
    assert not measures_stable_window("vLLM 0.10.2 (client benchmark_serving.py --max-concurrency 64)")
    row = ServingMeasurement("x", "src", "vllm 0.10.2 (vllm serve; client benchmark_serving.py --max-concurrency 64)",
                             "h100-sxm-80gb", 1, "llama-3.1-8b", "fp16", 1, "closed", None, 1024, 256, None, None,
                             "ttft_mean_ms", 1.0, "ms", requests=640, concurrency=64)
    steady = dataclasses.replace(row, software=row.software + "; GenAI-Perf")
    every, window = simulate_row(row, ("ttft_mean_ms",)), simulate_row(steady, ("ttft_mean_ms",))
    # the first 64 prompts (65,536 tokens) queue behind one another's prefills: the mean carries them
    assert every["ttft_mean_ms"] > 1.25 * window["ttft_mean_ms"]


def _quoted(text: str, after: str) -> str:
    return " ".join(text.split(after, 1)[1].split("\n\n", 1)[0].split())


def test_the_inferencex_rows_are_held_out_and_quoted_at_the_models_figure():
    """ador/data/serving-inferencex.csv: one benchmark's runs on B200 (the first measurements of the
    preset), H200, H100 and MI300X; the docs quote the simulator's figures and its ratios between GPUs
    (one simulation of the file, one to three minutes, serves both)."""
    import statistics
    from ador.validation import ratios
    rows = load_serving(DEFAULT_DATA.parent / "serving-inferencex.csv")
    report = validate_serving(rows)
    assert len(rows) == 2295
    counts = {hw: sum(r.hardware == hw for r in rows) for hw in {r.hardware for r in rows}}
    assert counts == {"b200-sxm-192gb": 825, "h200-sxm-141gb": 825, "h100-sxm-80gb": 270, "mi300x-192gb": 375}
    assert {r.policy for r in rows} == {"closed"} and all(r.requests == 10 * r.concurrency for r in rows)
    assert not {r.source for r in rows} & {r.source for r in load_serving()}
    s = summarise_serving(report.rows)
    assert s["n_skipped"] == 0
    text = (REPO / "docs" / "serving.md").read_text()
    section = text.split("ador validate --data serving-inferencex.csv --update-doc -->", 1)[1].split(
        "END GENERATED", 1)[0]
    assert float(section.split("**MAPE ", 1)[1].split("%", 1)[0]) == pytest.approx(s["mape_pct"], abs=0.005)
    figures = (REPO / "docs" / "validation.md").read_text().split("| SemiAnalysis InferenceX serving runs", 1)[1]
    assert f"| **{s['mape_pct']:.2f}%** |" in figures.split("\n", 1)[0]

    def mean_abs(hw: str, stack: str, metric: str, one_gpu: bool) -> str:
        errors = [abs(r.error_pct) for r in report.rows if r.row.hardware == hw and (r.row.tp == 1) == one_gpu
                  and r.row.metric == metric and r.row.software.startswith(stack)]
        return f"{statistics.fmean(errors):.1f}%"
    b200 = _quoted(text, "What it says about the B200.")
    for stack, tpot, out in (("vLLM", "8.8%", "10.6%"), ("TensorRT-LLM", "2.5%", "2.4%")):
        assert mean_abs("b200-sxm-192gb", stack, "tpot_mean_ms", True) == tpot and tpot in b200
        assert mean_abs("b200-sxm-192gb", stack, "output_tok_s", True) == out and out in b200
    others = _quoted(text, "The other GPUs.")
    for figure in (mean_abs("h200-sxm-141gb", "vLLM", "tpot_mean_ms", True),
                   mean_abs("h200-sxm-141gb", "TensorRT-LLM", "tpot_mean_ms", True),
                   mean_abs("h100-sxm-80gb", "vLLM", "tpot_mean_ms", False),
                   mean_abs("mi300x-192gb", "vLLM", "tpot_mean_ms", True),
                   mean_abs("mi300x-192gb", "vLLM", "tpot_mean_ms", False)):
        assert figure in others

    lines = ratios.summary(report.rows)
    generated = text.split(ratios.DOC_COMMAND + " -->", 1)[1].split("<!-- END GENERATED -->", 1)[0]
    assert generated.strip() == ratios.table(lines).strip()

    def tpot(gpu: str, base: str) -> dict:
        return next(x for x in lines if (x["gpu"], x["base"]) == (gpu, base) and x["family"].startswith("TPOT"))
    b200_h200, h200_h100 = tpot("b200-sxm-192gb", "h200-sxm-141gb"), tpot("h200-sxm-141gb", "h100-sxm-80gb")
    assert b200_h200["n"] == 396 and b200_h200["mape_pct"] < 7.0     # "within 7% on average" (the docs)
    quoted = (REPO / "docs" / "validation.md").read_text()
    row = quoted.split("| ratios between GPUs in time per output token", 1)[1].split("\n", 1)[0]
    assert f"**{b200_h200['mape_pct']:.1f}%**, **{h200_h100['mape_pct']:.1f}%**" in row


def test_a_ratio_error_cancels_what_both_gpus_share_and_not_what_differs():
    from types import SimpleNamespace as NS
    from ador.validation import ratios
    from ador.validation.serving import ServingMeasurement

    def result(hw, value, predicted, software="vLLM 0.10.2 (image a)", clients=4):
        row = ServingMeasurement("x", "src", software, hw, 1, "llama-3.1-70b", "fp8", 1, "closed", None, 921.5, 921.5,
                                 1024, 1024, "tpot_mean_ms", value, "ms", requests=10 * clients,
                                 length_dist="uniform", concurrency=clients)
        return NS(row=row, predicted=predicted)
    b, h = "b200-sxm-192gb", "h200-sxm-141gb"
    both_slow = [result(b, 10.0, 12.0), result(h, 20.0, 24.0)]              # an error both share cancels
    assert ratios.pair_errors(both_slow, b, h) == {"tpot_mean_ms": [(0.5, 0.5)]}
    # the H200's 8-client run, priced as slow as the B200's 4-client one, has no B200 run to pair with
    one_slow = [result(b, 10.0, 12.0), result(h, 20.0, 20.0), result(h, 40.0, 48.0, clients=8)]
    (measured, predicted), = ratios.pair_errors(one_slow, b, h)["tpot_mean_ms"]
    assert ratios.ratio_error_pct(measured, predicted) == pytest.approx(20.0)
    other_build = [result(b, 10.0, 10.0), result(h, 20.0, 20.0, software="vLLM 0.10.1 ROCm (image b)")]
    assert ratios.pair_errors(other_build, b, h)                              # each GPU runs its vendor's build
    other_stack = [result(b, 10.0, 10.0), result(h, 20.0, 20.0, software="TensorRT-LLM 1.1 (x)")]
    assert not ratios.pair_errors(other_stack, b, h)
    # Poisson runs pair only at the same rate: the H200's run at 4 req/s has no B200 twin
    at = [dataclasses.replace(x.row, policy="server", rate_rps=rate, concurrency=None)
          for x, rate in zip(one_slow[:2] + [result(h, 40.0, 48.0)], (2.0, 2.0, 4.0))]
    served = [NS(row=row, predicted=x.predicted) for row, x in zip(at, one_slow[:2] + [result(h, 40.0, 48.0)])]
    (measured, predicted), = ratios.pair_errors(served, b, h)["tpot_mean_ms"]
    assert ratios.ratio_error_pct(measured, predicted) == pytest.approx(20.0)


def test_validate_reports_ratios_where_two_gpus_ran_the_same_runs(tmp_path, capsys):
    """`ador validate` on a serving file where an H200 and an H100 ran the same runs prints (and, with
    --json, returns) the measured and predicted ratios between them; a file of one GPU has none."""
    text = HEADER.rstrip("\n") + "\n"
    for hw, value in (("h200-sxm-141gb", 9000.0), ("h100-sxm-80gb", 7000.0)):
        text += (f"r{hw[:4]},src,vllm 0.10.2 (vllm serve),{hw},1,llama-3.1-8b,fp16,1,offline,,128,128,128,128,"
                 f"output_tok_s,{value},tok/s\n")
    path = tmp_path / "two.csv"
    path.write_text(text)
    assert main(["validate", "--data", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (line,) = report["ratios"]
    assert (line["gpu"], line["base"], line["n"]) == ("h200-sxm-141gb", "h100-sxm-80gb", 1)
    assert line["measured_ratio"] == pytest.approx(9000 / 7000)
    predicted = {r["hardware"]: r["predicted"] for r in report["rows"]}
    assert line["predicted_ratio"] == pytest.approx(predicted["h200-sxm-141gb"] / predicted["h100-sxm-80gb"])
    assert main(["validate", "--data", str(path)]) == 0
    assert "ratios between GPUs" in capsys.readouterr().out
    one = tmp_path / "one.csv"
    one.write_text(text.rsplit("\n", 2)[0] + "\n")
    assert main(["validate", "--data", str(one), "--json"]) == 0
    assert "ratios" not in json.loads(capsys.readouterr().out)


TRACE_ROW = ("t1,src,vllm 0.5.4,h100-sxm-80gb,1,mistral-7b,bf16,1,{policy},{rate},{inp},{out},1024,2044,"
             "tpot_p99_ms,300,ms,{requests},,,{trace}\n")
TRACE_HEADER = HEADER.replace("unit\n", "unit,requests,length_dist,prefix_cached,trace\n")
# a ShareGPT-like mix: short answers beside long ones (its means are 190.5 and 167.875)
TRACE = [(14, 129), (375, 1), (487, 10), (30, 854), (5, 8), (236, 57), (494, 95), (883, 189)]


def _trace_csv(tmp_path, lengths=TRACE, arrival="0"):
    (tmp_path / "traces").mkdir(exist_ok=True)
    text = "arrival_s,prompt_len,output_len\n" + "".join(f"{arrival},{p},{o}\n" for p, o in lengths)
    (tmp_path / "traces" / "t.csv").write_text(text)
    return "traces/t.csv"


def test_a_row_with_a_trace_replays_the_published_lengths_in_the_order_sent(tmp_path, spy_simulate):
    """Offline: one deterministic run of exactly the trace's requests, all at once, in its order;
    server: Poisson arrivals at the row's rate with the trace's lengths in order."""
    import numpy as np
    import ador.validation.serving as vs
    trace = _trace_csv(tmp_path)
    inp, out = 190.5, 167.875
    calls = spy_simulate(vs)
    (tmp_path / "s.csv").write_text(TRACE_HEADER + TRACE_ROW.format(policy="offline", rate="", inp=inp, out=out,
                                                                    requests="", trace=trace))
    row = load_serving(tmp_path / "s.csv")[0]
    got = vs.row_predictions(row, ("tpot_p99_ms", "output_tok_s"))
    sent = [reqs for reqs, _ in calls]
    assert len(sent) == 1 and got["tpot_p99_ms"].replications == 1          # deterministic: one run
    assert list(zip(sent[0].prompt_len, sent[0].output_len)) == TRACE and not sent[0].arrival_s.any()
    # the same means without the trace: sampled lengths, another answer
    plain = dataclasses.replace(row, trace="")
    assert vs.row_predictions(plain, ("output_tok_s",))["output_tok_s"].value != got["output_tok_s"].value
    calls.clear()
    (tmp_path / "s.csv").write_text(TRACE_HEADER + TRACE_ROW.format(policy="server", rate=2, inp=inp, out=out,
                                                                    requests=8, trace=trace))
    vs.row_predictions(load_serving(tmp_path / "s.csv")[0], ("tpot_p99_ms",))
    sent = [reqs for reqs, _ in calls]
    assert len(sent) >= 2
    for reqs in sent:
        assert list(zip(reqs.prompt_len, reqs.output_len)) == TRACE
        assert reqs.arrival_s[-1] > 0 and np.all(np.diff(reqs.arrival_s) >= 0)
    assert not np.array_equal(sent[0].arrival_s, sent[1].arrival_s)            # seeds draw the arrivals


@pytest.mark.parametrize("arrival, lengths, requests, needle", [
    ("0.5", TRACE, "", "every arrival_s must be 0"),
    ("0", TRACE, "9", "requests=9: the trace traces/t.csv holds 8 requests"),
    ("0", [(14, 129), (0, 3)], "", r"s.csv:2:trace:t.csv:3:prompt_len='0': must be a whole number"),
    (None, TRACE, "", "s.csv:2:trace='.*missing.csv': no such file"),
])
def test_a_bad_trace_is_refused_with_the_row_and_field_named(tmp_path, arrival, lengths, requests, needle):
    trace = _trace_csv(tmp_path, lengths, arrival) if arrival is not None else "traces/missing.csv"
    (tmp_path / "s.csv").write_text(TRACE_HEADER + TRACE_ROW.format(policy="offline", rate="", inp=190.5,
                                                                    out=167.875, requests=requests, trace=trace))
    with pytest.raises(ConfigError, match=needle):
        load_serving(tmp_path / "s.csv")


def test_the_shipped_traces_are_the_lengths_their_rows_state():
    """Every row with a trace: the trace's mean lengths are the row's means (the published totals
    over the requests; a request the client saw no text of ran one token, its EOS)."""
    from ador.validation.serving import _trace_lengths
    rows = [r for path in sorted(DEFAULT_DATA.parent.glob("serving*.csv")) for r in load_serving(path) if r.trace]
    assert len(rows) >= 30
    for r in rows:
        t = _trace_lengths(r.trace)
        assert abs(t.prompt_len.mean() - r.input_mean) < 0.05, r.id
        zeros_as_one = (t.output_len == 1).sum()
        assert abs((t.output_len.sum() - zeros_as_one) / len(t) - r.output_mean) < 0.07, r.id


def test_a_closed_loop_row_replays_its_trace_and_the_trace_is_part_of_its_run(tmp_path, spy_simulate):
    import ador.validation.serving as vs
    trace = _trace_csv(tmp_path)
    sent = spy_simulate(vs)
    head = TRACE_HEADER.replace(",trace\n", ",trace,concurrency\n")
    row = TRACE_ROW.format(policy="closed", rate="", inp=190.5, out=167.875, requests="", trace=trace)
    (tmp_path / "s.csv").write_text(head + row.replace("\n", ",2\n"))
    closed = load_serving(tmp_path / "s.csv")[0]
    vs.row_predictions(closed, ("tpot_p99_ms",))
    (reqs, clients), = sent
    assert clients == 2 and list(zip(reqs.prompt_len, reqs.output_len)) == TRACE
    # one run: rows sharing everything but the trace are two runs, simulated apart
    other = dataclasses.replace(closed, id="t2", trace="")
    assert closed.workload() != other.workload()


def test_a_trace_is_read_once_and_again_when_it_changes(tmp_path):
    from ador.validation.serving import _read_trace, _trace_lengths
    path = str(tmp_path / _trace_csv(tmp_path))
    _read_trace.cache_clear()
    for _ in range(3):
        assert list(_trace_lengths(path, "a:trace").output_len) == [o for _, o in TRACE]
    assert _read_trace.cache_info().hits == 2
    import os
    _trace_csv(tmp_path, [(p, o + 1) for p, o in TRACE])
    os.utime(path, ns=(1, 1))                   # a rewrite within the clock's resolution is told apart too
    assert list(_trace_lengths(path, "a:trace").output_len) == [o + 1 for _, o in TRACE]


@pytest.mark.parametrize("make, needle", [
    (lambda d: (d / "traces").mkdir(), "is a directory"),
    (lambda d: ((d / "traces").mkdir(),
                (d / "traces" / "t.csv").write_bytes(b"arrival_s,prompt_len,output_len\n0,\xff,1\n")), "not UTF-8"),
    (lambda d: ((d / "traces").mkdir(), (d / "traces" / "t.csv").write_text("arrival_s,prompt_len,output_len\n")),
     "has no requests"),
])
def test_an_unreadable_trace_is_refused_with_the_row_named(tmp_path, make, needle):
    make(tmp_path)
    trace = "traces" if needle == "is a directory" else "traces/t.csv"
    (tmp_path / "s.csv").write_text(TRACE_HEADER + TRACE_ROW.format(policy="offline", rate="", inp=190.5,
                                                                    out=167.875, requests="", trace=trace))
    with pytest.raises(ConfigError, match=f"s.csv:2:trace=.*{needle}"):
        load_serving(tmp_path / "s.csv")


def test_a_trace_with_a_nul_byte_or_a_length_distribution_is_refused_in_one_line(tmp_path):
    row = TRACE_ROW.format(policy="offline", rate="", inp=190.5, out=167.875, requests="", trace="t\0.csv")
    (tmp_path / "s.csv").write_text(TRACE_HEADER + row)
    with pytest.raises(ConfigError, match="s.csv:2:trace="):
        load_serving(tmp_path / "s.csv")
    trace = _trace_csv(tmp_path)
    row = TRACE_ROW.format(policy="offline", rate="", inp=190.5, out=167.875, requests="", trace=trace)
    (tmp_path / "s.csv").write_text(TRACE_HEADER + row.replace(",,,traces", ",lognormal,,traces"))
    with pytest.raises(ConfigError, match="s.csv:2:length_dist='lognormal': a row with a trace"):
        load_serving(tmp_path / "s.csv")
