"""A system: devices serving one model, split by tensor and pipeline parallelism, plus replicas."""
from __future__ import annotations

from dataclasses import dataclass

from ador.errors import ConfigError
from ador.hardware.devices import Device


@dataclass(frozen=True, slots=True)
class System:
    device: Device
    tp: int = 1
    pp: int = 1
    replicas: int = 1    # data-parallel copies of the model; throughput scales with them

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be a positive integer")
        if (self.tp > 1 or self.pp > 1) and self.device.link_bw_bytes_per_s <= 0:
            field = "links.count" if self.device.kind == "ador" else "link_bw_bytes_per_s"
            raise ConfigError(field, 0, f"tp={self.tp}, pp={self.pp} needs chip-to-chip links")

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.replicas

    @classmethod
    def of(cls, device: Device, *, tp: int = 1, devices: int | None = None, pp: int = 1) -> "System":
        """A system of ``devices`` devices (default tp*pp); the rest beyond tp*pp become replicas."""
        per_replica = tp * pp
        devices = per_replica if devices is None else devices
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise ConfigError("devices", devices, "must be a positive integer")
        if devices % per_replica:
            raise ConfigError("devices", devices, f"must be a multiple of tp*pp={per_replica}")
        return cls(device=device, tp=tp, pp=pp, replicas=devices // per_replica)
