"""GPU presets from vendor datasheets and example ADOR designs.

HBM stacks: A100 and H100 SXM carry six HBM sites of which five are active (A100 and Hopper
whitepapers: 5 x 16 GB stacks make 80 GB; the sixth site holds a spacer); H200 enables all six
(141 GB of 6 x 24 GB); MI300X and B200 carry eight (data sheets).

Peak FLOP/s are *dense* tensor-core figures (SIMT: the non-tensor fp32 rate) (datasheets print sparse
ones with a footnote; dense is half). Memory capacity is what software sees (nvidia-smi / rocm-smi),
which for HBM parts is the marketed figure in GiB. Link bandwidth is per direction for all links of one GPU together.
The efficiencies are fitted separately (``ador/hardware/calibration.py``).
"""
from __future__ import annotations

from ador.hardware.components import GiB, KiB, MiB, GlobalSram, Hbm, Links, MacTrees, Noc, SystolicArrays, VectorUnit
from ador.hardware.devices import AdorChip, Chiplet, GemmSchedule, GpuSpec


# Hopper's GEMMs run as persistent kernels whose tile scheduler can spread the K iterations of all
# output tiles over the SMs (CUTLASS 3.x: PersistentTileSchedulerSm90StreamK,
# cutlass/gemm/kernel/sm90_tile_scheduler_stream_k.hpp; cuBLAS's kernels are not public, but the CUDA 13
# cuBLAS that PyTorch calls behaves so). Measured: 228 bf16/fp8 GEMMs on an H200 swept across wave
# boundaries (m 256-4,096, n 1,024-8,192 in steps of 128, k 8,192; ador/data/own/gemm-waves-h200.json)
# show no partial-wave step:
# priced with an efficiency and a fixed cost fitted to each, whole waves of 128 x 128 tiles miss them by
# 14.5% (bf16) and 14.0% (fp8), stream-K by 5.8% and 4.9% (``ador.validation.gemm.waves``; on the H100
# 13.6% and 14.4% against 5.9% and 5.1%).
# A100, L40S and MI300X keep whole waves: NVIDIA's Matrix Multiplication Background User's Guide
# ("Wave quantization") shows them on the A100's 108 SMs, and the public rows (A100 most of them) fit
# worse without them (docs/modelling.md, tiling row); none of the three has been swept.
HOPPER_GEMM_SCHEDULE: GemmSchedule = "stream-k"
# HGX H100, H200 and B200 boards connect their GPUs through NVSwitches that can reduce in the switch
# (NVLink SHARP; NCCL's NVLS all-reduce), a topology the model knows ("reducing_switch"). The presets
# keep a plain "switch": refitted with it, the public rows move Hopper's efficiencies down and our own
# held-out H100/H200 rows get worse (docs/validation.md, "One all-reduce"; benchmarks/nvls_fit.py).
NVLS_BOARDS = ("h100-sxm-80gb", "h200-sxm-141gb", "b200-sxm-192gb")

# Last-level cache read bandwidth, whole chip, working set inside the L2, measured by one read-only
# kernel on every GPU (te42kyfo/gpu-benches, gpu-l2-cache/: a100_80.txt ~5.4 TB/s at 2-28 MB,
# h200.txt ~9.7 TB/s at 10-40 MB, l40.txt ~5.2 TB/s at 1.5-92 MB). The H100 SXM is the H200's die at
# the same SM count and clock; the L40 is the L40S's AD102 at its SM count. Vendors publish a peak only
# for GA100 (A100 whitepaper: 5,120 B/clk, 7.2 TB/s at 1,410 MHz), which kernels do not reach.
L2_BW_A100 = 5.4e12
L2_BW_GH100 = 9.7e12
L2_BW_AD102 = 5.2e12
# Chips and Cheese, "Nvidia's B200: Keeping the CUDA Juggernaut Rolling": 16.8 TB/s across the two
# dies' L2 partitions (21 TB/s within one)
L2_BW_B200 = 16.8e12

_GPU_SPECS = (
    GpuSpec(
        name="a100-sxm-80gb", memory_kind="hbm2e", memory_stacks=5, memory_sites=6,
        vendor="NVIDIA", simt_flops_per_s=19.5e12, fp16_flops_per_s=312e12, fp8_flops_per_s=0.0,
        int8_ops_per_s=624e12, hbm_bw_bytes_per_s=2039e9, hbm_capacity_bytes=80 * GiB, l2_bytes=40 * MiB,
        sm_count=108, freq_hz=1.41e9, link_bw_bytes_per_s=300e9, die_area_mm2=826.0, node_nm=7, tdp_w=400.0,
        l2_bw_bytes_per_s=L2_BW_A100,
        source="NVIDIA A100 datasheet (2021) and A100 architecture whitepaper (GA100: 826 mm2, TSMC N7); "
               "NVLink3 600 GB/s bidirectional",
    ),
    GpuSpec(
        name="a100-sxm-40gb", memory_kind="hbm2", memory_stacks=5, memory_sites=6,
        vendor="NVIDIA", simt_flops_per_s=19.5e12, fp16_flops_per_s=312e12, fp8_flops_per_s=0.0,
        int8_ops_per_s=624e12, hbm_bw_bytes_per_s=1555e9, hbm_capacity_bytes=40 * GiB, l2_bytes=40 * MiB,
        sm_count=108, freq_hz=1.41e9, link_bw_bytes_per_s=300e9, die_area_mm2=826.0, node_nm=7, tdp_w=400.0,
        l2_bw_bytes_per_s=L2_BW_A100,
        source="NVIDIA A100 datasheet (2021): HBM2 1555 GB/s, 40 GB",
    ),
    GpuSpec(
        name="h100-sxm-80gb", memory_kind="hbm3", memory_stacks=5, memory_sites=6,
        vendor="NVIDIA", simt_flops_per_s=66.9e12, fp16_flops_per_s=989.4e12, fp8_flops_per_s=1978.9e12,
        int8_ops_per_s=1978.9e12, hbm_bw_bytes_per_s=3.35e12, hbm_capacity_bytes=80 * GiB, l2_bytes=50 * MiB,
        sm_count=132, freq_hz=1.98e9, link_bw_bytes_per_s=450e9, die_area_mm2=814.0, node_nm=5, tdp_w=700.0,
        gemm_schedule=HOPPER_GEMM_SCHEDULE,
        l2_bw_bytes_per_s=L2_BW_GH100,
        source="NVIDIA H100 datasheet (SXM5) and Hopper whitepaper (GH100: 814 mm2, TSMC 4N, a 5 nm-class "
               "process); NVLink4 900 GB/s bidirectional",
    ),
    GpuSpec(
        name="h200-sxm-141gb", memory_kind="hbm3e", memory_stacks=6, memory_sites=6,
        vendor="NVIDIA", simt_flops_per_s=66.9e12, fp16_flops_per_s=989.4e12, fp8_flops_per_s=1978.9e12,
        int8_ops_per_s=1978.9e12, hbm_bw_bytes_per_s=4.8e12, hbm_capacity_bytes=141 * GiB, l2_bytes=50 * MiB,
        sm_count=132, freq_hz=1.98e9, link_bw_bytes_per_s=450e9, die_area_mm2=814.0, node_nm=5, tdp_w=700.0,
        gemm_schedule=HOPPER_GEMM_SCHEDULE,
        l2_bw_bytes_per_s=L2_BW_GH100,
        source="NVIDIA H200 datasheet (SXM): GH100 with 141 GB HBM3e at 4.8 TB/s",
    ),
    GpuSpec(
        name="l40s-48gb", memory_kind="gddr6", memory_stacks=0, memory_sites=0,
        vendor="NVIDIA", simt_flops_per_s=91.6e12, fp16_flops_per_s=362.05e12, fp8_flops_per_s=733e12,
        int8_ops_per_s=733e12, hbm_bw_bytes_per_s=864e9, hbm_capacity_bytes=46068 * MiB, l2_bytes=96 * MiB,
        sm_count=142, freq_hz=2.52e9, link_bw_bytes_per_s=31.5e9, link_latency_s=10e-6, die_area_mm2=608.5,
        node_nm=5, tdp_w=350.0,
        l2_bw_bytes_per_s=L2_BW_AD102,
        source="NVIDIA L40S datasheet (AD102: 608.5 mm2, TSMC 4N); GDDR6 864 GB/s, 46068 MiB visible with "
               "ECC on; no NVLink, PCIe 4.0 x16 at 31.5 GB/s per direction",
    ),
    GpuSpec(
        name="mi300x-192gb", memory_kind="hbm3", memory_stacks=8, memory_sites=8,
        vendor="AMD", simt_flops_per_s=163.4e12, fp16_flops_per_s=1307.4e12, fp8_flops_per_s=2614.9e12,
        int8_ops_per_s=2614.9e12, hbm_bw_bytes_per_s=5.3e12, hbm_capacity_bytes=192 * GiB, l2_bytes=256 * MiB,
        sm_count=304, freq_hz=2.1e9, link_bw_bytes_per_s=448e9, topology="fully_connected",
        die_area_mm2=2400.0, node_nm=5, tdp_w=750.0,
        # N6 is TSMC's 7 nm family (N7's design rules, EUV layers added): the I/O dies are costed at 7 nm
        chiplets=(Chiplet(count=8, area_mm2=115.0, node_nm=5), Chiplet(count=4, area_mm2=370.0, node_nm=7)),
        source="AMD Instinct MI300X data sheet (304 CUs, 5.3 TB/s HBM3, 256 MB Infinity Cache as l2_bytes; "
               "7 Infinity Fabric links, 896 GB/s peer bidirectional); area: 8 XCDs (~115 mm2, N5) plus 4 IODs "
               "(~370 mm2, N6), AMD ISSCC 2024",
    ),
    GpuSpec(
        name="b200-sxm-192gb", memory_kind="hbm3e", memory_stacks=8, memory_sites=8,
        vendor="NVIDIA", simt_flops_per_s=75e12, fp16_flops_per_s=2.25e15, fp8_flops_per_s=4.5e15,
        int8_ops_per_s=4.5e15, hbm_bw_bytes_per_s=8.0e12, hbm_capacity_bytes=180 * GiB, l2_bytes=126 * MiB,
        sm_count=148, freq_hz=1.965e9, link_bw_bytes_per_s=900e9, die_area_mm2=1600.0, node_nm=4,
        tdp_w=1000.0,
        # an assumption, unvalidated as the B200 is: Blackwell's CUTLASS/cuBLAS GEMMs are persistent kernels
        # too (CUTLASS 3.8+ sm100 kernels take their tiles from a dynamic, cluster-launch-control scheduler)
        gemm_schedule="stream-k",
        l2_bw_bytes_per_s=L2_BW_B200,
        source="NVIDIA HGX B200 datasheet (per GPU: 2.25 PF dense FP16, 4.5 PF dense FP8, 8 TB/s, 180 GB "
               "usable of 192 GB HBM3e, NVLink5 1.8 TB/s bidirectional, 1000 W; read in GiB as the other HBM parts: "
               "nvidia-smi shows 183,359 MiB, TensorRT-LLM issue 10278); two reticle-sized dies (~800 mm2 each, "
               "TSMC 4NP)",
    ),
)

# An example heterogeneous design at the A100's technology (7 nm, HBM2E, NVLink3-class links):
# TPUv4-like matrix units (128x128 arrays at 1.05 GHz, Jouppi et al. ISCA 2023; 8 of them match
# the A100's 312 dense fp16 TFLOP/s with the MAC trees) for prefill,
# MAC trees for decode, and the A100's five HBM stacks. A starting point, not an optimum.
ADOR_EXAMPLE = AdorChip(
    name="ador-example",
    systolic=SystolicArrays(count=8, rows=128, cols=128, dataflow="weight_stationary", local_sram_bytes=4 * MiB),
    mactree=MacTrees(count=64, width=256, local_buffer_bytes=256 * KiB, buffer="shared",
                     shared_buffer_bytes=4 * MiB),
    vector=VectorUnit(lanes=2048, sfu_per_cycle=256),
    sram=GlobalSram(capacity_bytes=48 * MiB, bw_bytes_per_s=6e12),
    hbm=Hbm(stacks=5, generation="hbm2e", bw_bytes_per_s_per_stack=408e9, capacity_bytes_per_stack=16 * GiB),
    noc=Noc(bw_bytes_per_s=6e12),
    links=Links(count=12, bw_bytes_per_s_per_link=25e9, latency_s=2e-6, topology="switch"),
    freq_hz=1.05e9,
    node_nm=7,
)

ADOR_PRESETS: dict[str, AdorChip] = {ADOR_EXAMPLE.name: ADOR_EXAMPLE}
