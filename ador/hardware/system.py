"""A system: devices serving one model, split by tensor and pipeline parallelism, plus replicas, and the
runtime profile that drives them (the same kind of object for GPUs and ADOR designs)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ador.errors import ConfigError
from ador.hardware.devices import Device
from ador.hardware.runtime import RuntimeProfile, get_runtime


def _default_runtime() -> RuntimeProfile:
    return get_runtime(None)


@dataclass(frozen=True, slots=True)
class NodeTier:
    """The network between nodes, for tensor or pipeline parallelism beyond one node (both sides).

    Defaults: 8 devices per node (HGX/DGX boards), one InfiniBand NDR port per device at 400 Gb/s =
    50 GB/s per direction (NVIDIA ConnectX-7 / Quantum-2 specifications), and 9.5 us per ring step
    over the network (NCCL's own latency model: hwLat[NET][Ring][LL] in src/graph/tuning.cc, against
    0.8 us for NVLink).
    """
    devices_per_node: int = 8
    bw_bytes_per_s_per_device: float = 50e9
    latency_s: float = 9.5e-6

    def __post_init__(self) -> None:
        if isinstance(self.devices_per_node, bool) or not isinstance(self.devices_per_node, int) or \
                self.devices_per_node < 1:
            raise ConfigError("devices_per_node", self.devices_per_node, "must be a positive integer")
        for name in ("bw_bytes_per_s_per_device", "latency_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ConfigError(name, value, "must be a positive finite number")


def replicas_of(devices: int | None, *, tp: int, pp: int) -> int:
    """How many tp*pp replicas ``devices`` devices make (None: one); anything else is a ConfigError."""
    per_replica = tp * pp
    devices = per_replica if devices is None else devices
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError("devices", devices, "must be a positive integer")
    if devices % per_replica:
        raise ConfigError("devices", devices, f"must be a multiple of tp*pp={per_replica}")
    return devices // per_replica


@dataclass(frozen=True, slots=True)
class System:
    device: Device
    tp: int = 1
    pp: int = 1
    replicas: int = 1    # data-parallel copies of the model; throughput scales with them
    runtime: RuntimeProfile = field(default_factory=_default_runtime)
    node: NodeTier = NodeTier()

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be a positive integer")
        if (self.tp > 1 or self.pp > 1) and self.device.link_bw_bytes_per_s <= 0:
            field = "links.count" if self.device.kind == "ador" else "link_bw_bytes_per_s"
            raise ConfigError(field, 0, f"tp={self.tp}, pp={self.pp} needs chip-to-chip links")
        if self.device.kind == "ador" and self.device.links.topology == "fully_connected" and \
                self.tp * self.pp > 1 and self.device.links.count < self.tp - 1:
            raise ConfigError("links.count", self.device.links.count,
                              f"a fully connected topology of tp={self.tp} devices needs at least {self.tp - 1} links")
        if not isinstance(self.runtime, RuntimeProfile):
            raise ConfigError("runtime", self.runtime, "expected a RuntimeProfile")

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.replicas

    @property
    def dies(self) -> int:
        """Dies per device that split each layer among them (chiplet designs; 1 for GPUs, whose
        multi-die packages are measured and modelled as one device)."""
        return self.device.dies if self.device.kind == "ador" else 1

    @property
    def tp_spans_nodes(self) -> bool:
        """The tensor-parallel group does not fit in one node: its collectives cross the network."""
        return self.tp > self.node.devices_per_node

    @property
    def hbm_efficiency(self) -> float:
        """Fraction of the device's peak DRAM bandwidth this runtime reaches."""
        return self.runtime.hbm(self.device.memory_kind)

    @property
    def op_overhead_s(self) -> float:
        return self.runtime.op_overhead_s(self.device.freq_hz)

    @classmethod
    def of(cls, device: Device, *, tp: int = 1, devices: int | None = None, pp: int = 1,
           runtime: RuntimeProfile | str | dict | None = None, node: NodeTier | None = None) -> "System":
        """A system of ``devices`` devices (default tp*pp); the rest beyond tp*pp become replicas.
        ``runtime``: a profile, its name or file (default: the fitted TensorRT-LLM profile)."""
        return cls(device=device, tp=tp, pp=pp, replicas=replicas_of(devices, tp=tp, pp=pp),
                   runtime=get_runtime(runtime), node=node or NodeTier())
