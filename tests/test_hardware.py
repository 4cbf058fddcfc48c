import pytest
import yaml

from ador.errors import ConfigError, UnknownNameError
from ador.hardware import (PRESETS, AdorChip, Hbm, Links, System, device_from_mapping, device_to_mapping,
                           device_to_yaml, get_device, load_device, save_device)
from ador.hardware.components import HBM_GENERATIONS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_yaml(tmp_path, name):
    device = PRESETS[name]
    path = tmp_path / f"{name}.yaml"
    save_device(device, path)
    assert load_device(path) == device
    assert get_device(str(path)) == device


def test_required_gpu_presets_exist():
    for name in ("a100-sxm-80gb", "a100-sxm-40gb", "h100-sxm-80gb", "h200-sxm-141gb", "l40s-48gb",
                 "mi300x-192gb", "b200-sxm-192gb"):
        assert PRESETS[name].kind == "gpu"
    a100 = PRESETS["a100-sxm-80gb"]
    assert (a100.fp16_flops_per_s, a100.hbm_bw_bytes_per_s, a100.die_area_mm2) == (312e12, 2039e9, 826.0)
    h100 = PRESETS["h100-sxm-80gb"]
    assert h100.fp8_flops_per_s == pytest.approx(2 * h100.fp16_flops_per_s, rel=1e-3)


def test_hbm_generation_fills_per_stack_figures():
    hbm = Hbm(stacks=6, generation="hbm3")
    bw, cap = HBM_GENERATIONS["hbm3"]
    assert hbm.bw_bytes_per_s == pytest.approx(6 * bw)
    assert hbm.capacity_bytes == pytest.approx(6 * cap)
    assert hbm.bw_bytes_per_s_per_stack == pytest.approx(819.2e9)


def _example() -> dict:
    return device_to_mapping(PRESETS["ador-example"])


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["hbm"].update(stacks=-2), "hbm.stacks"),
    (lambda d: d["hbm"].update(generation="hbm9"), "hbm.generation"),
    (lambda d: d["systolic"].update(rows="wide"), "systolic.rows"),
    (lambda d: d["systolic"].update(rows=12.5), "systolic.rows"),
    (lambda d: d["systolic"].update(dataflow="diagonal"), "systolic.dataflow"),
    (lambda d: d.update(node_nm=9), "node_nm"),
    (lambda d: d.update(freq_hz=float("nan")), "freq_hz"),
    (lambda d: d.update(bogus=1), "bogus"),
    (lambda d: d.pop("hbm"), "hbm"),
    (lambda d: d["links"].update(count=True), "links.count"),
    (lambda d: (d["systolic"].update(count=0), d["mactree"].update(count=0)), "systolic.count"),
])
def test_bad_designs_name_the_field(edit, field):
    data = _example()
    edit(data)
    with pytest.raises(ConfigError) as err:
        device_from_mapping(data)
    assert str(err.value).startswith(field + "=")
    assert "\n" not in str(err.value)


def test_numeric_strings_from_yaml_are_accepted():
    # PyYAML reads 1e9 (no dot) as a string
    data = yaml.safe_load(device_to_yaml(PRESETS["ador-example"]).replace("freq_hz: 1050000000.0", "freq_hz: 1e9"))
    assert device_from_mapping(data).freq_hz == 1e9


def test_malformed_yaml_file_is_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: ador\nsystolic: [1, 2\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_device(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_device(tmp_path / "missing.yaml")
    with pytest.raises(UnknownNameError, match="hardware='tpu-v9'"):
        get_device("tpu-v9")


def test_system_needs_links_for_tensor_parallelism():
    chip = PRESETS["ador-example"]
    lonely = AdorChip(**{**{f: getattr(chip, f) for f in chip.__dataclass_fields__},
                         "links": Links(count=0)})
    assert System(device=lonely, tp=1).devices == 1
    with pytest.raises(ConfigError, match="links.count=0"):
        System(device=lonely, tp=8)


def test_system_devices_and_replicas():
    s = System.of(PRESETS["a100-sxm-80gb"], tp=4, devices=16)
    assert (s.tp, s.pp, s.replicas, s.devices) == (4, 1, 4, 16)
    with pytest.raises(ConfigError, match="devices=6"):
        System.of(PRESETS["a100-sxm-80gb"], tp=4, devices=6)


def test_gpu_memory_is_the_marketed_figure_in_gib():
    """presets.py reads each GPU's HBM as its marketed size in GiB (what nvidia-smi and rocm-smi
    report within a percent); B200 was 180e9 bytes (167.6 GiB), 6% below the others' convention."""
    from ador.hardware import GPUS
    from ador.hardware.components import GiB
    for name, gpu in GPUS.items():
        if gpu.memory_kind.startswith("hbm"):            # GDDR6 (L40S) gives its visible memory with ECC on
            assert gpu.hbm_capacity_bytes % GiB == 0, name
    assert GPUS["b200-sxm-192gb"].hbm_capacity_bytes == 180 * GiB
