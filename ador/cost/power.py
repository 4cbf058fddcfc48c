"""Power and energy: a TDP estimate at full load, and the energy of a counted amount of work."""
from __future__ import annotations

from ador.cost import technology as tech
from ador.cost.area import Floorplan, node_value
from ador.ops import SCALAR


def energy_scale(node_nm, X=SCALAR):
    return node_value(tech.ENERGY_VS_7NM, node_nm, "energy scaling", X)


def full_load_power_w(fp: Floorplan, *, freq_hz, die_area_mm2, sram_bw_bytes_per_s, dram_bw_bytes_per_s,
                      link_bw_bytes_per_s, X=SCALAR) -> dict[str, float]:
    """Watts by component with every engine, memory and link busy (the TDP a design needs): all
    ``fp.dies`` dies of the floorplan; bandwidths and ``die_area_mm2`` are the device's."""
    s = energy_scale(fp.node_nm, X)
    return {
        "macs": fp.dies * (fp.mac_pes + fp.mactree_macs) * freq_hz * tech.MAC_J_7NM["fp16"] * s,
        "vector": fp.dies * (fp.fp32_lanes + fp.sfu_units) * freq_hz * tech.VECTOR_OP_J_7NM * s,
        "sram": sram_bw_bytes_per_s * tech.GLOBAL_SRAM_J_PER_BYTE_7NM * s,
        "dram": dram_bw_bytes_per_s * X.lookup(tech.DRAM_J_PER_BYTE, fp.memory_kind),
        "links": 2 * link_bw_bytes_per_s * tech.LINK_J_PER_BYTE,     # both directions
        "die_to_die": fp.dies * 2 * fp.d2d_bytes_per_s * tech.D2D_J_PER_BYTE,
        "static": die_area_mm2 * tech.STATIC_W_PER_MM2,
    }


def work_energy_components(*, node_nm, memory_kind, compute_dtype: str, flops, vector_ops, dram_bytes,
                           onchip_bytes, link_bytes, seconds, static_w, d2d_bytes=0.0, X=SCALAR) -> dict[str, float]:
    """Energy (J) by component of one device doing the counted work in ``seconds``. Every byte read
    from DRAM also passes through on-chip SRAM once; activations that stay on chip cost SRAM energy
    only; bytes between the dies of one device (``d2d_bytes``) cost die-to-die link energy."""
    s = energy_scale(node_nm, X)
    return {
        "macs": flops / 2.0 * tech.MAC_J_7NM[compute_dtype] * s,
        "vector": vector_ops * tech.VECTOR_OP_J_7NM * s,
        "dram": dram_bytes * X.lookup(tech.DRAM_J_PER_BYTE, memory_kind),
        "sram": (dram_bytes + onchip_bytes) * tech.GLOBAL_SRAM_J_PER_BYTE_7NM * s,
        "links": link_bytes * tech.LINK_J_PER_BYTE,
        "die_to_die": d2d_bytes * tech.D2D_J_PER_BYTE,
        "static": static_w * seconds,
    }


def work_energy_j(**work) -> float:
    """Energy of one device doing the counted work (``work_energy_components``' arguments), summed."""
    return sum(work_energy_components(**work).values())
