"""A population scored at once equals its designs scored one by one, every study metric."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ador.errors import AdorError
from ador.hardware.runtime import get_runtime
from ador.explore.metrics import Workload, evaluate_design, feasibility
from ador.explore.vector import feasibility_codes, feasibility_reasons, population_metrics
from ador.workload import get_model, get_precision
from tests.strategies import ador_chips

# a runtime whose first token comes from a decode step after a prefill one token short
TURBOMIND = dataclasses.replace(get_runtime("tensorrt-llm"), first_token_from_decode=True)


@settings(max_examples=12, deadline=None)
@given(chips=st.lists(ador_chips(), min_size=1, max_size=8), tp=st.sampled_from([1, 8]),
       batch=st.integers(1, 128), input_len=st.integers(1, 3000), output_len=st.integers(1, 500),
       model=st.sampled_from(["llama-3-70b", "mixtral-8x7b", "gpt-j-6b"]),
       precision=st.sampled_from(["fp16", "fp8", "int4-wo"]),
       runtime=st.sampled_from(["tensorrt-llm", "ideal", "ador-paper", TURBOMIND]),
       power_rule=st.sampled_from(["calibrated", "components"]))
def test_population_metrics_equal_evaluate_design(chips, tp, batch, input_len, output_len, model, precision,
                                                  runtime, power_rule):
    spec, p = get_model(model), get_precision(precision)
    if spec.n_heads % tp:
        return
    w = Workload(batch, input_len, output_len)
    if all(spec.n_heads % (tp * c.dies) for c in chips):        # no design's dies can split the heads
        with pytest.raises(AdorError, match="dies="):
            population_metrics(chips, spec, p, w, tp=tp, runtime=runtime, power_rule=power_rule)
        return
    got = population_metrics(chips, spec, p, w, tp=tp, runtime=runtime, power_rule=power_rule)
    for i, chip in enumerate(chips):
        try:
            want = evaluate_design(chip, spec, p, w, tp=tp, runtime=runtime, power_rule=power_rule)
        except AdorError:        # a die too large for a wafer, or dies that cannot split the heads:
            assert not np.isfinite(got["cost_usd"][i])      # no finite cost in the population either
            continue
        for key, value in want.items():
            if math.isfinite(value):
                assert got[key][i] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@settings(max_examples=12, deadline=None)
@given(chips=st.lists(ador_chips(), min_size=1, max_size=8), batch=st.integers(1, 256),
       input_len=st.integers(1, 8000), reticle=st.booleans())
def test_population_feasibility_codes_give_the_reasons_of_one_design(chips, batch, input_len, reticle):
    spec, p = get_model("llama-3-70b"), get_precision("fp16")
    w = Workload(batch, input_len, 64)
    got = population_metrics(chips, spec, p, w, tp=8)
    codes = feasibility_codes(got, reticle=reticle)
    for i, chip in enumerate(chips):
        try:
            want = evaluate_design(chip, spec, p, w, tp=8)
        except AdorError:
            continue
        assert feasibility_reasons(int(codes[i]), {k: float(v[i]) for k, v in got.items()}) == \
            feasibility(want, reticle=reticle)


@settings(max_examples=20, deadline=None)
@given(chips=st.lists(ador_chips(), min_size=1, max_size=8), batch=st.integers(1, 256),
       input_len=st.integers(1, 4000), output_len=st.integers(1, 400))
def test_p99_time_between_tokens_is_never_below_the_mean(chips, batch, input_len, output_len):
    got = population_metrics(chips, get_model("llama-3-8b"), get_precision("fp16"),
                             Workload(batch, input_len, output_len), tp=1)
    assert np.all(got["tbt_p99_ms"] >= got["tbt_ms"])


def test_the_p99_rule_keeps_the_mean_as_a_floor_on_numbers_and_arrays():
    from ador.ops import NUMPY
    from ador.perf.evaluate import p99_of_steps
    assert p99_of_steps(1.0, 2.0) == 2.0 and p99_of_steps(3.0, 2.0) == 3.0
    assert p99_of_steps(np.array([1.0, 3.0]), np.array([2.0, 2.0]), NUMPY).tolist() == [2.0, 3.0]


def test_a_device_smaller_than_the_runtimes_reserve_holds_nothing_on_both_paths():
    """0.1 GiB of HBM per stack under a 1 GiB runtime reserve: the capacity is negative, which made
    every need look like it fits (memory_utilisation -78, no reason given) on both paths."""
    import dataclasses
    from ador.hardware import get_device
    from ador.hardware.runtime import get_runtime
    runtime = get_runtime("tensorrt-llm")
    base = get_device("ador-example")
    chip = dataclasses.replace(base, hbm=dataclasses.replace(base.hbm,
                                                             capacity_bytes_per_stack=runtime.reserved_bytes / 10))
    model, fp16, w = get_model("llama-3-70b"), get_precision("fp16"), Workload(128, 2048, 256)
    one = evaluate_design(chip, model, fp16, w, tp=8, runtime=runtime)
    assert one["memory_utilisation"] == math.inf
    assert feasibility(one) == ["does not fit: the runtime's reserve leaves no device memory"]
    many = population_metrics([chip], model, fp16, w, tp=8, runtime=runtime)
    assert many["memory_utilisation"][0] == math.inf and feasibility_codes(many)[0] == 1
