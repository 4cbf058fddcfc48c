"""Hardware layer: ADOR template, GPU presets, systems, YAML. Knows no workload."""
from ador.hardware.components import GlobalSram, Hbm, Links, MacTrees, Noc, SystolicArrays, VectorUnit
from ador.hardware.devices import AdorChip, Device, GpuEfficiency, GpuSpec
from ador.hardware.io import (GPUS, PRESETS, device_from_mapping, device_to_mapping, device_to_yaml, get_device,
                              load_device, save_device)
from ador.hardware.system import System

__all__ = ["GlobalSram", "Hbm", "Links", "MacTrees", "Noc", "SystolicArrays", "VectorUnit", "AdorChip", "Device",
           "GpuEfficiency", "GpuSpec", "GPUS", "PRESETS", "device_from_mapping", "device_to_mapping",
           "device_to_yaml", "get_device", "load_device", "save_device", "System"]
