"""Workload layer: what the model asks of the hardware (shapes, FLOPs, bytes). Knows no hardware."""
from ador.workload.graph import PrefillChunk, build_iteration, decode_step, prefill, shard
from ador.workload.memory import Footprint, footprint
from ador.workload.models import ZOO, ModelSpec, get_model, load_hf_config
from ador.workload.ops import Op
from ador.workload.precision import PRECISIONS, Precision, get_precision

__all__ = ["PrefillChunk", "build_iteration", "decode_step", "prefill", "shard", "Footprint", "footprint",
           "ZOO", "ModelSpec", "get_model", "load_hf_config", "Op", "PRECISIONS", "Precision", "get_precision"]
