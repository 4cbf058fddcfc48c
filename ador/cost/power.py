"""Power and energy: a TDP estimate at full load, and the energy of a counted amount of work."""
from __future__ import annotations

from ador.cost import technology as tech
from ador.cost.area import Floorplan


def energy_scale(node_nm: int) -> float:
    return tech.node_table(tech.ENERGY_VS_7NM, node_nm, "energy scaling")


def full_load_power_w(fp: Floorplan, *, freq_hz: float, die_area_mm2: float, sram_bw_bytes_per_s: float,
                      dram_bw_bytes_per_s: float, link_bw_bytes_per_s: float) -> dict[str, float]:
    """Watts by component with every engine, memory and link busy (the TDP a design needs)."""
    s = energy_scale(fp.node_nm)
    return {
        "macs": (fp.mac_pes + fp.mactree_macs) * freq_hz * tech.MAC_J_7NM["fp16"] * s,
        "vector": (fp.fp32_lanes + fp.sfu_units) * freq_hz * tech.VECTOR_OP_J_7NM * s,
        "sram": sram_bw_bytes_per_s * tech.GLOBAL_SRAM_J_PER_BYTE_7NM * s,
        "dram": dram_bw_bytes_per_s * tech.DRAM_J_PER_BYTE[fp.memory_kind],
        "links": 2 * link_bw_bytes_per_s * tech.LINK_J_PER_BYTE,     # both directions
        "static": die_area_mm2 * tech.STATIC_W_PER_MM2,
    }


def work_energy_j(*, node_nm: int, memory_kind: str, compute_dtype: str, flops: float, vector_ops: float,
                  dram_bytes: float, onchip_bytes: float, link_bytes: float, seconds: float,
                  static_w: float) -> float:
    """Energy of one device doing the counted work in ``seconds``. Every byte read from DRAM also
    passes through on-chip SRAM once; activations that stay on chip cost SRAM energy only."""
    s = energy_scale(node_nm)
    return (flops / 2.0 * tech.MAC_J_7NM[compute_dtype] * s
            + vector_ops * tech.VECTOR_OP_J_7NM * s
            + dram_bytes * tech.DRAM_J_PER_BYTE[memory_kind]
            + (dram_bytes + onchip_bytes) * tech.GLOBAL_SRAM_J_PER_BYTE_7NM * s
            + link_bytes * tech.LINK_J_PER_BYTE
            + static_w * seconds)
