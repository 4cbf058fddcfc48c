"""System-level scoring: valid splits, replicas that scale with the load, one price rule."""
import dataclasses
import math

import pytest

from ador.explore.system import Candidate, Economics, OfferedLoad, score_candidate, split_reasons
from ador.hardware import PRESETS
from ador.hardware.runtime import get_runtime
from ador.workload import get_model, get_precision

L70 = get_model("llama-3-70b")
FP8 = get_precision("fp8")
ECO = Economics(lifetime_years=4, energy_usd_per_kwh=0.1, markup=3.0)
LOAD = OfferedLoad(rate_rps=4.0, input_len=512, output_len=128, ttft_slo_ms=1000, tbt_slo_ms=50, requests=150)


def _h100(tp=4, pp=1, **kw):
    return Candidate(PRESETS["h100-sxm-80gb"], tp, pp, FP8, get_runtime(None), **kw)


@pytest.mark.parametrize("tp,pp,needle", [(3, 1, "tp=3 does not divide the 64 attention heads"),
                                          (8, 3, "pp=3 does not divide the 80 layers"),
                                          (1, 1, "does not fit")])
def test_an_invalid_split_is_infeasible_with_its_reason_and_not_scored(tp, pp, needle):
    metrics, reasons = score_candidate(_h100(tp, pp), get_model("llama-3.1-405b") if needle == "does not fit"
                                       else L70, LOAD, ECO)
    assert metrics is None and any(needle in r for r in reasons), reasons


def test_split_reasons_names_both_faults():
    assert len(split_reasons(L70, 3, 3)) == 2 and not split_reasons(L70, 8, 2)


@pytest.mark.parametrize("k", [0.5, 1.5, 2.5, 6.5])
def test_replicas_scale_the_offered_load_exactly(k):
    """An offered load of k replicas' capacity needs ceil(k) replicas, whatever k."""
    base, _ = score_candidate(_h100(), L70, LOAD, ECO)
    capacity = base["capacity_rps_per_replica"]
    more, _ = score_candidate(_h100(), L70, dataclasses.replace(LOAD, rate_rps=k * capacity), ECO)
    assert more["capacity_rps_per_replica"] == capacity
    assert more["replicas"] == math.ceil(k)
    assert more["devices"] == more["replicas"] * 4
    assert more["replicas"] * capacity >= k * capacity


def test_one_price_rule_and_stated_prices():
    a, _ = score_candidate(_h100(), L70, LOAD, ECO)
    b, _ = score_candidate(_h100(), L70, LOAD, dataclasses.replace(ECO, markup=6.0))
    assert b["capex_usd"] == pytest.approx(2 * a["capex_usd"]) and b["cost_per_mtok_usd"] > a["cost_per_mtok_usd"]
    priced, _ = score_candidate(_h100(), L70, LOAD, dataclasses.replace(ECO, prices_usd={"h100-sxm-80gb": 30000.0}))
    assert priced["capex_usd"] == pytest.approx(30000.0 * priced["devices"])


def test_the_numbers_are_the_simulators():
    from ador.hardware import System
    from ador.serving import Lengths, SchedulerConfig, poisson, simulate
    metrics, reasons = score_candidate(_h100(), L70, LOAD, ECO)
    system = System.of(PRESETS["h100-sxm-80gb"], tp=4, devices=int(metrics["devices"]))
    served = simulate(system, L70, FP8, poisson(LOAD.rate_rps, LOAD.requests, Lengths("fixed", 512),
                                                Lengths("fixed", 128), seed=0),
                      config=SchedulerConfig(policy="chunked", max_batch=256, chunk_tokens=512),
                      ttft_slo_ms=1000, tbt_slo_ms=50)
    assert metrics["serving_tbt_p99_ms"] == served.tbt_ms["p99"]
    assert metrics["serving_ttft_p99_ms"] == served.ttft_ms["p99"]
    assert not reasons
