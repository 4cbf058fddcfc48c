"""Device registry and YAML load/save of any design (ADOR chip or GPU)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ador.config import dump_yaml, from_mapping, load_yaml, to_mapping
from ador.errors import ConfigError, UnknownNameError
from ador.hardware.calibration import calibrated
from ador.hardware.devices import AdorChip, Device, GpuSpec
from ador.hardware.presets import _GPU_SPECS, ADOR_PRESETS

GPUS: dict[str, GpuSpec] = {spec.name: calibrated(spec) for spec in _GPU_SPECS}
PRESETS: dict[str, Device] = {**GPUS, **ADOR_PRESETS}

_KINDS: dict[str, type] = {"ador": AdorChip, "gpu": GpuSpec}


def device_from_mapping(data: Any, where: str = "") -> Device:
    if not isinstance(data, dict):
        raise ConfigError(where or "device", data, "expected a mapping with a 'kind' of ador or gpu")
    kind = data.get("kind", "ador")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ConfigError(f"{where}.kind" if where else "kind", kind, "expected ador or gpu")
    return from_mapping(_KINDS[kind], data, where)


def device_to_mapping(device: Device) -> dict[str, Any]:
    data = to_mapping(device)
    # kind first, so a reader sees what the file describes
    return {"kind": data.pop("kind"), **data}


def device_to_yaml(device: Device) -> str:
    return dump_yaml(device_to_mapping(device))


def load_device(path: str | Path) -> Device:
    data = load_yaml(path)
    if isinstance(data, dict) and "device" in data and len(data) == 1:
        data = data["device"]
    return device_from_mapping(data)


def save_device(device: Device, path: str | Path) -> None:
    Path(path).write_text(device_to_yaml(device))


def get_device(name_or_path: str) -> Device:
    """A preset by name or a design read from a YAML file."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_device(path)
    raise UnknownNameError("hardware", name_or_path,
                           f"unknown hardware (known: {', '.join(PRESETS)}; or a path to a design .yaml)")
