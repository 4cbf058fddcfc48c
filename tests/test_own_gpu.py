"""Our own H100/H200 measurements (ador/data/measured-own-gpu.csv): held out from every fit, predicted
whole, and quoted in docs/validation.md at the current model's figure."""
import dataclasses
import re

import pytest

from ador.hardware.runtime import get_runtime
from ador.validation.data import DEFAULT_DATA, load_measurements
from ador.validation.predict import predict, validate
from tests.conftest import REPO

OWN = DEFAULT_DATA.parent / "measured-own-gpu.csv"


def own_summary() -> dict:
    return validate(load_measurements(OWN)).summary


def test_every_own_row_is_predicted_as_an_extrapolation():
    rows = load_measurements(OWN)
    assert len(rows) == 284 and {r.hardware for r in rows} == {"h100-sxm-80gb", "h200-sxm-141gb"}
    s = own_summary()
    # their stack (plain PyTorch) has no fitted profile: the default one predicts them, and says so
    assert (s["n"], s["n_skipped"], s["n_extrapolated"]) == (284, 0, 284)


def test_own_rows_are_never_fitted_on():
    fitted = {(r.source, r.software) for r in load_measurements()}
    assert not any("own measurement" in source for source, _ in fitted)


def family_mape(marker: str) -> float:
    """MAPE of the own rows whose id holds ``marker`` (.g/.l bf16, .f FP8, .i int4)."""
    return validate([r for r in load_measurements(OWN) if marker in r.id]).summary["mape_pct"]


def test_docs_quote_the_current_own_figure():
    text = (REPO / "docs" / "validation.md").read_text()
    figure = own_summary()["mape_pct"]
    assert f"**MAPE {figure:.2f}%** over 284 rows" in text                  # the generated section
    quoted = re.search(r"our own H100 and H200 measurements \(284 rows, never fitted on\) \| \*\*([\d.]+)%", text)
    assert quoted and float(quoted.group(1)) == pytest.approx(figure, abs=0.005)
    bf16 = validate([r for r in load_measurements(OWN) if r.precision == "bf16"]).summary["mape_pct"]
    fp8, int4 = family_mape(".f"), family_mape(".i")
    assert f"The bf16 rows\nalone, the stack the public data has most of, are at {bf16:.1f}%" in text
    assert f"the 86 FP8 rows of the second\nat {fp8:.1f}% and its 72 int4 rows at {int4:.1f}%" in text
    # regression gates, each family at its documented figure + 2 points (the held-out target is 10%;
    # int4 moved 8.6% -> 16.6% with the 2026-11-28 refit's `dequant`, 0.87 -> 0.77; FP8 13.5% -> 7.7% once its
    # casts were priced as kernels; int4 17.0% -> 19.1% with the refit after XQA's first release was priced,
    # `dequant` 0.77 -> 0.75: docs/validation.md)
    assert bf16 <= 8.1 and fp8 <= 9.7 and int4 <= 21.1


def test_shard_rows_time_the_shard_without_its_collectives():
    row = next(r for r in load_measurements(OWN) if r.metric == "decode_shard_ms" and r.tp == 8)
    runtimes = {"default": get_runtime("tensorrt-llm")}
    shard = predict(row, runtimes=runtimes)
    layer = predict(dataclasses.replace(row, metric="decode_layer_ms"), runtimes=runtimes)
    assert 0 < shard < layer                  # the layer metric adds the TP all-reduces
    one = dataclasses.replace(row, tp=1, devices=1)
    assert predict(one, runtimes=runtimes) == pytest.approx(
        predict(dataclasses.replace(one, metric="decode_layer_ms"), runtimes=runtimes))   # TP 1: nothing to add


def test_gemm_files_are_the_models_operators_and_the_docs_quote_them():
    from ador.validation import gemm
    text = (REPO / "docs" / "validation.md").read_text()
    for report in gemm.shipped_reports():
        assert len(report["rows"]) == 96                      # every measured GEMM priced, none dropped
        assert f"**MAPE {report['mape_pct']:.1f}%** over 96 GEMMs" in text


def test_a_gemm_the_graph_does_not_produce_is_refused(tmp_path):
    import json

    from ador.errors import ConfigError
    from ador.validation import gemm
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps({"gpu": "x", "rows": [{"op": "ffn_up", "tp": 1, "m": 16, "n": 4096, "k": 8192,
                                                      "dtype": "bf16", "us": 10.0, "tflops": 1.0}]}))
    with pytest.raises(ConfigError, match="shape"):
        gemm.compare(bad, "h100-sxm-80gb")


def test_long_context_decode_is_priced_at_the_kernels_parallelism():
    """The 40 long-context rows: a batch-1 decode step over 128k tokens takes what an unsplit kernel's
    8 blocks can stream (53 ms measured); at HBM bandwidth it would take a fifth of that."""
    rows = [r for r in load_measurements(OWN) if ".l" in r.id]
    assert len(rows) == 40
    result = validate(rows)
    assert result.summary["mape_pct"] <= 8.0
    longest = next(r for r in result.rows if r.row.metric == "tbt_ms" and r.row.input_len == 131071
                   and r.row.hardware == "h200-sxm-141gb")
    assert longest.predicted == pytest.approx(longest.row.value, rel=0.05)


def file_figures(prefix: str) -> tuple[dict[str, float], str]:
    """MAPE of each GPU's ``{prefix}-{gpu}.json`` rows, and the text of docs/validation.md."""
    by_source = own_summary()["by_source"]
    figures = {gpu: next(v for k, v in by_source.items() if f"{prefix}-{gpu}.json" in k) for gpu in ("h100", "h200")}
    return figures, (REPO / "docs" / "validation.md").read_text()


def test_the_first_days_bf16_and_long_context_rows_are_quoted_at_their_figures():
    """The table of each GPU's files and the prose beside it quote the current model's figures."""
    by_source = own_summary()["by_source"]
    first = {gpu: next(v for k, v in by_source.items() if f"own/{gpu}.json)" in k) for gpu in ("h100", "h200")}
    long, text = file_figures("long-context")
    assert f"| MAPE, 43 rows each (2026-11-25) | {first['h100']:.1f}% | {first['h200']:.1f}% |" in text
    assert f"| MAPE, 20 long-context rows each (2026-11-26) | {long['h100']:.1f}% | {long['h200']:.1f}% |" in text
    bf16, long_all = family_mape(".g"), family_mape(".l")
    assert f"(the 86 bf16 rows of the first day at {bf16:.1f}%, the 40\nlong-context rows of the second at " \
           f"{long_all:.1f}%" in text


def test_the_fp8_rows_are_their_own_precision_and_the_docs_quote_their_figures():
    """The FP8 rows ran FP8 linear layers over a bf16 KV cache and LM head: precision fp8-kv16, one file
    per GPU; the figures the docs' FP8 section and table quote are the current model's."""
    rows = load_measurements(OWN)
    fp8 = [r for r in rows if ".f" in r.id]
    assert len(fp8) == 86 and {r.precision for r in fp8} == {"fp8-kv16"}
    assert {r.precision for r in rows if r not in fp8} == {"bf16", "int4-wo"}
    figures, text = file_figures("fp8")
    assert f"**MAPE {figures['h100']:.1f}% on the H100 and {figures['h200']:.1f}% on the H200**" in text
    assert f"| MAPE, 43 FP8 rows each (2026-11-26; \"FP8 linear layers\" below) | {figures['h100']:.1f}% | " \
           f"{figures['h200']:.1f}% |" in text


def test_the_int4_rows_are_gpt_fasts_kernel_and_the_docs_quote_their_figures():
    rows = [r for r in load_measurements(OWN) if ".i" in r.id]
    assert len(rows) == 72 and {r.precision for r in rows} == {"int4-wo"}
    assert all("_weight_int4pack_mm" in r.software for r in rows)       # the kernel fact keys on it
    figures, text = file_figures("int4")
    assert f"**MAPE {figures['h100']:.1f}% on the H100\nand {figures['h200']:.1f}% on the H200.**" in text
    assert f"| MAPE, 36 int4 rows each (2026-11-26; \"4-bit weights\" below) | {figures['h100']:.1f}% | " \
           f"{figures['h200']:.1f}% |" in text


def test_the_rerun_on_another_h200_is_quoted_at_its_measured_difference():
    """The same 43 shapes measured twice on two H200 machines a day apart; the docs quote how far apart."""
    import json
    import statistics
    own = DEFAULT_DATA.parent / "own"
    first = {r["id"]: r for r in json.loads((own / "h200.json").read_text())["rows"]}
    again = json.loads((own / "rerun-h200.json").read_text())["rows"]
    assert len(again) == 43
    diffs = []
    for r in again:
        f = first[r["id"]]
        assert (f["metric"], f["tp"], f["batch"], f["input_len"]) == (r["metric"], r["tp"], r["batch"], r["input_len"])
        diffs.append(r["median_ms"] / f["median_ms"] - 1)
    size = [abs(d) for d in diffs]
    quoted = (f"differs from the first run by {100 * statistics.median(size):.1f}% per shape\n(median; mean "
              f"{100 * statistics.mean(size):.1f}%, at most {100 * max(size):.1f}%)")
    assert quoted in (REPO / "docs" / "validation.md").read_text()
    assert f"{100 * statistics.median(size):.1f}%, mean {100 * statistics.mean(size):.1f}%, at most " \
           f"{100 * max(size):.1f}%" in (own / "README.md").read_text().replace("\n", " ")


def test_hoppers_gemm_schedule_is_the_one_its_wave_sweep_shows():
    """228 GEMMs on an H100 and on an H200 swept across wave boundaries: no partial-wave step. The
    Hopper presets place tiles stream-K; each sweep must be explained better that way than in whole
    waves, by a clear margin for every dtype (a preset switched back to whole waves fails here)."""
    from ador.validation import gemm
    text = (REPO / "docs" / "validation.md").read_text()
    for name, hardware in gemm.WAVES_FILES:
        report = gemm.waves(DEFAULT_DATA.parent / "own" / name, hardware)
        assert report["rows"] == 228 and report["shipped"] == "stream-k"
        for dtype, fit in report["fits"]["stream-k"].items():
            assert fit["mape_pct"] < 0.6 * report["fits"]["waves"][dtype]["mape_pct"]
        assert gemm.waves_table(report) in text


def test_a_stream_k_gpu_pays_no_partial_wave():
    from ador.hardware import PRESETS
    from ador.perf.gpu import tile_utilisation
    h100 = PRESETS["h100-sxm-80gb"]
    waves = dataclasses.replace(h100, gemm_schedule="waves")
    # Hopper measured, Blackwell assumed alike; the others keep whole waves (docs/validation.md)
    assert {name: gpu.gemm_schedule for name, gpu in PRESETS.items() if gpu.kind == "gpu"} == {
        "a100-sxm-80gb": "waves", "a100-sxm-40gb": "waves", "h100-sxm-80gb": "stream-k",
        "h200-sxm-141gb": "stream-k", "l40s-48gb": "waves", "mi300x-192gb": "waves", "b200-sxm-192gb": "stream-k"}
    # m 1,024 at n 2,176: 8 x 17 = 136 tiles of 128 x 128 on 132 SMs, a second wave of 4
    assert tile_utilisation(waves, 1024, 2176, 8192) == pytest.approx(136 / 264)
    assert tile_utilisation(h100, 1024, 2176, 8192) == pytest.approx(1.0)
    # padding to whole tiles stays: 100 rows fill a 128-row tile to 100/128
    assert tile_utilisation(h100, 100, 2048, 8192) == pytest.approx(100 / 128)
    # K is split no finer than 256: 8 tiles of a 512-deep GEMM make 16 chunks for 132 SMs
    assert tile_utilisation(h100, 64, 1024, 512) == pytest.approx(16 / 132)


def test_a_gpu_file_with_an_unknown_gemm_schedule_is_refused():
    from ador.errors import ConfigError
    from ador.hardware import PRESETS
    from ador.hardware.io import device_from_mapping, device_to_mapping
    data = device_to_mapping(PRESETS["h100-sxm-80gb"])
    assert data["gemm_schedule"] == "stream-k" and device_from_mapping(data) == PRESETS["h100-sxm-80gb"]
    with pytest.raises(ConfigError, match="gemm_schedule='streamk': expected one of waves, stream-k"):
        device_from_mapping({**data, "gemm_schedule": "streamk"})
    with pytest.raises(ConfigError, match="gemm_schedule='streamk'"):
        dataclasses.replace(PRESETS["h100-sxm-80gb"], gemm_schedule="streamk")


def test_prefill_attention_sweep_is_quoted_as_computed():
    """384 causal prefill attentions per Hopper GPU: the generated tables and every figure the prose
    quotes are recomputed from the files (a changed fill rule or file moves them and fails here)."""
    from ador.validation import attention
    text = (REPO / "docs" / "validation.md").read_text()
    for name, hardware in attention.ATTENTION_FILES:
        report = attention.sweep(DEFAULT_DATA.parent / "own" / name, hardware)
        assert report["rows"] == 384
        assert attention.sweep_table(report) in text
    prose = " ".join(text.split("**Prefill attention (held out", 1)[1].split("\n## ", 1)[0].split())
    f = attention.figures()
    assert f"Whole waves miss the sweeps by {f['waves_cudnn']} (cuDNN) and {f['waves_flash']}" in prose
    assert f"misses by {f['tail_cudnn']} and {f['tail_flash']}" in prose
    assert f"runs at {f['ratio_measured']} of the TFLOP/s of one with 64 heads, the fitted candidate says " \
           f"{f['ratio_tail']} and the fitted whole waves {f['ratio_waves']}" in prose
    assert f"cuDNN fits best at {f['share_cudnn']} (the candidate's) and FlashAttention-2 at {f['share_flash']}" \
        in prose and float(f["share_cudnn"]) == attention.CAUSAL_TAIL
    assert f"cuDNN's kernel at {f['eff_cudnn']} of the dense bf16 peak (the fitted tensor efficiency of GH100 is " \
           f"{f['fitted']}), PyTorch's FlashAttention-2 at {f['eff_flash']}" in prose


def test_the_causal_tail_explains_the_attention_sweep_better_but_is_not_the_model():
    """The finding the docs report, and that the model kept whole waves (a TP-8 shard of a 2,048-token
    prompt: 128 blocks, one wave of 132 SMs)."""
    from ador.hardware import PRESETS
    from ador.perf.gpu import prefill_attention_fill
    from ador.validation import attention
    for name, hardware in attention.ATTENTION_FILES:
        fits = attention.sweep(DEFAULT_DATA.parent / "own" / name, hardware)["fits"]
        for backend in ("cudnn", "flash"):
            assert fits[attention.RULES[1]][backend]["mape_pct"] < fits[attention.RULES[0]][backend]["mape_pct"] - 0.9
    h100, op = PRESETS["h100-sxm-80gb"], attention.model_op(2048, 8)
    assert prefill_attention_fill(h100, op) == pytest.approx(128 / 132)
    # a query sees 1,024 keys on average (op.n), the heaviest block's 1,024 + 2,047 / 2; the even share is
    # 128 blocks x 1,024 / 132 SMs, which with half the heaviest block as a tail is less than it alone
    assert op.n == 1024
    assert attention.causal_tail_fill(h100, op) == pytest.approx((128 * 1024 / 132) / (1024 + 2047 / 2))


def test_mixed_iterations_are_quoted_as_computed():
    """81 fused passes per Hopper GPU (benchmarks/gpu_mixed.py): the generated tables and the figures
    docs/serving.md quotes are recomputed from the files and the model."""
    from ador.validation import mixed
    text = (REPO / "docs" / "serving.md").read_text()
    reports = mixed.shipped_reports()
    for report in reports:
        assert len(report["rows"]) == 81 and report["fused_over_apart"]["n"] == 54
        assert mixed.table(report) in text
    prose = " ".join(text.split())
    f = mixed.figures()
    assert f"on the two GPUs a fused pass costs {f['fused_measured']} of the decodes and the prompt run apart, and " \
           f"the model says {f['fused_model']}; the mixed passes are priced with a mean absolute error of " \
           f"{f['mixed_mape']}% (mean signed error {f['mixed_bias']})" in prose
    assert f"it prices plain PyTorch's pass {f['under_mixed']}% slow, and the prompt alone {f['under_prompt']}% slow " \
           f"(the decodes alone {f['under_decodes']})" in prose


def test_a_mixed_pass_is_priced_as_the_simulator_prices_its_iteration():
    """The layer the sweep is judged by is the simulator's iteration: its per-layer operators for 256
    decodes and a 512-token prompt are the fused iteration's (one GEMM per projection over 768 rows)."""
    from ador.validation import mixed
    from ador.validation.predict import layer_ops
    from ador.workload import get_model, get_precision
    from ador.workload.graph import PrefillChunk, build_iteration
    model = get_model("llama-3-70b")
    ops = layer_ops(model, build_iteration(model, get_precision("bf16"), 4, prefill=(PrefillChunk(1, 512, 0),),
                                           decode_batch=256, decode_kv_len=512), collectives=False)
    assert {op.m for op in ops if op.kind == "gemm"} == {768}
    assert sorted(op.m for op in ops if op.kind == "attention") == [1, 512]
    both = mixed.model_ms("h100-sxm-80gb", "llama-3-70b", 4, 256, 512, 512)
    apart = mixed.model_ms("h100-sxm-80gb", "llama-3-70b", 4, 256, 512, 0) + \
        mixed.model_ms("h100-sxm-80gb", "llama-3-70b", 4, 0, 0, 512)
    assert 0.5 * apart < both < apart          # one pass over the weights instead of two
