"""Rows timed operator by operator from the host (ador.validation.harness): each operator pays the
harness's round trips instead of a serving stack's per-kernel cost, and nothing else changes."""
from dataclasses import replace
from types import SimpleNamespace

import pytest

from ador.errors import ConfigError
from ador.hardware import PRESETS
from ador.hardware.runtime import runtime_profiles
from ador.validation.data import SOFTWARE_OF_SOURCE, load_measurements
from ador.validation.harness import LLMCOMPASS, harness_of, host_timed_terms
from ador.validation.compiled import CompiledRows
from ador.validation.predict import layer_ops, predict, profile_for, validate
from ador.workload import decode_step, get_model, get_precision

ROWS = {r.id: r for r in load_measurements()}
LAYER_ROWS = [ROWS["p096"], ROWS["p097"]]       # LLMCompass's A100 prefill and decode layers


def test_the_llmcompass_rows_name_their_harness():
    assert all(harness_of(r.software) is LLMCOMPASS for r in LAYER_ROWS)
    assert harness_of(SOFTWARE_OF_SOURCE["LLMCOMPASS_A100"]) is LLMCOMPASS      # files without a software column
    assert harness_of("pytorch") is None and harness_of("tensorrt-llm 0.9.0") is None
    assert harness_of("pytorch (llmcompass RUN_ON_GPU)") is None       # named exactly, as kernel facts are


@pytest.mark.parametrize("row", LAYER_ROWS, ids=lambda r: r.id)
def test_each_timed_operator_pays_the_harness_round_trips_instead_of_a_kernel_cost(row):
    """The harness's calls per layer of GPT-3's block (its run_on_gpu): LayerNorm twice (45 us), the
    Q, K and V projections as three GEMMs, two bmm and a softmax for attention, three more GEMMs
    (21 us each), GeLU (45 us): 315 us, in place of 8 kernels' fixed cost; the all-reduces as priced."""
    plain = replace(row, software="pytorch")
    runtime, _ = profile_for(row, runtime_profiles())
    kernel_s = runtime.op_overhead_s(PRESETS[row.hardware].freq_hz)
    assert 0 < kernel_s < 2e-5
    expected_ms = (3 * 21 + (21 + 12 + 21) + 21 + 21 + 21 + 45 + 45 + 45 - 8 * kernel_s * 1e6) * 1e-3
    assert predict(row) - predict(plain) == pytest.approx(expected_ms, rel=1e-9)


def test_both_layers_are_within_ten_percent_of_the_published_sums():
    """LLMCompass's decode layer (1.111 ms) is the sum of its 12 published operator times; priced as a
    serving stack's layer the model was 30% short, as the harness times it within 10% (the issue's
    bound for every metric), as is the prefill layer."""
    report = validate(LAYER_ROWS)
    errors = {r.row.id: r.error_pct for r in report.rows}
    assert abs(errors["p097"]) < 10 and abs(errors["p096"]) < 10
    assert predict(replace(ROWS["p097"], software="pytorch")) < 0.8 * ROWS["p097"].value


@pytest.mark.parametrize("change, field", [
    (dict(metric="tbt_ms"), "metric='tbt_ms'"),
    (dict(hardware="h100-sxm-80gb", devices=4), "hardware='h100-sxm-80gb'"),     # costs measured on an A100
    (dict(precision="fp8"), "precision='fp8'"),                                  # FP8 casts are kernels too
    (dict(model="llama-2-70b"), "model='llama-2-70b'"),                          # RMSNorm, SwiGLU
    (dict(model="mixtral-8x7b"), "model='mixtral-8x7b'"),                        # experts
])
def test_a_row_the_harness_facts_do_not_cover_is_refused_on_both_paths(change, field):
    row = replace(ROWS["p097"], **change)
    with pytest.raises(ConfigError, match=f"^{field}"):
        predict(row)
    compiled = CompiledRows([row])
    assert field in compiled.skipped[0]


def test_an_operator_the_harness_is_not_known_to_time_is_refused():
    moe = get_model("mixtral-8x7b")
    ops = layer_ops(moe, decode_step(moe, get_precision("bf16"), 1, 8, 1024, 1))
    with pytest.raises(ConfigError, match="software='LLMCompass run_on_gpu'.*is not one the harness"):
        host_timed_terms(LLMCOMPASS, ops)
    collective = SimpleNamespace(kind="allreduce", name="attn_allreduce", count=96)
    assert host_timed_terms(LLMCOMPASS, [collective]) == (0.0, 0.0)     # not timed by the harness
