"""Dies (chiplets) per device: one device's engines cut into identical dies, each within the reticle,
paying die-to-die PHYs in area and die-to-die collectives in time, on both the one-design and the
population paths."""
import dataclasses as dc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.cost import RETICLE_LIMIT_MM2, assess
from ador.cost import technology as tech
from ador.errors import ConfigError
from ador.explore.config import Workload
from ador.explore.metrics import evaluate_design, feasibility
from ador.explore.space import build_space
from ador.explore.vector import population_metrics
from ador.hardware import PRESETS, System
from ador.perf.stage import stage_time
from ador.workload import decode_step, get_model, get_precision, prefill
from ador.workload.ops import DIE_ALLGATHER, DIE_ALLREDUCE, DIE_COLLECTIVES

MODEL = get_model("llama-3-70b")
FP16 = get_precision("fp16")
W = Workload(batch=32, input_len=512, output_len=128)


def _chip(dies: int = 1, **changes):
    base = PRESETS["ador-example"]
    big = dc.replace(base, systolic=dc.replace(base.systolic, count=32), mactree=dc.replace(base.mactree, count=256),
                     hbm=dc.replace(base.hbm, stacks=8))
    return dc.replace(big, dies=dies, **changes)


@pytest.mark.parametrize("field, value", [("systolic.count", 30), ("mactree.count", 250), ("hbm.stacks", 6)])
def test_identical_dies_must_share_engines_and_stacks_evenly(field, value):
    head, leaf = field.split(".")
    chip = _chip(1)
    with pytest.raises(ConfigError) as err:
        dc.replace(chip, dies=4, **{head: dc.replace(getattr(chip, head), **{leaf: value})})
    assert f"{field}={value}" in str(err.value) and "dies=4" in str(err.value)


@pytest.mark.parametrize("dies", [0, 9, 2.0, True])
def test_a_die_count_out_of_range_is_an_error_naming_it(dies):
    with pytest.raises(ConfigError, match="dies="):
        _chip(dies)


def test_a_device_too_large_for_one_die_is_buildable_as_two():
    one, two = assess(_chip(1)), assess(_chip(2))
    assert not one.within_reticle and two.within_reticle
    assert two.dies == 2 and two.die_area_mm2 / 2 <= RETICLE_LIMIT_MM2
    # what the split costs in silicon: a die-to-die PHY, an uncore and a host interface per die, and a
    # copy of the shared operand buffer; what it saves: yield
    assert two.die_area_mm2 > one.die_area_mm2
    assert two.components["die_to_die_phy"] == pytest.approx(2 * 2 * 2.0e12 / tech.D2D_BYTES_PER_S_PER_MM2)
    assert one.components["die_to_die_phy"] == 0.0
    assert two.die_yield > one.die_yield and two.die_cost_usd < one.die_cost_usd
    m1 = evaluate_design(_chip(1), MODEL, FP16, W, tp=8)
    m2 = evaluate_design(_chip(2), MODEL, FP16, W, tp=8)
    assert any("reticle" in r for r in feasibility(m1)) and not any("reticle" in r for r in feasibility(m2))
    assert m2["dies"] == 2.0 and m1["dies"] == 1.0


@pytest.mark.parametrize("tp", [1, 4])     # 8 KV heads: enough for every die, none replicated
def test_the_dies_reduce_each_layer_over_die_to_die_links(tp):
    ops1 = decode_step(MODEL, FP16, tp, 16, 600)
    ops2 = decode_step(MODEL, FP16, tp, 16, 600, dies=2)
    assert not any(o.kind in DIE_COLLECTIVES for o in ops1)
    die_ops = [o for o in ops2 if o.kind in DIE_COLLECTIVES]
    # one all-reduce after attention and one after the FFN in every layer, and the logits gathered
    assert sum(o.count for o in die_ops if o.kind == DIE_ALLREDUCE) == 2 * MODEL.n_layers
    assert sum(o.count for o in die_ops if o.kind == DIE_ALLGATHER) == 1
    assert [o for o in ops2 if o.kind not in DIE_COLLECTIVES] == list(ops1)


@pytest.mark.parametrize("tp", [1, 4])
def test_a_split_device_is_slower_by_exactly_its_die_collectives(tp):
    """Every other operator keeps its time (the dies hold even shares of the engines); the die-level
    collectives add theirs, under the runtime's overlap rule like any collective."""
    one = System.of(_chip(1), tp=tp, runtime="ador-paper")     # no overlap: times simply add
    two = System.of(_chip(2), tp=tp, runtime="ador-paper")
    ops = decode_step(MODEL, FP16, tp, 16, 600, dies=2)
    r1 = stage_time(one, FP16, decode_step(MODEL, FP16, tp, 16, 600))
    r2 = stage_time(two, FP16, ops)
    die_s = sum(t.time_s for t in r2.breakdown if t.kind in DIE_COLLECTIVES)
    assert die_s > 0
    assert r2.time_s == pytest.approx(r1.time_s + die_s, rel=1e-12)
    assert {t.engine for t in r2.breakdown if t.kind in DIE_COLLECTIVES} == {"die_to_die"}
    assert stage_time(two, FP16, ops, breakdown=False).time_s == pytest.approx(r2.time_s, rel=1e-12)


def test_die_to_die_bytes_cost_die_to_die_energy_not_link_energy():
    acts = {n: stage_time(System.of(_chip(n), tp=8), FP16, prefill(MODEL, FP16, 8, 4, 512, dies=n)).activity()
            for n in (1, 2, 4)}
    assert acts[1]["d2d_bytes"] == 0 and acts[2]["d2d_bytes"] > 0
    assert acts[1]["link_bytes"] == acts[2]["link_bytes"] == acts[4]["link_bytes"]
    # a ring among n dies moves 2(n-1) payloads per all-reduce, (n-1) per all-gather: from 2 dies to 4, 3x
    assert acts[4]["d2d_bytes"] == pytest.approx(3 * acts[2]["d2d_bytes"], rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(bw=st.floats(1e11, 1e13), factor=st.floats(1.0, 10.0), dies=st.sampled_from([2, 4]),
       tp=st.sampled_from([1, 2, 8]))
def test_more_die_to_die_bandwidth_is_never_slower(bw, factor, dies, tp):
    slow = evaluate_design(_chip(dies, die_to_die_bw_bytes_per_s=bw), MODEL, FP16, W, tp=tp, need_energy=False)
    fast = evaluate_design(_chip(dies, die_to_die_bw_bytes_per_s=bw * factor), MODEL, FP16, W, tp=tp,
                           need_energy=False)
    assert fast["tbt_ms"] <= slow["tbt_ms"] * (1 + 1e-12) and fast["ttft_ms"] <= slow["ttft_ms"] * (1 + 1e-12)


def test_population_path_prices_mixed_die_counts_like_one_design_at_a_time():
    chips = [_chip(1), _chip(2), _chip(4, die_to_die_bw_bytes_per_s=0.5e12)]
    pop = population_metrics(chips, MODEL, FP16, W, tp=8)
    for i, chip in enumerate(chips):
        one = evaluate_design(chip, MODEL, FP16, W, tp=8)
        for key in ("ttft_ms", "tbt_ms", "tbt_p99_ms", "die_area_mm2", "dies", "package_area_mm2", "cost_usd",
                    "tdp_w", "energy_per_token_j", "shoreline_utilisation"):
            assert pop[key][i] == pytest.approx(one[key], rel=1e-9), (chip.dies, key)


def test_a_search_space_marks_an_uneven_split_invalid_on_both_paths(tmp_path):
    from ador.explore.columns import design_arrays
    space = build_space({"base": "ador-example",
                         "knobs": {"dies": {"type": "categorical", "choices": [1, 2, 4]},
                                   "hbm.stacks": {"type": "int", "low": 2, "high": 8, "step": 2}}})
    columns = {"dies": np.array([1, 2, 4, 4, 2]), "hbm.stacks": np.array([6, 6, 6, 8, 2])}
    assert list(design_arrays(space, columns).valid) == [True, True, False, True, True]
    with pytest.raises(ConfigError, match="hbm.stacks=6"):
        space.design({"dies": 4, "hbm.stacks": 6})


def test_each_of_two_dies_is_the_half_sized_design_plus_its_die_to_die_phy():
    """A split device's die holds half of everything that is shared out, a whole copy of what is not
    (uncore, host interface, shared operand buffer) and the die-to-die PHY, so it has the area of a
    one-die design of half the engines, SRAM, NoC, stacks and links, plus that PHY."""
    chip = _chip(2)
    half = dc.replace(chip, dies=1, systolic=dc.replace(chip.systolic, count=chip.systolic.count // 2),
                      mactree=dc.replace(chip.mactree, count=chip.mactree.count // 2),
                      vector=dc.replace(chip.vector, lanes=chip.vector.lanes // 2,
                                        sfu_per_cycle=chip.vector.sfu_per_cycle // 2),
                      sram=dc.replace(chip.sram, capacity_bytes=chip.sram.capacity_bytes // 2,
                                      bw_bytes_per_s=chip.sram.bw_bytes_per_s / 2),
                      noc=dc.replace(chip.noc, bw_bytes_per_s=chip.noc.bw_bytes_per_s / 2),
                      hbm=dc.replace(chip.hbm, stacks=chip.hbm.stacks // 2),
                      links=dc.replace(chip.links, count=chip.links.count // 2))
    split, one = assess(chip), assess(half)
    phy = 2 * chip.die_to_die_bw_bytes_per_s / tech.D2D_BYTES_PER_S_PER_MM2
    assert split.die_area_mm2 / 2 == pytest.approx(one.die_area_mm2 + phy, rel=1e-12)
    for part, mm2 in one.components.items():
        assert split.components[part] / 2 == pytest.approx(mm2 + (phy if part == "die_to_die_phy" else 0.0),
                                                           rel=1e-12), part


def test_the_serving_simulator_prices_the_die_collectives_of_every_piece():
    """Iteration pieces (token-parallel operators, LM head) of a split device carry its die-level
    collectives, so ``ador simulate`` and system studies judge it by the same rule as ``evaluate``."""
    from ador.perf.iteration import IterationCost
    from ador.workload.ops import DECODE
    one = IterationCost(System.of(_chip(1), tp=8), MODEL, FP16)
    two = IterationCost(System.of(_chip(2), tp=8), MODEL, FP16)
    for piece in (lambda c: c.linear(64, DECODE), lambda c: c.head(64)):
        p1, p2 = piece(one), piece(two)
        assert "die_to_die" in p2.busy_s and "die_to_die" not in p1.busy_s
        assert p2.time_s > p1.time_s
    step = stage_time(System.of(_chip(2), tp=8), FP16, decode_step(MODEL, FP16, 8, 64, 1024, dies=2),
                      step_overhead=False)
    pieces = two.linear(64, DECODE).time_s + two.decode_attention(64, 1024).time_s + two.head(64).time_s
    assert pieces == pytest.approx(step.time_s, rel=1e-9)


def test_dies_beyond_the_kv_heads_each_keep_a_replica():
    """Llama-3-70B has 8 KV heads: at TP 8 a device holds one; cut into 2 dies, each die needs one of
    its own, so the device's KV cache, KV reads and K/V projection weights double."""
    from ador.workload.graph import shard
    from ador.workload.memory import footprint, kv_bytes_per_token_per_device
    assert shard(MODEL, 8).kv_heads == 1 and shard(MODEL, 8, dies=2).kv_heads == 2
    assert shard(MODEL, 4, dies=2).kv_heads == shard(MODEL, 4).kv_heads == 2      # enough heads: no copies
    assert kv_bytes_per_token_per_device(MODEL, FP16, 8, dies=2) == 2 * kv_bytes_per_token_per_device(MODEL, FP16, 8)
    one, two = footprint(MODEL, FP16, 8, 1, 16, 256, 4096), footprint(MODEL, FP16, 8, 1, 16, 256, 4096, dies=2)
    assert two.kv_bytes == 2 * one.kv_bytes and two.weight_bytes > one.weight_bytes
    kv = {n: sum(o.kv_bytes * o.count for o in decode_step(MODEL, FP16, 8, 16, 600, dies=n)) for n in (1, 2)}
    assert kv[2] == pytest.approx(2 * kv[1], rel=1e-12)
    m1 = evaluate_design(_chip(1), MODEL, FP16, W, tp=8)
    m2 = evaluate_design(_chip(2), MODEL, FP16, W, tp=8)
    assert m2["memory_utilisation"] > m1["memory_utilisation"]
    with pytest.raises(ConfigError, match="dies=8: tp x dies = 64"):
        shard(get_model("llama-3-8b"), 8, dies=8)                       # 32 query heads over 64 dies


def test_a_population_leaves_designs_whose_dies_cannot_split_the_model_unscored():
    """Llama-3-8B has 32 query heads: 8 devices of 8 dies would need 64. One design alone is an error
    naming dies; in a population it is NaN (the batch path then asks the one-design path why)."""
    small = get_model("llama-3-8b")
    got = population_metrics([_chip(1), _chip(8)], small, FP16, W, tp=8)
    assert np.isfinite(got["tbt_ms"][0]) and np.isnan(got["tbt_ms"][1])
    assert got["tbt_ms"][0] == pytest.approx(evaluate_design(_chip(1), small, FP16, W, tp=8)["tbt_ms"], rel=1e-9)
    with pytest.raises(ConfigError, match="dies=8: tp x dies = 64"):
        evaluate_design(_chip(8), small, FP16, W, tp=8)


def test_dies_meet_at_short_edges_that_must_hold_their_die_to_die_phys():
    from ador.cost.package import PHY_DEPTH_MM, die_edges_mm
    two = assess(_chip(2)).package
    _, short = die_edges_mm(two.die_area_mm2 / 2)
    assert two.d2d_edge_mm == pytest.approx(2 * short) and assess(_chip(1)).package.d2d_edge_mm == 0
    assert two.d2d_shoreline_mm == pytest.approx(2 * 2 * 2.0e12 / tech.D2D_BYTES_PER_S_PER_MM2 / PHY_DEPTH_MM)
    assert two.shoreline_fits
    greedy = assess(_chip(2, die_to_die_bw_bytes_per_s=100e12)).package      # 100 TB/s per die: no room
    assert not greedy.shoreline_fits and "die-to-die PHYs need" in greedy.shoreline_reason()
    m = evaluate_design(_chip(2, die_to_die_bw_bytes_per_s=100e12), MODEL, FP16, W, tp=8)
    assert any("die edge" in r for r in feasibility(m))
