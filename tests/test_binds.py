"""What-binds sentences and validation coverage: generated from the model's numbers, never asserted."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.explore.metrics import Workload, evaluate_design
from ador.hardware import GPUS, get_device
from ador.report import binds
from ador.validation.coverage import coverage
from ador.validation.data import load_measurements
from ador.workload import get_model, get_precision

MODEL, FP16 = get_model("llama-3-70b"), get_precision("fp16")


@settings(max_examples=15, deadline=None)
@given(batch=st.sampled_from([1, 8, 64, 128, 256]), device=st.sampled_from(["a100-sxm-80gb", "h100-sxm-80gb",
                                                                            "ador-example"]),
       input_len=st.sampled_from([128, 2048]), output_len=st.sampled_from([2, 256]))
def test_the_anatomy_is_the_quoted_step(batch, device, input_len, output_len):
    """The parts sum to the step, and the step is the one tbt_p99_ms quotes (when above the mean)."""
    dev = get_device(device)
    a = binds.decode_anatomy(dev, MODEL, FP16, tp=8, batch=batch, input_len=input_len, output_len=output_len)
    assert sum(a.ms_by_bound.values()) == pytest.approx(a.time_ms, rel=1e-9)
    m = evaluate_design(dev, MODEL, FP16, Workload(batch, input_len, output_len), tp=8, need_energy=False)
    if m["tbt_p99_ms"] > m["tbt_ms"]:
        assert a.time_ms == pytest.approx(m["tbt_p99_ms"], rel=1e-9)
    assert list(a.ms_by_bound.values()) == sorted(a.ms_by_bound.values(), reverse=True)


def _numbers(text):
    return [float(x) for x in re.findall(r"\d+\.\d+|\d+", text)]


def test_sentences_state_the_anatomy_numbers():
    a100 = binds.decode_anatomy(GPUS["a100-sxm-80gb"], MODEL, FP16, tp=8, batch=128, input_len=2048, output_len=256)
    h100 = binds.decode_anatomy(GPUS["h100-sxm-80gb"], MODEL, FP16, tp=8, batch=128, input_len=2048, output_len=256)
    text = binds.describe(a100)
    assert f"{a100.time_ms:.2f} ms" in text
    for bound in a100.ms_by_bound:
        if f"{100 * a100.share(bound):.0f}% {binds.BOUND_WORDS[bound]}" not in text:
            assert list(a100.ms_by_bound).index(bound) >= 4       # only the four largest are named
    versus = binds.compare(h100, a100)
    bounds = set(a100.ms_by_bound) | set(h100.ms_by_bound)
    gaps = {b: a100.ms_by_bound.get(b, 0) - h100.ms_by_bound.get(b, 0) for b in bounds}
    biggest = max(gaps, key=lambda b: abs(gaps[b]))
    assert binds.BOUND_WORDS[biggest] in versus
    assert f"{a100.time_ms / h100.time_ms:.2f}x" in versus
    bw = binds.bandwidth(a100)
    assert f"{a100.effective_hbm_tb_s:.2f} TB/s" in bw
    assert a100.effective_hbm_tb_s <= GPUS["a100-sxm-80gb"].hbm_bw_bytes_per_s / 1e12


def test_coverage_says_interpolated_or_extrapolated():
    rows = load_measurements()
    params_b = MODEL.active_params() / 1e9
    beyond = coverage(rows, hardware="a100-sxm-80gb", family="decode", params_b=params_b, batch=4 * 1024)
    inside = coverage(rows, hardware="a100-sxm-80gb", family="decode", params_b=params_b,
                      batch=beyond.max_batch)
    assert beyond.rows and not beyond.covered and "extrapolation" in beyond.sentence("x")
    assert f"stop at batch {beyond.max_batch}" in beyond.sentence("x")
    assert inside.covered and "interpolated" in inside.sentence("x")
    assert all(r.row.hardware == "a100-sxm-80gb" and r.row.metric in ("tbt_ms", "decode_tok_s_per_user",
                                                                        "decode_layer_ms") for r in inside.rows)
    none = coverage(rows, hardware="a100-sxm-80gb", family="decode", params_b=10_000.0, batch=1)
    assert not none.rows and "No measured decode row" in none.sentence("x")


def test_compare_says_when_one_bound_differs_by_more_than_the_whole_step():
    from ador.report.binds import Anatomy, compare
    design = Anatomy("D", "p99 decode step", 30.0, {"memory": 20.0, "network": 10.0}, 1.0, 1.0, 1.0)
    gpu = Anatomy("G", "p99 decode step", 40.0, {"compute": 25.0, "memory": 10.0, "network": 5.0}, 1.0, 1.0, 1.0)
    text = compare(design, gpu)
    assert "compute-bound operators: 25.00 ms against 0.00 ms" in text
    assert "more than the whole 10.00 ms difference: D spends 15.00 ms more than G in other bounds" in text
