"""Technology tables of the area, power and cost model: one place, each figure with its source.

Logic and SRAM figures at 7 and 5 nm, component transistor counts, PHY areas, wafer costs and
defect densities are those published with LLMCompass (Zhang et al., ISCA 2024; cost_model/ in
PrincetonUniversity/LLMCompass), which reproduce the GA100 die at 826 mm2. Other nodes are
scaled with the sources named beside them.
"""
from __future__ import annotations

from ador.errors import ConfigError

# --- logic density (million transistors per mm2, chip level) -----------------------------------
# 7 and 5 nm: Khan & Mann, "AI Chips", CSET 2020 (as used by LLMCompass). 16/12 nm: NVIDIA P100
# (15.3 B transistors / 610 mm2, TSMC 16FF) and V100 (21.1 B / 815 mm2, TSMC 12FFN) whitepapers.
# 4 nm: TSMC N4 ~6% denser than N5 (TSMC 2021 technology symposium). 3 nm: TSMC N3E 1.6x N5 logic
# density (TSMC 2022 symposium).
LOGIC_MTR_PER_MM2 = {16: 25.1, 12: 25.9, 7: 96.3, 5: 138.2, 4: 138.2 * 1.06, 3: 138.2 * 1.6}

# --- SRAM bit area (mm2 per bit, LLMCompass's cell-plus-array figure) ------------------------------
# 7 and 5 nm: LLMCompass. 4 and 3 nm: N4 and N3E keep N5's 0.021 um2 high-density bitcell (TSMC
# IEDM 2022: SRAM did not scale at N3E). 16/12 nm: 7 nm figure times the bitcell ratio 0.074/0.027 um2
# (TSMC 16FF+ vs N7 high-density bitcells).
SRAM_MM2_PER_BIT = {16: 1.70e-7 * 0.074 / 0.027, 12: 1.70e-7 * 0.074 / 0.027, 7: 1.70e-7, 5: 1.25e-7,
                    4: 1.25e-7, 3: 1.25e-7}

# Array efficiency (bit area / macro area) of SRAM macros of 4 KiB, 8 KiB, ... 1 MiB, from CACTI
# (LLMCompass); larger memories are built from 512 KiB macros.
SRAM_MACRO_EFFICIENCY = (0.076, 0.142, 0.247, 0.393, 0.559, 0.704, 0.526, 0.602, 0.561)
SRAM_MAX_MACRO_BYTES = 512 * 1024
SRAM_MIN_MACRO_BYTES = 4096

# --- transistor counts of components (LLMCompass) -----------------------------------------------
FPU64_TRANSISTORS = 685_300                              # Ariane / OpenPiton SPARC T1 FPU
FPU32_TRANSISTORS = FPU64_TRANSISTORS * (23 / 52) ** 2   # scaled by mantissa bits squared
FPU16_TRANSISTORS = FPU64_TRANSISTORS * (10 / 52) ** 2   # one fp16 MAC processing element
INT32_TRANSISTORS = 177_690
# SIMD/SIMT control per vector lane (instruction issue, operand collectors), averaged over the
# A100 SM and MI210 CU by LLMCompass.
CONTROL_TRANSISTORS_PER_LANE = 996_200
# Per-core port on the on-chip crossbar, averaged NVIDIA/AMD by LLMCompass. GA100's crossbar
# carries 5120 bytes/cycle over 128 ports (LLMCompass Table IV): 40 bytes/cycle per port.
NOC_PORT_TRANSISTORS = 44_300_000
NOC_PORT_BYTES_PER_CYCLE = 5120 / 128
# Special-function unit (exp, rsqrt, tanh): assumption, two fp32 FPUs (a range reduction and a
# polynomial/table datapath); no published transistor count.
SFU_TRANSISTORS = 2 * FPU32_TRANSISTORS
# Command processor, DMA engines, fuses and test of an accelerator without GPU-style per-core
# overheads: assumption, 500 M transistors (a few embedded control cores plus DMA).
UNCORE_TRANSISTORS = 500_000_000

# Register file (EMPIRE model, Ogras et al.; as used by LLMCompass): area in um2 at 90 nm of a file
# of D registers of W bits with P ports; scaled by logic density.
LOGIC_MTR_PER_MM2_90NM = 1.6


def register_file_um2_90nm(D: int, W: int, P: int) -> float:
    return (3.29e4 - 1.09e3 * D - 8.83e2 * W - 5.55e3 * P + 5.35e1 * D * W + 1.50e-2 * D ** 2
            + 1.08e-2 * W ** 2 + 5.86e-1 * P ** 2 + 1.42e2 * D * P + 3.68e2 * W * P)


# A vector lane's registers: GPUs give each group of 32 lanes a 64 KiB file (16384 x 32 bit, 4
# ports: A100/H100 whitepapers); ADOR's vector unit uses the same ratio.
REGFILE_LANES = 32
REGFILE_SHAPE = (16384, 32, 4)

# --- off-chip interfaces: PHYs do not scale with the node, controllers do (LLMCompass) -------------
HBM_PHY_MM2_PER_STACK = 10.45            # 1024-bit HBM2E PHY, A100/MI210 die photos
HBM_CTRL_TRANSISTORS_PER_STACK = 552_743_000
# HBM3/3E keep the 1024-bit interface; their PHYs are taken equal to HBM2E's (assumption).
GDDR_PHY_MM2_PER_32BIT = 1.45            # DDR5 PHY per 32-bit channel, proxy for GDDR6
GDDR_CTRL_TRANSISTORS_PER_32BIT = 90_446_400
LINK_UNIT_BYTES_PER_S = 25e9             # one NVLink3/4 link: 25 GB/s per direction
LINK_PHY_MM2 = {"nvlink3": 1.888, "nvlink4": 0.965}
LINK_CTRL_TRANSISTORS = {"nvlink3": 74_632_000, "nvlink4": 86_628_000}
PCIE_PHY_MM2_PER_LANE = {"pcie4": 0.48, "pcie5": 0.64}
PCIE_CTRL_TRANSISTORS_PER_LANE = {"pcie4": 3_962_500, "pcie5": 5_372_100}
HOST_PCIE_LANES = 16

# Die-to-die links inside a package (chiplets): UCIe 1.0 advanced package (2.5D, 25-55 um bump
# pitch), the upper end of its key performance targets: 1,350 GB/s per mm2 of PHY (both directions
# together) and 0.3 pJ/bit above 16 GT/s (UCIe 1.0 specification and white paper, 2022; Das Sharma
# et al., IEEE TCPMT 12(9), 2022; Das Sharma, Hot Interconnects 2025). Latency: hardware.components.
D2D_BYTES_PER_S_PER_MM2 = 1350e9
D2D_J_PER_BYTE = 0.3e-12 * 8

# Largest die a lithography scanner exposes: 26 mm x 33 mm field.
RETICLE_LIMIT_MM2 = 858.0

# --- wafers (300 mm), defects, memory prices -------------------------------------------------------
# Wafer cost (USD): Khan & Mann, CSET 2020 (7 nm 9,346; 5 nm 16,988; 16/12 nm 3,984, the 14/16 nm
# figure); 4 nm priced as its 5 nm family; 3 nm ~20,000 USD (TSMC N3 price reported by DigiTimes, 2022).
WAFER_COST_USD = {16: 3984.0, 12: 3984.0, 7: 9346.0, 5: 16988.0, 4: 16988.0, 3: 20000.0}
# Defect density (per mm2): LLMCompass supply-chain model from TSMC's public slides; 4 and 3 nm
# taken as 5 nm's (assumption).
DEFECTS_PER_MM2 = {16: 0.001, 12: 0.001, 7: 0.0015, 5: 0.002, 4: 0.002, 3: 0.002}
YIELD_CLUSTER_ALPHA = 3.0                 # negative-binomial clustering (Moonwalk; LLMCompass)
WAFER_DIAMETER_MM = 300.0
# Package and assembly (USD): Moonwalk starter values used by LLMCompass; 2.5D interposers cost
# more and are not modelled.
PACKAGE_COST_USD = 21.0
# Memory price per GB, dated. HBM2E 7 USD/GB (LLMCompass, 2023 consumer estimates). HBM3 and HBM3E:
# assumption, +40% and +70% over HBM2E (TrendForce 2024 reports HBM3E premiums in that range).
# GDDR6: 2.4 USD/GB, the DDR5 spot price LLMCompass uses (Oct 2023), as a floor.
MEMORY_USD_PER_GB = {"hbm2": 7.0, "hbm2e": 7.0, "hbm3": 9.8, "hbm3e": 11.9, "gddr6": 2.4}

# --- energy (joules) -------------------------------------------------------------------------------
# Node scaling of dynamic energy relative to 7 nm, from TSMC's iso-speed power claims: N7 -60% vs
# 16FF+, 12FFN ~-10% vs 16FF+, N5 -30% vs N7, N4P -22% vs N5, N3E -32% vs N5.
ENERGY_VS_7NM = {16: 2.5, 12: 2.25, 7: 1.0, 5: 0.70, 4: 0.70 * 0.78, 3: 0.70 * 0.68}
# One fp16 multiply with fp32 accumulate in a PE, operand registers included, at 7 nm: Horowitz
# (ISSCC 2014) gives 1.1 pJ (fp16 mul) + 0.9 pJ (fp32 add) at 45 nm; x0.25 to 7 nm (assumption,
# wire and register energy scale less than logic). fp8/int8 multipliers cost about half.
MAC_J_7NM = {"fp16": 0.5e-12, "fp8": 0.25e-12, "int8": 0.25e-12}
VECTOR_OP_J_7NM = 0.25e-12               # fp32 elementwise op (Horowitz 0.9 pJ fp32 add @45 nm, x0.25)
# SRAM access energy per byte at 7 nm: Horowitz 45 nm, 64-bit reads: 10 pJ (8 KiB) and 100 pJ
# (1 MiB), x0.1 for 45 -> 7 nm (TSMC iso-speed power chain 40 -> 28 -> 16 -> 7 nm).
LOCAL_SRAM_J_PER_BYTE_7NM = 10e-12 / 8 * 0.1
GLOBAL_SRAM_J_PER_BYTE_7NM = 100e-12 / 8 * 0.1
# DRAM interface energy per byte: HBM2/2E 3.9 pJ/bit (O'Connor et al., MICRO 2017); HBM3/3E
# 3.0 pJ/bit (assumption: lower I/O voltage, SK hynix HBM3 claims); GDDR6 7.5 pJ/bit (Micron TN-ED-04).
DRAM_J_PER_BYTE = {"hbm2": 3.9e-12 * 8, "hbm2e": 3.9e-12 * 8, "hbm3": 3.0e-12 * 8, "hbm3e": 3.0e-12 * 8,
                   "gddr6": 7.5e-12 * 8}
# Chip-to-chip SerDes (NVLink-class, 50-112 Gb/s): ~5 pJ/bit (ISSCC long-reach SerDes papers).
LINK_J_PER_BYTE = 5e-12 * 8
# Leakage and idle clocking: assumption, 0.05 W per mm2 of die (an A100 idles near 50-60 W).
STATIC_W_PER_MM2 = 0.05


def node_table(table: dict, node_nm: int, what: str):
    try:
        return table[node_nm]
    except KeyError:
        raise ConfigError("node_nm", node_nm,
                          f"no {what} for this node (known: {', '.join(map(str, table))})") from None
