"""The held-out serving check behind each baseline GPU of the headline: which runs speak for a
question (GPU, model size, TP, batch), and what the report says about them."""
import dataclasses
import math
import statistics

import pytest

from ador.validation.coverage import SERVING_DECODE_METRIC, serving_coverage
from ador.validation.serving import predict_serving, shipped_rows
from ador.workload import get_model

PARAMS_B = get_model("llama-3-70b").active_params() / 1e9


def _by_hand(hardware, tp, batch):
    """The rule written out again, independently: same GPU, decode metric, TP, no PP, a closed loop
    whose clients per replica are within 2x of the batch, a model within 2x of the size."""
    out = []
    for r in shipped_rows():
        if r.hardware != hardware or r.metric != SERVING_DECODE_METRIC or r.tp != tp or r.pp != 1:
            continue
        if r.policy != "closed" or r.concurrency is None:
            continue
        per_replica = r.concurrency / (r.devices // (r.tp * r.pp))
        size = get_model(r.model).active_params() / 1e9
        if batch / 2 <= per_replica <= batch * 2 and PARAMS_B / 2 <= size <= PARAMS_B * 2:
            out.append(r.id)
    return sorted(out)


@pytest.mark.parametrize("hardware", ["b200-sxm-192gb", "h100-sxm-80gb"])
def test_the_runs_are_those_of_the_question_and_no_others(hardware):
    c = serving_coverage(shipped_rows(), hardware=hardware, params_b=PARAMS_B, tp=8, batch=128, precision="fp16")
    assert sorted(r.row.id for r in c.results) == _by_hand(hardware, 8, 128) != []
    # the filters bite: the same GPU has decode runs of this size at other TPs and loads
    others = [r for r in shipped_rows() if r.hardware == hardware and r.metric == SERVING_DECODE_METRIC]
    assert any(r.tp != 8 for r in others) and any((r.concurrency or 0) < 32 for r in others)
    # nearest load first
    loads = [abs(math.log2(r.row.concurrency / 128)) for r in c.results]
    assert loads == sorted(loads)


def test_errors_are_the_validation_errors_of_the_same_runs():
    c = serving_coverage(shipped_rows(), hardware="h200-sxm-141gb", params_b=PARAMS_B, tp=8, batch=128,
                         precision="fp16")
    ids = {r.row.id for r in c.results}
    again = predict_serving([r for r in shipped_rows() if r.id in ids])
    assert sorted(c.errors_pct) == pytest.approx(sorted(r.error_pct for r in again), rel=1e-12)
    errors = sorted(c.errors_pct)
    median = statistics.median(errors)
    # InferenceX's H200 runs are FP8 and priced with the default profile: the report says both
    assert {r.row.precision for r in c.results} == {"fp8"} and all(r.extrapolated for r in c.results)
    assert c.cell() == f"{median:+.0f}% (fp8 runs; {errors[0]:+.0f}% to {errors[-1]:+.0f}%, {len(errors)} runs)"
    text = c.sentence("its TPOT")
    assert c.cell() in text and f"{len(errors)} held-out" in text and "TP8" in text
    assert "fp8, where the question is fp16" in text and "the `default` runtime profile" in text
    same = serving_coverage(shipped_rows(), hardware="h200-sxm-141gb", params_b=PARAMS_B, tp=8, batch=128,
                            precision="fp8")
    assert "fp8 runs" not in same.cell() and "where the question is" not in same.sentence("its TPOT")
    h100 = serving_coverage(shipped_rows(), hardware="h100-sxm-80gb", params_b=PARAMS_B, tp=8, batch=128,
                            precision="fp16")       # NIM's fp16 runs and InferenceX's fp8 ones
    n_fp8 = sum(r.row.precision == "fp8" for r in h100.results)
    assert 0 < n_fp8 < len(h100.results) and f"({n_fp8} of them fp8; " in h100.cell()


def test_clients_are_counted_per_replica():
    """24 GPUs at TP8 are three replicas: 384 clients keep 128 running on each (inside a batch-128
    question, though 384 alone is 3x the batch); on two replicas 1,024 clients keep 512 (outside)."""
    base = next(r for r in shipped_rows() if r.id in _by_hand("b200-sxm-192gb", 8, 128))
    two = [dataclasses.replace(base, id="three", devices=24, concurrency=384, requests=900),
           dataclasses.replace(base, id="far", devices=16, concurrency=1024, requests=600),
           dataclasses.replace(base, id="none", concurrency=0)]          # no clients: not a load, no error
    c = serving_coverage(two, hardware=base.hardware, params_b=PARAMS_B, tp=8, batch=128, precision="fp16")
    assert [r.row.id for r in c.results] == ["three"]
    assert c.results[0].predicted is not None


def test_a_gpu_without_runs_says_so():
    c = serving_coverage(shipped_rows(), hardware="a100-sxm-80gb", params_b=PARAMS_B, tp=8, batch=128, precision="fp16")
    assert c.results == () and c.cell() == "no runs"
    assert "no held-out serving check" in c.sentence("the A100's TPOT")
