import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ador.hardware import PRESETS, System
from ador.hardware.runtime import get_runtime
from ador.perf import evaluate
from ador.perf.population import evaluate_population
from ador.workload import get_model, get_precision
from tests.strategies import ador_chips


@settings(max_examples=15, deadline=None)
@given(chips=st.lists(ador_chips(), min_size=1, max_size=12), tp=st.sampled_from([1, 8]),
       batch=st.integers(1, 128), input_len=st.integers(1, 3000), output_len=st.integers(1, 500),
       model=st.sampled_from(["llama-3-70b", "mixtral-8x7b", "gpt-j-6b"]),
       precision=st.sampled_from(["fp16", "fp8", "int4-wo"]), first_token_from_decode=st.booleans())
def test_population_equals_one_design_at_a_time(chips, tp, batch, input_len, output_len, model, precision,
                                                first_token_from_decode):
    spec, p = get_model(model), get_precision(precision)
    chips = [c for c in chips if spec.n_heads % (tp * c.dies) == 0]     # (the rest: tests/test_dies.py)
    if spec.n_heads % tp or not chips:
        return
    runtime = dataclasses.replace(get_runtime(), first_token_from_decode=first_token_from_decode)
    got = evaluate_population(chips, spec, p, batch=batch, input_len=input_len, output_len=output_len, tp=tp,
                              runtime=runtime)
    for i, chip in enumerate(chips):
        r = evaluate(System(device=chip, tp=tp, runtime=runtime), spec, p, batch=batch, input_len=input_len,
                     output_len=output_len, breakdown=False)
        assert got["ttft_s"][i] == pytest.approx(r.ttft_s, rel=1e-9)
        assert got["tbt_s"][i] == pytest.approx(r.tbt_s, rel=1e-9)
        assert got["e2e_s"][i] == pytest.approx(r.e2e_s, rel=1e-9)
        assert bool(got["fits"][i]) == r.fits
    assert np.all(np.isfinite(got["e2e_s"])) and np.all(got["e2e_s"] > 0)


def test_population_of_the_example():
    chip = PRESETS["ador-example"]
    out = evaluate_population([chip] * 3, get_model("llama-3-8b"), get_precision("fp16"), batch=8, input_len=256,
                              output_len=32)
    assert np.allclose(out["ttft_s"], out["ttft_s"][0])


@settings(max_examples=15, deadline=None)
@given(chip=ador_chips(), tp=st.sampled_from([1, 8]), batch=st.integers(1, 128), kv=st.integers(1, 4000),
       model=st.sampled_from(["llama-3-70b", "mixtral-8x7b"]))
def test_the_shared_operator_time_equals_the_breakdowns_engine_by_engine_choice(chip, tp, batch, kv, model):
    """The stage time without a breakdown (``op_seconds``, the population's definition) equals the
    sum the breakdown path builds from each operator's candidate engines (``op_time``)."""
    from ador.perf.stage import stage_time
    from ador.workload import decode_step, prefill
    spec, p = get_model(model), get_precision("fp16")
    if spec.n_heads % tp:
        return
    system = System(device=chip, tp=tp)
    for ops in (prefill(spec, p, tp, batch, kv), decode_step(spec, p, tp, batch, kv)):
        fast = stage_time(system, p, ops, breakdown=False).time_s
        assert fast == pytest.approx(stage_time(system, p, ops, breakdown=True).time_s, rel=1e-12)
