"""Die area of a design from its components, at its process node.

A ``Floorplan`` counts what takes silicon (MAC PEs, vector lanes, register files, SRAM macros,
crossbar ports, memory and link interfaces); ``die_area`` prices each with the technology tables.
ADOR chips get their floorplan from the design; GPUs from their architecture whitepapers, so the
model can be checked against the real dies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ador.cost import technology as tech
from ador.errors import ConfigError
from ador.hardware.devices import AdorChip, Device
from ador.ops import SCALAR

MemoryKind = Literal["hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6"]


@dataclass(frozen=True, slots=True)
class Floorplan:
    name: str
    node_nm: int
    # counts are per die (whole numbers, but typed float: a die's share is computed by division)
    mac_pes: float                     # fp16 MAC processing elements (systolic PEs, tensor cores)
    mactree_macs: float = 0            # multipliers of MAC-tree engines (one adder each in the tree)
    fp32_lanes: float = 0
    int32_lanes: float = 0
    fp64_lanes: float = 0
    sfu_units: float = 0
    control_lanes: float = 0           # lanes carrying SIMD/SIMT control
    register_files: float = 0.0        # 64 KiB, 4-port files (one per 32 lanes)
    local_sram: tuple[tuple[float, int], ...] = ()   # (count, bytes each)
    global_sram_bytes: float = 0
    noc_ports: float = 0
    noc_bytes_per_cycle: float = 0.0
    memory_kind: MemoryKind = "hbm2e"
    memory_units: float = 0            # HBM stacks, or 32-bit GDDR channels
    link_units: int = 0                # 25 GB/s-per-direction link units
    uncore: bool = False               # add the command processor / DMA block
    d2d_bytes_per_s: float = 0.0       # die-to-die PHY bandwidth per direction (chiplets)
    dies: int = 1                      # identical dies of this floorplan in the device

    @property
    def link_kind(self) -> str:
        return "nvlink4" if self.node_nm <= 5 else "nvlink3"

    @property
    def pcie_kind(self) -> str:
        return "pcie5" if self.node_nm <= 5 else "pcie4"


def node_value(table: dict, node_nm, what: str, X=SCALAR):
    """``table[node]`` for one design (a one-line error for an unknown node) or for an array of them."""
    return tech.node_table(table, node_nm, what) if X is SCALAR else X.lookup(table, node_nm)


def sram_area_mm2(capacity_bytes, node_nm, X=SCALAR):
    """Area of an SRAM of ``capacity_bytes`` built from macros of at most 512 KiB (CACTI efficiency)."""
    bit = node_value(tech.SRAM_MM2_PER_BIT, node_nm, "SRAM bit area", X)
    big = capacity_bytes > tech.SRAM_MAX_MACRO_BYTES
    units = X.where(big, X.ceil(capacity_bytes / tech.SRAM_MAX_MACRO_BYTES), 1)
    unit = X.where(big, tech.SRAM_MAX_MACRO_BYTES, X.maximum(capacity_bytes, tech.SRAM_MIN_MACRO_BYTES))
    index = X.ceil(X.log2(unit)) - 12
    area = units * unit * 8 * bit / X.take(tech.SRAM_MACRO_EFFICIENCY, index)
    return X.where(capacity_bytes > 0, area, 0.0)


def die_area(fp: Floorplan, X=SCALAR) -> dict[str, float]:
    """Area in mm2 by component of one die; the values sum to the die area. ``fp``'s fields may be
    arrays with one value per design (``X`` = NUMPY)."""
    density = node_value(tech.LOGIC_MTR_PER_MM2, fp.node_nm, "logic density", X) * 1e6

    def logic(transistors):
        return transistors / density

    rf_D, rf_W, rf_P = tech.REGFILE_SHAPE
    rf_mm2 = tech.register_file_um2_90nm(rf_D, rf_W, rf_P) / 1e6 * tech.LOGIC_MTR_PER_MM2_90NM * 1e6 / density
    ports = fp.noc_ports * X.maximum(1.0, fp.noc_bytes_per_cycle / X.maximum(fp.noc_ports, 1)
                                     / tech.NOC_PORT_BYTES_PER_CYCLE)
    gddr = fp.memory_kind == "gddr6"
    mem_phy = fp.memory_units * X.where(gddr, tech.GDDR_PHY_MM2_PER_32BIT, tech.HBM_PHY_MM2_PER_STACK)
    mem_ctrl = logic(fp.memory_units * X.where(gddr, tech.GDDR_CTRL_TRANSISTORS_PER_32BIT,
                                               tech.HBM_CTRL_TRANSISTORS_PER_STACK))
    new_io = fp.node_nm <= 5          # NVLink4 and PCIe 5 at 5 nm and below (link_kind, pcie_kind)
    lanes = tech.HOST_PCIE_LANES
    areas = {
        "mac_arrays": logic(fp.mac_pes * tech.FPU16_TRANSISTORS),
        "mac_trees": logic(fp.mactree_macs * tech.FPU16_TRANSISTORS),
        "vector_units": logic(fp.fp32_lanes * tech.FPU32_TRANSISTORS + fp.int32_lanes * tech.INT32_TRANSISTORS
                              + fp.fp64_lanes * tech.FPU64_TRANSISTORS + fp.sfu_units * tech.SFU_TRANSISTORS),
        "control": logic(fp.control_lanes * tech.CONTROL_TRANSISTORS_PER_LANE),
        "register_files": fp.register_files * rf_mm2,
        "local_sram": sum(count * sram_area_mm2(size, fp.node_nm, X) for count, size in fp.local_sram),
        "global_sram": sram_area_mm2(fp.global_sram_bytes, fp.node_nm, X),
        "noc": logic(ports * tech.NOC_PORT_TRANSISTORS),
        "memory_phy": mem_phy,
        "memory_controllers": mem_ctrl,
        "link_phy": fp.link_units * X.where(new_io, tech.LINK_PHY_MM2["nvlink4"], tech.LINK_PHY_MM2["nvlink3"]),
        "link_controllers": logic(fp.link_units * X.where(new_io, tech.LINK_CTRL_TRANSISTORS["nvlink4"],
                                                          tech.LINK_CTRL_TRANSISTORS["nvlink3"])),
        "host_io": lanes * X.where(new_io, tech.PCIE_PHY_MM2_PER_LANE["pcie5"], tech.PCIE_PHY_MM2_PER_LANE["pcie4"])
                   + logic(lanes * X.where(new_io, tech.PCIE_CTRL_TRANSISTORS_PER_LANE["pcie5"],
                                           tech.PCIE_CTRL_TRANSISTORS_PER_LANE["pcie4"])),
        "uncore": X.where(fp.uncore, logic(tech.UNCORE_TRANSISTORS), 0.0),
        "die_to_die_phy": d2d_phy_mm2(fp),
    }
    return areas


def d2d_phy_mm2(fp: Floorplan):
    """Die-to-die PHY area of one die (both directions)."""
    return 2.0 * fp.d2d_bytes_per_s / tech.D2D_BYTES_PER_S_PER_MM2


def device_area(fp: Floorplan, X=SCALAR) -> dict[str, float]:
    """Area in mm2 by component of all ``fp.dies`` dies of a device together."""
    return {name: fp.dies * mm2 for name, mm2 in die_area(fp, X).items()}


def io_phy_mm2(fp: Floorplan, X=SCALAR):
    """PHY area of the links, the host interface and (GDDR parts) the memory, which share the die
    edges the HBM PHYs leave free: all dies of the device together (die-to-die PHYs sit on the edges
    where dies meet: ``ador.cost.package``)."""
    new_io = fp.node_nm <= 5
    return fp.dies * (fp.link_units * X.where(new_io, tech.LINK_PHY_MM2["nvlink4"], tech.LINK_PHY_MM2["nvlink3"])
                      + tech.HOST_PCIE_LANES * X.where(new_io, tech.PCIE_PHY_MM2_PER_LANE["pcie5"],
                                                         tech.PCIE_PHY_MM2_PER_LANE["pcie4"])
                      + X.where(fp.memory_kind == "gddr6", fp.memory_units * tech.GDDR_PHY_MM2_PER_32BIT, 0.0))


def floorplan_of_chip(chip: AdorChip, X=SCALAR) -> Floorplan:
    """What one die of an ADOR design puts on silicon (``dies`` of them make the device). MAC trees
    share one crossbar port per 8 trees (assumption: decode engines are clustered like the 8 lanes
    of a TPU vector slice); a shared operand buffer is an SRAM like any other, with one more crossbar
    port to broadcast from.

    A device of several dies splits its engines, lanes, global SRAM, NoC bandwidth and HBM stacks
    evenly over them; each die carries its own uncore, host interface, whole link PHYs (rounded up)
    and, since its trees need every activation vector under tensor parallelism, a whole copy of the
    shared operand buffer (assumptions: identical dies, one mask set). ``chip`` may be a namespace
    of per-design arrays (``X`` = NUMPY)."""
    s, t, v = chip.systolic, chip.mactree, chip.vector
    d = chip.dies
    shared = X.where((t.count > 0) & (t.buffer == "shared"), 1, 0)
    link_units = chip.links.count * X.ceil(chip.links.bw_bytes_per_s_per_link / tech.LINK_UNIT_BYTES_PER_S)
    return Floorplan(
        name=chip.name, node_nm=chip.node_nm,
        mac_pes=s.macs / d, mactree_macs=t.macs / d,
        fp32_lanes=v.lanes / d, sfu_units=v.sfu_per_cycle / d, control_lanes=v.lanes / d,
        register_files=v.lanes / d / tech.REGFILE_LANES,
        local_sram=((s.count / d, s.local_sram_bytes), (t.count / d, t.local_buffer_bytes),
                    (shared, t.shared_buffer_bytes)),
        global_sram_bytes=chip.sram.capacity_bytes / d,
        noc_ports=s.count / d + X.ceil(t.count / d / 8) + 1 + shared,
        noc_bytes_per_cycle=chip.noc.bw_bytes_per_s / d / chip.freq_hz,
        memory_kind=chip.hbm.generation, memory_units=chip.hbm.stacks / d,
        link_units=X.ceil(link_units / d), uncore=True,
        d2d_bytes_per_s=X.where(d > 1, chip.die_to_die_bw_bytes_per_s, 0.0), dies=d,
    )


def _gpu(name, node, sms, sublanes, pes_per_sublane, fp32, int32, fp64, l1_bytes, l2_bytes, memory_kind,
         memory_units, links, noc_bytes_per_cycle) -> Floorplan:
    lanes = sms * sublanes * 32
    return Floorplan(
        name=name, node_nm=node, mac_pes=sms * sublanes * pes_per_sublane,
        fp32_lanes=sms * sublanes * fp32, int32_lanes=sms * sublanes * int32, fp64_lanes=sms * sublanes * fp64,
        control_lanes=lanes, register_files=lanes / tech.REGFILE_LANES,
        local_sram=((sms, l1_bytes),), global_sram_bytes=l2_bytes,
        noc_ports=sms, noc_bytes_per_cycle=noc_bytes_per_cycle,
        memory_kind=memory_kind, memory_units=memory_units, link_units=links,
    )


KiB, MiB = 1024, 1024 ** 2
# Full dies as built (not the enabled subset sold): SMs, sub-partitions per SM, dense fp16 MACs per
# sub-partition, FP32/INT32/FP64 lanes per sub-partition, L1 and L2, memory interfaces, links.
# GA100: A100 whitepaper (128 SMs, 4 x 256 fp16 FMA/clk, 192 KiB L1, 48 MiB L2 of which 40 enabled,
# 6 HBM2E sites, 12 NVLink3). GH100: Hopper whitepaper (144 SMs, 2x A100's MMA rate per SM,
# 256 KiB L1, 60 MiB L2, 6 HBM3 sites, 18 NVLink4). AD102: Ada whitepaper (144 SMs, 128 fp16 FMA per
# sub-partition dense, 128 KiB L1, 96 MiB L2, 384-bit GDDR6, no NVLink).
GPU_FLOORPLANS: dict[str, Floorplan] = {
    "a100-sxm-80gb": _gpu("GA100", 7, 128, 4, 256, 16, 16, 8, 192 * KiB, 48 * MiB, "hbm2e", 6, 12, 5120),
    "a100-sxm-40gb": _gpu("GA100", 7, 128, 4, 256, 16, 16, 8, 192 * KiB, 48 * MiB, "hbm2", 6, 12, 5120),
    "h100-sxm-80gb": _gpu("GH100", 5, 144, 4, 512, 32, 16, 16, 256 * KiB, 60 * MiB, "hbm3", 6, 18, 5760),
    "h200-sxm-141gb": _gpu("GH100", 5, 144, 4, 512, 32, 16, 16, 256 * KiB, 60 * MiB, "hbm3e", 6, 18, 5760),
    "l40s-48gb": _gpu("AD102", 5, 144, 4, 128, 32, 16, 0, 128 * KiB, 96 * MiB, "gddr6", 12, 0, 5760),
}


def floorplan_of(device: Device) -> Floorplan | None:
    """The floorplan of a design, or of a GPU whose die is documented (None otherwise)."""
    if device.kind == "ador":
        return floorplan_of_chip(device)
    return GPU_FLOORPLANS.get(device.name)


def check_reticle(area_mm2: float) -> None:
    if area_mm2 > tech.RETICLE_LIMIT_MM2:
        raise ConfigError("die_area_mm2", round(area_mm2, 1),
                          f"exceeds the {tech.RETICLE_LIMIT_MM2:.0f} mm2 reticle limit")
