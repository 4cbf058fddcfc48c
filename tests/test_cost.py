import dataclasses
import json

import pytest
from hypothesis import given, strategies as st

from ador.cli import main
from ador.cost import RETICLE_LIMIT_MM2, assess, die_area, floorplan_of, sram_area_mm2
from ador.cost.area import GPU_FLOORPLANS, check_reticle
from ador.cost.price import die_yield, dies_per_wafer
from ador.errors import ConfigError
from ador.hardware import PRESETS, device_from_mapping, device_to_mapping
from tests.strategies import ador_chips

ADOR = PRESETS["ador-example"]


def test_component_model_reproduces_ga100_within_5_percent():
    estimate = sum(die_area(GPU_FLOORPLANS["a100-sxm-80gb"]).values())
    assert estimate == pytest.approx(826.0, rel=0.05)
    report = assess(PRESETS["a100-sxm-80gb"])
    assert report.die_area_mm2 == 826.0                    # datasheet figure
    assert report.estimated_die_area_mm2 == pytest.approx(estimate)


@pytest.mark.parametrize("name", sorted(GPU_FLOORPLANS))
def test_gpu_floorplans_within_10_percent_of_their_dies(name):
    report = assess(PRESETS[name])
    assert report.estimated_die_area_mm2 == pytest.approx(report.die_area_mm2, rel=0.10)


@given(chip=ador_chips())
def test_breakdown_sums_to_total_and_everything_is_positive(chip):
    report = assess(chip)
    assert sum(report.components.values()) == pytest.approx(report.die_area_mm2)
    assert all(v >= 0 for v in report.components.values())
    assert report.tdp_w > 0 and report.cost_usd > 0 and 0 < report.die_yield <= 1


def _grow(chip, what, factor):
    if what == "systolic":
        return dataclasses.replace(chip, systolic=dataclasses.replace(chip.systolic,
                                                                      count=chip.systolic.count * factor + chip.dies))
    if what == "mactree":
        return dataclasses.replace(chip, mactree=dataclasses.replace(chip.mactree,
                                                                     count=chip.mactree.count * factor + chip.dies))
    if what == "lanes":
        return dataclasses.replace(chip, vector=dataclasses.replace(chip.vector, lanes=chip.vector.lanes * factor))
    if what == "sram":
        return dataclasses.replace(chip, sram=dataclasses.replace(
            chip.sram, capacity_bytes=chip.sram.capacity_bytes * factor + 4096))
    if what == "local":
        return dataclasses.replace(chip, systolic=dataclasses.replace(
            chip.systolic, local_sram_bytes=chip.systolic.local_sram_bytes * factor))
    if what == "hbm":
        return dataclasses.replace(chip, hbm=dataclasses.replace(chip.hbm, stacks=chip.hbm.stacks * factor))
    if what == "links":
        return dataclasses.replace(chip, links=dataclasses.replace(chip.links, count=chip.links.count * factor + 1))
    if what == "noc":
        return dataclasses.replace(chip, noc=dataclasses.replace(chip.noc,
                                                                 bw_bytes_per_s=chip.noc.bw_bytes_per_s * factor))
    raise AssertionError(what)


@given(chip=ador_chips(),
       what=st.sampled_from(["systolic", "mactree", "lanes", "sram", "local", "hbm", "links", "noc"]),
       factor=st.integers(2, 8))
def test_more_of_any_component_never_shrinks_area_power_or_cost(chip, what, factor):
    small = assess(chip)
    try:
        big = assess(_grow(chip, what, factor))
    except ConfigError as err:     # grown past what a wafer holds: unbuildable, which is not smaller
        assert "wafer" in str(err) and small.die_area_mm2 > 0
        return
    assert big.die_area_mm2 >= small.die_area_mm2 * (1 - 1e-12)
    assert big.tdp_w >= small.tdp_w * (1 - 1e-12)
    assert big.cost_usd >= small.cost_usd * (1 - 1e-12)


def test_sram_area_is_monotone_in_capacity():
    sizes = [2 ** k for k in range(10, 31)]
    areas = [sram_area_mm2(s, 7) for s in sizes]
    assert areas == sorted(areas)


def test_node_scaling_shrinks_logic_but_not_phys():
    areas = {}
    for node in (16, 7, 5, 3):
        chip = dataclasses.replace(ADOR, node_nm=node)
        areas[node] = die_area(floorplan_of(chip))
    for part in ("mac_arrays", "control", "register_files", "noc"):
        assert areas[16][part] > areas[7][part] > areas[5][part] > areas[3][part]
    assert areas[16]["memory_phy"] == areas[3]["memory_phy"]          # analog PHYs do not scale
    # at the same area, a newer node costs more per die but holds more logic
    assert assess(dataclasses.replace(ADOR, node_nm=5)).tdp_w < assess(ADOR).tdp_w


def test_yield_and_dies_per_wafer():
    assert die_yield(100, 7) > die_yield(800, 7) > 0
    assert dies_per_wafer(100) > dies_per_wafer(800) > 50
    with pytest.raises(ConfigError, match="die_area_mm2"):
        dies_per_wafer(80000)


def test_reticle_limit():
    assert RETICLE_LIMIT_MM2 == pytest.approx(858)
    check_reticle(800)
    with pytest.raises(ConfigError, match="reticle"):
        check_reticle(900)
    huge = dataclasses.replace(ADOR, sram=dataclasses.replace(ADOR.sram, capacity_bytes=1024 ** 3))
    assert not assess(huge).within_reticle


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(node_nm=10), "node_nm"),
    (lambda d: d["sram"].update(capacity_bytes=-1), "sram.capacity_bytes"),
    (lambda d: d["vector"].update(lanes=0), "vector.lanes"),
])
def test_bad_inputs_rejected(edit, field):
    data = device_to_mapping(ADOR)
    edit(data)
    with pytest.raises(ConfigError) as err:
        device_from_mapping(data)
    assert str(err.value).startswith(field)


def test_area_cli_json(capsys):
    assert main(["area", "--hardware", "a100-sxm-80gb", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("die_area_mm2", "estimated_die_area_mm2", "components", "tdp_w", "cost_usd"):
        assert key in data
    assert data["die_area_mm2"] == 826.0
    assert main(["area", "--hardware", "ador-example"]) == 0
    assert "reticle" in capsys.readouterr().out
    assert main(["area", "--hardware", "mi300x-192gb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["estimated_die_area_mm2"] is None


def test_evaluate_reports_energy_and_area_efficiency(capsys):
    argv = ["evaluate", "--hardware", "ador-example", "--model", "llama-3-8b", "--batch", "16", "--input-len", "512",
            "--output-len", "64", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output_tok_s_per_mm2"] == pytest.approx(data["output_tok_s"] / data["system_die_area_mm2"])
    assert data["energy_per_output_token_j"] > 0


def test_a_chiplet_gpu_is_costed_die_by_die():
    """MI300X is 8 compute dies of ~115 mm2 (N5) and 4 I/O dies of ~370 mm2 (N6, costed at 7 nm), not
    three reticle-sized 5 nm dies: small dies yield far better (the die cost fell from 2,835 USD)."""
    from ador.cost.price import die_cost_usd
    from ador.cost.report import assess
    from ador.hardware import PRESETS
    from ador.hardware.devices import Chiplet, GpuSpec
    cost = assess(PRESETS["mi300x-192gb"])
    assert cost.dies == 12
    assert cost.die_cost_usd == pytest.approx(8 * die_cost_usd(115.0, 5) + 4 * die_cost_usd(370.0, 7))
    assert cost.die_cost_usd < 1000
    with pytest.raises(ConfigError, match="chiplets=1000"):
        dataclasses.replace(PRESETS["mi300x-192gb"], chiplets=(Chiplet(count=2, area_mm2=500.0, node_nm=5),))
    assert isinstance(PRESETS["mi300x-192gb"], GpuSpec)


def test_a_chiplet_count_is_a_whole_number_of_dies():
    from ador.hardware.devices import Chiplet
    with pytest.raises(ConfigError, match="count=2.5"):
        Chiplet(count=2.5, area_mm2=960.0, node_nm=5)


def test_a_chiplet_gpus_yield_weights_each_kind_of_die_by_its_area():
    """MI300X's good-silicon share is each kind's yield weighted by the area it takes: 8 x 115 mm2 at
    5 nm and 4 x 370 mm2 at 7 nm over 2,400 mm2; not the two kinds' plain mean (which counts the small
    dies' better yield as much as the I/O dies' worse one) nor one 2,400 mm2 die's."""
    cost = assess(PRESETS["mi300x-192gb"])
    small, large = die_yield(115.0, 5), die_yield(370.0, 7)
    weighted = (8 * 115.0 * small + 4 * 370.0 * large) / (8 * 115.0 + 4 * 370.0)
    assert weighted != pytest.approx((small + large) / 2, rel=1e-3)      # the two readings differ here
    assert cost.die_yield == pytest.approx(weighted)


def test_the_power_rule_asked_for_is_applied_and_named_in_the_report_and_evaluate(capsys):
    """Each rule scales the A100's component estimate differently (one factor fitted on GPUs, none,
    or up to its datasheet 400 W), so a rule ignored on the way shows in the TDP as well as the name."""
    from ador.cost.report import DEFAULT_POWER_RULE, POWER_RULES
    a100 = PRESETS["a100-sxm-80gb"]
    costs = {rule: assess(a100, rule) for rule in POWER_RULES}
    assert len({round(c.tdp_w, 6) for c in costs.values()}) == len(POWER_RULES)
    assert costs["components"].tdp_w == pytest.approx(costs["components"].estimated_tdp_w)
    assert costs["datasheet-gpus"].tdp_w == a100.tdp_w
    assert assess(a100).power_rule == DEFAULT_POWER_RULE
    argv = ["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--batch", "1", "--input-len", "128",
            "--output-len", "8", "--json"]
    for rule, cost in costs.items():
        assert cost.power_rule == cost.to_dict()["power_rule"] == rule
        assert main([*argv, "--power-rule", rule]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["power_rule"] == rule and data["tdp_w_per_device"] == pytest.approx(cost.tdp_w), rule
    assert main(["area", "--hardware", "a100-sxm-80gb"]) == 0         # `ador area` runs the default rule
    assert f"power rule {DEFAULT_POWER_RULE}" in capsys.readouterr().out
