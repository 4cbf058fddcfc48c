"""One model for both sides: GPUs and ADOR designs judged by the same rules."""
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.cli import main
from ador.cost import assess
from ador.cost.package import package_of
from ador.cost.report import component_power_calibration, work_energy_calibration
from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.hardware.components import Links, MacTrees
from ador.hardware.runtime import ADOR_PAPER, IDEAL, RuntimeProfile, get_runtime, runtime_profiles
from ador.hardware.twin import twin_of
from ador.perf import evaluate, stage_time
from ador.perf.collectives import collective_seconds
from ador.workload import decode_step, get_model, get_precision
from ador.workload.ops import ALLGATHER, ALLREDUCE

FP16 = get_precision("fp16")
CASES = [("llama-2-7b", 1, 1, 2048, 128), ("llama-2-70b", 8, 1, 2048, 128), ("llama-3-70b", 8, 64, 2048, 256),
         ("mistral-7b", 1, 32, 512, 256), ("mixtral-8x7b", 2, 16, 1024, 128)]


@pytest.mark.parametrize("gpu", ["a100-sxm-80gb", "h100-sxm-80gb"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_design_built_like_a_gpu_is_predicted_like_it(gpu, case):
    """Same peaks, bandwidths, links and runtime profile: TTFT and TBT within 10% of the preset."""
    model, tp, batch, inp, out = case
    g, t = PRESETS[gpu], twin_of(PRESETS[gpu])
    a = evaluate(System.of(g, tp=tp), get_model(model), FP16, batch=batch, input_len=inp, output_len=out)
    b = evaluate(System.of(t, tp=tp), get_model(model), FP16, batch=batch, input_len=inp, output_len=out)
    assert a.ttft_s == pytest.approx(b.ttft_s, rel=0.10)
    assert a.tbt_s == pytest.approx(b.tbt_s, rel=0.10)


def test_both_sides_default_to_one_fitted_profile():
    gpu = System(device=PRESETS["a100-sxm-80gb"])
    design = System(device=PRESETS["ador-example"])
    assert gpu.runtime is design.runtime and gpu.runtime.name == "tensorrt-llm"
    assert "fitted by `ador calibrate`" in gpu.runtime.source
    # every fitted profile carries the same shared constants; only the per-stack overheads differ
    fitted = [p for n, p in runtime_profiles().items() if n not in ("ideal", "ador-paper")]
    assert len({(p.overlap, p.link_efficiency, p.collective_latency_s, p.hbm_efficiency) for p in fitted}) == 1


def test_each_runtime_rule_moves_a_design_and_a_gpu_alike():
    """Per-kernel and per-step overheads, overlap, link and HBM efficiency apply to either kind."""
    model = get_model("llama-3-70b")
    base = dataclasses.replace(IDEAL, name="base")
    variants = {"kernel_overhead_s": 20e-6, "step_overhead_s": 5e-3, "overlap": 0.0, "link_efficiency": 0.5,
                "collective_latency_s": 20e-6}
    for device in (PRESETS["a100-sxm-80gb"], PRESETS["ador-example"]):
        ref = evaluate(System.of(device, tp=8, runtime=base), model, FP16, batch=8, input_len=512, output_len=16)
        for field, value in variants.items():
            slow = evaluate(System.of(device, tp=8, runtime=dataclasses.replace(base, **{field: value})), model,
                            FP16, batch=8, input_len=512, output_len=16)
            assert slow.tbt_s > ref.tbt_s * 1.001, (device.name, field)
        half = dataclasses.replace(base, hbm_efficiency=dataclasses.replace(base.hbm_efficiency, default=0.5))
        assert evaluate(System.of(device, tp=8, runtime=half), model, FP16, batch=8, input_len=512,
                        output_len=16).tbt_s > ref.tbt_s * 1.3


def test_comm_overlap_hides_collectives_but_never_more_than_the_work():
    model = get_model("llama-3-70b")
    ops = decode_step(model, FP16, 8, 8, 1024)
    for device in (PRESETS["a100-sxm-80gb"], PRESETS["ador-example"]):
        plain = stage_time(System.of(device, tp=8, runtime=IDEAL), FP16, ops)
        hidden = stage_time(System.of(device, tp=8, runtime=dataclasses.replace(IDEAL, comm_overlap=1.0)), FP16, ops)
        comm = sum(t.time_s for t in plain.breakdown if t.engine == "link")
        assert comm > 0 and hidden.time_s == pytest.approx(plain.time_s - comm)
        assert hidden.time_s == pytest.approx(sum(t.time_s for t in hidden.breakdown))


@pytest.mark.parametrize("tp", [2, 4, 8, 16])
def test_collective_steps_follow_algorithm_and_tp(tp):
    """A tiny message costs latency only: a ring pays 2(t-1) steps for an all-reduce and t-1 for an
    all-gather; a switch picks the one-shot algorithm (one step) when that is cheapest."""
    lat, tiny = 1e-6, 1.0
    ring = collective_seconds(ALLREDUCE, tiny, tp, 1e12, lat, False, 0.0)
    switch = collective_seconds(ALLREDUCE, tiny, tp, 1e12, lat, True, 0.0)
    assert ring == pytest.approx(2 * (tp - 1) * lat, rel=1e-3)
    assert switch == pytest.approx(lat, rel=1e-3)
    assert collective_seconds(ALLGATHER, tiny, tp, 1e12, lat, False, 0.0) == pytest.approx((tp - 1) * lat, rel=1e-3)
    # a large message is bandwidth-bound: ring and two-shot move 2(t-1)/t of it, one-shot (t-1) times it
    big = 1e9
    two_shot, one_shot = 2 * (tp - 1) / tp * big / 1e11 + 2 * lat, (tp - 1) * big / 1e11 + lat
    assert collective_seconds(ALLREDUCE, big, tp, 1e11, lat, True, 0.0) == pytest.approx(min(two_shot, one_shot))
    assert collective_seconds(ALLREDUCE, big, tp, 1e11, lat, False, 0.0) == pytest.approx(
        2 * (tp - 1) / tp * big / 1e11 + 2 * (tp - 1) * lat)


@settings(max_examples=60, deadline=None)
@given(tp=st.integers(2, 16), size=st.floats(1.0, 1e10), bw=st.floats(1e9, 1e12), lat=st.floats(0.0, 5e-5))
def test_a_reducing_switch_adds_the_in_switch_all_reduce(tp, size, bw, lat):
    """NVLS: 2 steps and (1 + 1/t) of the message over the links; never slower than the switch's
    best, the same for all-gathers (multicast gathers nothing faster), and the array path agrees."""
    import numpy as np

    from ador.ops import NUMPY
    from ador.perf.collectives import DIRECT, RING, SWITCH_REDUCE, reach
    switch = collective_seconds(ALLREDUCE, size, tp, bw, lat, DIRECT, 0.0)
    reducing = collective_seconds(ALLREDUCE, size, tp, bw, lat, SWITCH_REDUCE, 0.0)
    assert reducing == pytest.approx(min(switch, 2 * lat + (1 + 1 / tp) * size / bw), rel=1e-12)
    assert collective_seconds(ALLGATHER, size, tp, bw, lat, SWITCH_REDUCE, 0.0) == \
        collective_seconds(ALLGATHER, size, tp, bw, lat, DIRECT, 0.0)
    as_arrays = collective_seconds(ALLREDUCE, np.full(3, size), tp, np.full(3, bw), np.full(3, lat),
                                   reach(np.array(["ring", "switch", "reducing_switch"])), 0.0, NUMPY)
    assert as_arrays == pytest.approx([collective_seconds(ALLREDUCE, size, tp, bw, lat, r, 0.0)
                                       for r in (RING, DIRECT, SWITCH_REDUCE)], rel=1e-12)


def test_a_reducing_switch_cuts_a_large_all_reduce_by_1_75_over_1_125_at_tp8():
    """The measured case: 8 x H100 reach 479 GB/s of bus bandwidth with NVLS on 450 GB/s of links
    (ador/data/allreduce.csv); two-shot moves 1.75 x the message, the switch 1.125 x."""
    from ador.perf.collectives import DIRECT, SWITCH_REDUCE, reach
    assert (reach("ring"), reach("switch"), reach("fully_connected"), reach("reducing_switch")) == (0, 1, 1, 2)
    big = 1e9
    ratio = collective_seconds(ALLREDUCE, big, 8, 1e11, 0.0, DIRECT, 0.0) / \
        collective_seconds(ALLREDUCE, big, 8, 1e11, 0.0, SWITCH_REDUCE, 0.0)
    assert ratio == pytest.approx(1.75 / 1.125)
    # and a design whose switch reduces pays less for a prefill's all-reduces, through the system's rates
    chip = PRESETS["ador-example"]
    reducing = dataclasses.replace(chip, links=dataclasses.replace(chip.links, topology="reducing_switch"))
    model = get_model("llama-3-70b")
    ttft = {c.links.topology: evaluate(System.of(c, tp=8), model, FP16, batch=8, input_len=2048, output_len=2).ttft_s
            for c in (chip, reducing)}
    assert ttft["reducing_switch"] < ttft["switch"]


def test_tp8_small_allreduce_on_a_ring_costs_more_than_on_a_switch():
    chip = PRESETS["ador-example"]
    ring = dataclasses.replace(chip, links=dataclasses.replace(chip.links, topology="ring"))
    model = get_model("llama-3-70b")
    t_switch = evaluate(System.of(chip, tp=8), model, FP16, batch=1, input_len=128, output_len=16).tbt_s
    t_ring = evaluate(System.of(ring, tp=8), model, FP16, batch=1, input_len=128, output_len=16).tbt_s
    assert t_ring > t_switch


def _tree_chip(buffer: str) -> object:
    chip = PRESETS["ador-example"]
    # enough MACs to stay memory-bound at batch 128 (count x width > 128 x HBM bytes/s / 2 / clock)
    trees = MacTrees(count=512, width=256, local_buffer_bytes=32 * 1024, buffer=buffer, shared_buffer_bytes=8 << 20)
    return dataclasses.replace(chip, mactree=trees)


def test_shared_operand_buffer_streams_weights_once_for_the_whole_batch():
    """Decode on the MAC trees at batch 128 within 2x of batch 1 while memory-bound (LPU dataflow); a
    private buffer that holds one activation vector per tree re-streams the weights per sequence."""
    model = get_model("llama-3-70b")

    def decode(chip, batch):
        # a short context, so the KV cache (read per sequence whatever the dataflow) stays small
        return stage_time(System.of(chip, tp=8), FP16, decode_step(model, FP16, 8, batch, 256),
                          engines={"decode": "mactree"})

    def gemm_s(stage):
        return sum(t.time_s for t in stage.breakdown if t.kind == "gemm")

    shared = _tree_chip("shared")
    one, many = decode(shared, 1), decode(shared, 128)
    gemms = [t for t in many.breakdown if t.kind == "gemm"]
    assert all(t.engine == "mactree" for t in gemms)
    assert sum(t.time_s for t in gemms if t.bound == "memory") > 0.5 * gemm_s(many)
    assert gemm_s(many) < 2 * gemm_s(one) and many.time_s < 2 * one.time_s
    private = decode(_tree_chip("private"), 128)
    assert gemm_s(private) > 10 * gemm_s(many)


def test_shared_buffer_is_priced_like_any_sram():
    small = assess(_tree_chip("shared"))
    big = assess(dataclasses.replace(small_chip := _tree_chip("shared"),
                                     mactree=dataclasses.replace(small_chip.mactree, shared_buffer_bytes=64 << 20)))
    assert big.components["local_sram"] > small.components["local_sram"] + 10
    assert assess(_tree_chip("private")).components["local_sram"] < small.components["local_sram"]


def test_one_power_rule_for_both_sides():
    gpu, design = assess(PRESETS["a100-sxm-80gb"]), assess(PRESETS["ador-example"])
    assert gpu.tdp_scale == design.tdp_scale == pytest.approx(component_power_calibration())
    assert gpu.energy_scale == design.energy_scale == pytest.approx(work_energy_calibration())
    assert 1.5 < component_power_calibration() < 2.2        # the GPUs' datasheet TDP / component estimate
    # datasheet TDP / a dense GEMM's component power: larger, since the full-load estimate counts DRAM,
    # links and every MAC at once where a GEMM alone reaches the board limit
    assert 3.0 < work_energy_calibration() < 5.5
    assert gpu.tdp_w == pytest.approx(gpu.estimated_tdp_w * gpu.tdp_scale)
    assert gpu.tdp_w == pytest.approx(400, rel=0.15)          # and the A100 lands near its datasheet 400 W
    none_gpu, none_design = assess(PRESETS["a100-sxm-80gb"], "components"), assess(PRESETS["ador-example"],
                                                                                    "components")
    assert none_gpu.energy_scale == none_design.energy_scale == none_gpu.tdp_scale == 1.0
    old = assess(PRESETS["a100-sxm-80gb"], "datasheet-gpus")
    assert old.tdp_w == 400 and assess(PRESETS["ador-example"], "datasheet-gpus").energy_scale == 1.0
    assert old.energy_scale == old.tdp_scale        # ador 0.1's rule anchors a GPU's energy to its datasheet too


def test_package_counts_hbm_stacks_and_gpus_fit_their_shoreline():
    for name in ("a100-sxm-80gb", "h100-sxm-80gb", "l40s-48gb"):
        cost = assess(PRESETS[name])
        assert cost.package.shoreline_fits, name
    a100 = assess(PRESETS["a100-sxm-80gb"])
    assert 1500 < a100.package_area_mm2 < 2000        # GA100 and six HBM2E sites on CoWoS-S (~1,700 mm2)
    chip = PRESETS["ador-example"]
    more = assess(dataclasses.replace(chip, hbm=dataclasses.replace(chip.hbm, stacks=chip.hbm.stacks + 2)))
    assert more.package_area_mm2 > assess(chip).package_area_mm2 + 150


def test_many_stacks_on_a_small_die_do_not_fit_its_edge():
    small = package_of(die_area_mm2=200.0, dies=1, memory_kind="hbm3", memory_sites=8, floorplan=None,
                       io_phy_mm2=10.0)
    assert small.shoreline_fits        # no floorplan: not checked
    from ador.cost.area import floorplan_of
    fp = floorplan_of(PRESETS["ador-example"])
    tight = package_of(die_area_mm2=200.0, dies=1, memory_kind="hbm3", memory_sites=8, floorplan=fp,
                       io_phy_mm2=10.0)
    assert not tight.shoreline_fits and "HBM PHYs" in tight.shoreline_reason()
    assert tight.shoreline_utilisation > 1


def test_fully_connected_needs_a_link_per_peer():
    chip = PRESETS["ador-example"]
    few = dataclasses.replace(chip, links=Links(count=4, topology="fully_connected"))
    with pytest.raises(ConfigError, match="links.count"):
        System.of(few, tp=8)
    System.of(few, tp=4)


def test_runtime_profiles_by_name_file_and_mapping(tmp_path):
    assert get_runtime("ideal") is IDEAL and get_runtime("ador-paper") is ADOR_PAPER
    path = tmp_path / "mine.yaml"
    path.write_text("kernel_overhead_s: 2.0e-6\noverlap: 0.5\nhbm_efficiency: {default: 0.8, hbm3: 0.9}\n")
    mine = get_runtime(str(path))
    assert isinstance(mine, RuntimeProfile) and mine.name == "mine" and mine.hbm("hbm3") == 0.9
    assert mine.hbm("hbm2e") == 0.8
    with pytest.raises(ConfigError, match="overlap"):
        get_runtime({"name": "bad", "overlap": 1.5})
    with pytest.raises(ConfigError, match="runtime"):
        get_runtime("no-such-profile")


def test_evaluate_json_names_the_profile_and_both_areas(capsys):
    assert main(["evaluate", "--hardware", "ador-example", "--model", "llama-3-8b", "--batch", "4",
                 "--input-len", "256", "--output-len", "16", "--runtime", "ideal", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runtime_profile"]["name"] == "ideal"
    for key in ("die_area_mm2", "package_area_mm2", "output_tok_s_per_mm2", "output_tok_s_per_package_mm2"):
        assert data[key] > 0
    assert data["package_area_mm2"] > data["die_area_mm2"]
    assert data["output_tok_s_per_package_mm2"] < data["output_tok_s_per_mm2"]
    assert main(["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime_profile"]["name"] == "tensorrt-llm"
    assert main(["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--runtime", "nope"]) == 2
    assert "runtime='nope'" in capsys.readouterr().err
