import dataclasses
import math

import pytest
from hypothesis import given, strategies as st

from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.perf import evaluate, stage_time
from ador.perf import ador_engines, gpu
from ador.perf.stage import rates
from ador.perf.peaks import peak_flops
from ador.workload import ZOO, decode_step, get_precision, prefill
from ador.workload.ops import COLLECTIVES
from tests.strategies import ador_chips

FP16 = get_precision("fp16")
FP8 = get_precision("fp8")
A100 = PRESETS["a100-sxm-80gb"]
H100 = PRESETS["h100-sxm-80gb"]
ADOR = PRESETS["ador-example"]


def _op_time(device, op, precision, tp=1):
    module = gpu if device.kind == "gpu" else ador_engines
    return module.op_time(device, op, precision, tp, rates(System(device=device)))[0]


@pytest.mark.parametrize("device", [A100, H100, ADOR], ids=lambda d: d.name)
@pytest.mark.parametrize("stage", ["prefill", "decode"])
def test_no_operator_beats_its_roofline_floor(device, stage):
    model = ZOO["llama-3-70b"]
    ops = prefill(model, FP16, 8, 4, 1024) if stage == "prefill" else decode_step(model, FP16, 8, 64, 3000)
    peak = peak_flops(device, "fp16")
    for op in ops:
        if op.kind in COLLECTIVES:
            floor = op.comm_bytes * (7 / 8) / device.link_bw_bytes_per_s
        else:
            # weights and KV always come from HBM; activations may stay on chip
            floor = max(op.flops / peak, (op.weight_bytes + op.kv_bytes) / device.hbm_bw_bytes_per_s)
        assert _op_time(device, op, FP16, 8) >= floor * (1 - 1e-9), op.name


def test_tensor_parallel_speeds_up_both_phases():
    model = ZOO["llama-2-70b"]
    prev_ttft = prev_tbt = math.inf
    for tp in (2, 4, 8):
        r = evaluate(System(device=A100, tp=tp), model, FP16, batch=1, input_len=2048, output_len=64)
        assert r.ttft_s < prev_ttft and r.tbt_s < prev_tbt
        prev_ttft, prev_tbt = r.ttft_s, r.tbt_s


def test_heterogeneous_engine_choice_on_ador():
    model = ZOO["llama-3-70b"]
    system = System(device=ADOR, tp=8)
    pre = stage_time(system, FP16, prefill(model, FP16, 8, 1, 2048))
    dec = stage_time(system, FP16, decode_step(model, FP16, 8, 1, 2048))
    engines = {t.name: t.engine for t in pre.breakdown}
    assert engines["ffn_up"] == "systolic" and engines["attention"] == "systolic"
    engines = {t.name: t.engine for t in dec.breakdown}
    assert engines["ffn_up"] == "mactree"
    # forcing the decode onto the systolic arrays (as a GPU-like chip would) is slower
    forced = stage_time(system, FP16, decode_step(model, FP16, 8, 1, 2048), engines={"decode": "systolic"})
    assert forced.time_s > dec.time_s


def test_fp8_needs_fp8_tensor_cores():
    with pytest.raises(ConfigError, match="precision='fp8'.*a100"):
        evaluate(System(device=A100), ZOO["llama-2-7b"], FP8, batch=1, input_len=128, output_len=8)
    fp8 = evaluate(System(device=H100), ZOO["llama-2-7b"], FP8, batch=1, input_len=2048, output_len=8)
    fp16 = evaluate(System(device=H100), ZOO["llama-2-7b"], FP16, batch=1, input_len=2048, output_len=8)
    assert fp8.ttft_s < fp16.ttft_s and fp8.tbt_s < fp16.tbt_s


def test_evaluation_identities_and_fit():
    r = evaluate(System(device=A100, tp=8), ZOO["llama-2-70b"], FP16, batch=8, input_len=512, output_len=100)
    assert r.e2e_s == pytest.approx(r.ttft_s + 99 * r.tbt_s)
    assert r.output_tok_s == pytest.approx(8 * 100 / r.e2e_s)
    assert r.fits
    big = evaluate(System(device=A100), ZOO["llama-3.1-405b"], FP16, batch=1, input_len=128, output_len=8)
    assert not big.fits and big.memory.weight_bytes > 700e9
    # beyond the trained context the run is still priced (RoPE models are run there), but flagged
    long = evaluate(System(device=A100), ZOO["gpt-j-6b"], FP16, batch=1, input_len=2000, output_len=100)
    assert long.exceeds_context and long.to_dict()["exceeds_context"] is True
    assert not r.exceeds_context


def test_mean_tbt_lies_between_first_and_last_step():
    model, system = ZOO["llama-3-8b"], System(device=A100)
    r = evaluate(system, model, FP16, batch=64, input_len=1024, output_len=2048)
    first = stage_time(system, FP16, decode_step(model, FP16, 1, 64, 1025), breakdown=False).time_s
    last = stage_time(system, FP16, decode_step(model, FP16, 1, 64, 3071), breakdown=False).time_s
    assert first < r.tbt_s < last


def _scale_hbm(chip, factor):
    hbm = dataclasses.replace(chip.hbm, bw_bytes_per_s_per_stack=chip.hbm.bw_bytes_per_s_per_stack * factor)
    return dataclasses.replace(chip, hbm=hbm)


@given(chip=ador_chips(), factor=st.floats(1.0, 8.0), batch=st.integers(1, 256), kv=st.integers(1, 8000),
       model=st.sampled_from(["llama-3-8b", "mixtral-8x7b", "gpt-j-6b"]))
def test_more_hbm_bandwidth_never_slows_decode(chip, factor, batch, kv, model):
    spec = ZOO[model]
    ops = decode_step(spec, FP16, 1, batch, kv)
    slow = stage_time(System(device=chip), FP16, ops, breakdown=False).time_s
    fast = stage_time(System(device=_scale_hbm(chip, factor)), FP16, ops, breakdown=False).time_s
    assert fast <= slow * (1 + 1e-12)


@given(factor=st.floats(1.0, 8.0), batch=st.integers(1, 512), kv=st.integers(1, 4000))
def test_more_hbm_bandwidth_never_slows_gpu_decode(factor, batch, kv):
    faster = dataclasses.replace(A100, hbm_bw_bytes_per_s=A100.hbm_bw_bytes_per_s * factor)
    ops = decode_step(ZOO["llama-2-13b"], FP16, 1, batch, kv)
    assert stage_time(System(device=faster), FP16, ops).time_s <= stage_time(System(device=A100), FP16, ops).time_s


@given(chip=ador_chips(), extra=st.integers(1, 16), sram_factor=st.integers(1, 16),
       tokens=st.integers(1, 4096), batch=st.integers(1, 64))
def test_more_pes_or_sram_never_slow_an_operator(chip, extra, sram_factor, tokens, batch):
    more = extra * chip.dies            # identical dies share the engines evenly
    more_pes = dataclasses.replace(chip, systolic=dataclasses.replace(chip.systolic, count=chip.systolic.count + more),
                                   mactree=dataclasses.replace(chip.mactree, count=chip.mactree.count + more))
    more_sram = dataclasses.replace(chip, sram=dataclasses.replace(
        chip.sram, capacity_bytes=chip.sram.capacity_bytes * sram_factor + 1))
    spec = ZOO["llama-3-8b"]
    for ops in (prefill(spec, FP16, 1, 1, tokens), decode_step(spec, FP16, 1, batch, tokens)):
        for op in ops:
            base = _op_time(chip, op, FP16)
            assert _op_time(more_pes, op, FP16) <= base * (1 + 1e-12), op.name
            assert _op_time(more_sram, op, FP16) <= base * (1 + 1e-12), op.name


@given(chip=ador_chips(), tp=st.sampled_from([1, 2, 4, 8]), batch=st.integers(1, 128),
       input_len=st.integers(1, 4096), output_len=st.integers(1, 1024),
       model=st.sampled_from(["llama-3-70b", "mixtral-8x7b", "falcon-180b", "gpt3-6.7b"]),
       precision=st.sampled_from(["fp16", "fp8", "int4-wo"]))
def test_any_valid_design_gives_finite_positive_results(chip, tp, batch, input_len, output_len, model, precision):
    spec = ZOO[model]
    if input_len + output_len > spec.max_seq_len or spec.n_heads % (tp * chip.dies):
        return                  # (heads the dies cannot share: an error naming dies, tests/test_dies.py)
    r = evaluate(System(device=chip, tp=tp), spec, get_precision(precision), batch=batch, input_len=input_len,
                 output_len=output_len)
    for value in (r.ttft_s, r.tbt_s, r.e2e_s, r.output_tok_s, r.memory.total_bytes):
        assert math.isfinite(value) and value > 0
    assert all(t.time_s > 0 and math.isfinite(t.time_s) for t in r.prefill.breakdown + r.decode.breakdown)


@given(model=st.sampled_from(["llama-3-70b", "mixtral-8x7b", "falcon-180b", "gpt3-175b", "llama-2-7b"]),
       batch=st.integers(1, 256), seq=st.integers(1, 8192), precision=st.sampled_from(["fp16", "fp8", "int4-wo"]))
def test_tensor_parallelism_never_increases_per_device_memory(model, batch, seq, precision):
    from ador.workload import footprint
    spec, p = ZOO[model], get_precision(precision)
    sizes = []
    for tp in (1, 2, 4, 8):
        if spec.n_heads % tp:
            continue
        f = footprint(spec, p, tp, 1, batch, min(seq, 2048), max(seq - 2048, 1))
        sizes.append(f.total_bytes)
    assert sizes == sorted(sizes, reverse=True)


def _decode_attention_seconds(device, runtime, batch, kv, model="llama-3-8b"):
    ops = [op for op in decode_step(ZOO[model], get_precision("bf16"), 1, batch, kv) if op.kind == "attention"]
    r = rates(System(device=device, runtime=runtime))
    return sum(gpu.op_time(device, op, get_precision("bf16"), 1, r)[0] * op.count for op in ops), ops


@given(batch=st.integers(1, 64), kv=st.integers(256, 131072))
def test_an_unsplit_decode_kernel_streams_at_its_blocks_bandwidth(batch, kv):
    """Without KV splitting, one thread block streams each (sequence, KV head): a small batch reads
    its cache at blocks x per-block bandwidth, never faster; splitting is never slower."""
    from ador.hardware.runtime import get_runtime
    from ador.perf.constants import GPU_DECODE_ATTN_BLOCK_BYTES_PER_S
    h200 = PRESETS["h200-sxm-141gb"]
    split_rt = get_runtime("tensorrt-llm")
    unsplit_rt = dataclasses.replace(split_rt, decode_kv_split=False)
    split, ops = _decode_attention_seconds(h200, split_rt, batch, kv)
    unsplit, _ = _decode_attention_seconds(h200, unsplit_rt, batch, kv)
    assert unsplit >= split
    blocks = min(batch * ZOO["llama-3-8b"].n_kv_heads, h200.sm_count)
    floor = sum(op.kv_bytes * op.count for op in ops) / (blocks * GPU_DECODE_ATTN_BLOCK_BYTES_PER_S)
    assert unsplit >= floor * (1 - 1e-9)
    if batch == 1 and kv >= 16384:
        assert unsplit == pytest.approx(floor, rel=0.05)    # the floor is what binds: 8 blocks, not the HBM


def test_per_block_bandwidth_is_what_the_own_measurements_show():
    """The constant's source: attention-only timings on an H100 and an H200, where fewer (sequence,
    KV head) blocks run than would saturate the HBM."""
    import json
    from ador.perf.constants import GPU_DECODE_ATTN_BLOCK_BYTES_PER_S
    from ador.validation.data import DEFAULT_DATA
    kv_heads = ZOO["llama-3-8b"].n_kv_heads
    seen = []
    for name in ("long-context-h100.json", "long-context-h200.json"):
        for point in json.loads((DEFAULT_DATA.parent / "own" / name).read_text())["attention_only"]:
            blocks = point["batch"] * kv_heads
            if blocks <= 64 and point["kv_len"] >= 16384:      # below saturation, past the fixed costs
                seen.append(point["kv_read_gb_s"] * 1e9 / blocks)
    assert len(seen) >= 8
    assert min(seen) >= 0.97 * GPU_DECODE_ATTN_BLOCK_BYTES_PER_S
    assert max(seen) <= 1.05 * GPU_DECODE_ATTN_BLOCK_BYTES_PER_S


def test_a_parallelism_bound_attention_says_so():
    """The breakdown names what holds a decode attention back: too few blocks (unsplit kernel, small
    batch, long cache), else the HBM."""
    from ador.hardware.runtime import get_runtime
    h200 = PRESETS["h200-sxm-141gb"]
    split_rt = get_runtime("tensorrt-llm")
    bf16 = get_precision("bf16")
    op = next(op for op in decode_step(ZOO["llama-3-8b"], bf16, 1, 1, 131072) if op.kind == "attention")
    bounds = {split: gpu.op_time(h200, op, bf16, 1, rates(System(
        device=h200, runtime=dataclasses.replace(split_rt, decode_kv_split=split))))[2] for split in (True, False)}
    assert bounds == {True: "memory", False: "parallelism"}


def test_mac_tree_attention_pays_for_trees_wider_than_the_head():
    """A MAC tree reduces one dot product at a time, width products a cycle (the GEMM rule). QK^T's dot
    products are head_dim (128) long, so 16 trees of 1,024 are no faster at it than 16 of 128, and for
    the same 16,384 multipliers the wide trees take 4.5x longer; attention once divided by the full peak."""
    import dataclasses
    from ador.hardware import get_device
    from ador.hardware.components import MacTrees, SystolicArrays
    from ador.hardware.runtime import get_runtime
    from ador.perf import ador_engines as E
    from ador.perf.rules import rates_of
    base, p = get_device("ador-example"), get_precision("fp16")
    att = next(o for o in decode_step(ZOO["llama-3-70b"], p, 8, 64, 4096) if o.kind == "attention")
    seconds = {}
    for width in (128, 1024):
        chip = dataclasses.replace(base, systolic=SystolicArrays(count=0),
                                   mactree=MacTrees(count=16384 // width, width=width))
        seconds[width] = E.attention_terms(chip, att, p, E.MACTREE, rates_of(chip, get_runtime("ideal")))[0]
        problems, rows = att.groups // att.kv_group, att.m * att.kv_group
        count = 16384 // width
        cycles = problems * (-(-(rows * att.n) // count) * -(-att.k // width)
                             + -(-(rows * att.k) // count) * -(-att.n // width))
        assert seconds[width] == pytest.approx(cycles / chip.freq_hz, rel=0.01)
    assert seconds[1024] > 4 * seconds[128]


def test_a_mac_tree_operator_pays_the_trees_pipeline_fill_once():
    """Dot-product cycles (``width`` products a cycle per tree) leave out the tree's latency: an
    operator adds the log2(width) adder levels and the MACTREE_PIPELINE_CYCLES stages after them
    (operand read, multiplier, accumulator, writeback: a cycle each) once, GEMV and attention alike."""
    from ador.perf.ador_engines import MACTREE, attention_terms, mactree_dot_cycles, mactree_gemm_terms
    from ador.perf.constants import MACTREE_PIPELINE_CYCLES
    assert MACTREE_PIPELINE_CYCLES == 4
    trees, r = ADOR.mactree, rates(System(device=ADOR))
    cycles_per_s = ADOR.freq_hz * ADOR.matrix_efficiency
    fill = math.log2(trees.width) + MACTREE_PIPELINE_CYCLES
    ops = {op.name: op for op in decode_step(ZOO["llama-3-8b"], FP16, 1, 1, 512)}
    gemv = ops["ffn_up"]                                 # fp16: one product per MAC a cycle
    compute = mactree_gemm_terms(ADOR, gemv, FP16, r)[0] * cycles_per_s
    assert compute - mactree_dot_cycles(trees, gemv.m * gemv.n, gemv.k) == pytest.approx(fill)
    att = ops["attention"]                               # QK^T over the head dimension, then PV over the KV
    rows = att.groups * att.m                            # a row per request and query head
    dots = mactree_dot_cycles(trees, rows * att.n, att.k) + mactree_dot_cycles(trees, rows * att.k, att.n)
    compute = attention_terms(ADOR, att, FP16, MACTREE, r)[0] * cycles_per_s
    assert compute - dots == pytest.approx(fill)


@pytest.mark.parametrize("device", [H100, ADOR], ids=["gpu", "ador"])
def test_attention_over_a_16_bit_kv_cache_multiplies_in_16_bit(device):
    """fp8-kv16 runs its linear layers in FP8 but its attention reads a 16-bit cache, so attention's
    MACs run at the 16-bit rate on a GPU and on a design alike (the rule is Precision.mac_dtype);
    with an FP8 cache (fp8) attention keeps the FP8 rate."""
    from ador.perf.rules import rates_of
    from ador.hardware.runtime import get_runtime
    model, r = ZOO["llama-3-8b"], rates_of(device, get_runtime("ideal"))

    def compute_s(name: str, kind: str) -> float:
        p = get_precision(name)
        op = next(o for o in prefill(model, p, 1, 1, 8192) if o.kind == kind)
        if device.kind == "gpu":
            return gpu.op_terms(device, op, p)[0] / gpu.tensor_efficiency(device, p, attention=kind == "attention")
        if kind == "attention":
            return ador_engines.attention_terms(device, op, p, ador_engines.SYSTOLIC, r)[0]
        return ador_engines.systolic_gemm_terms(device, op, p, r)[0]

    assert compute_s("fp8-kv16", "attention") == pytest.approx(compute_s("bf16", "attention"), rel=1e-12)
    assert compute_s("fp8", "attention") < 0.75 * compute_s("bf16", "attention")
    assert compute_s("fp8-kv16", "gemm") == pytest.approx(compute_s("fp8", "gemm"), rel=1e-12)
    assert compute_s("fp8-kv16", "gemm") < 0.75 * compute_s("bf16", "gemm")


def test_a_per_row_int4_kernel_converts_every_weight_once_per_activation_row():
    """tinygemm (gpt-fast's and torchao's int4 kernel) dequantises the weight matrix for every row it
    multiplies: its dequantisation term grows with m; kernels that reuse a dequantised tile convert each
    weight once per block of 64 rows (Marlin's). The fact is the software's (ador.validation.kernels),
    not the precision's."""
    from ador.validation.kernels import kernel_facts
    int4 = get_precision("int4-wo")
    ops = {o.name: o for o in prefill(ZOO["llama-3-8b"], int4, 1, 1, 512)}
    ffn = ops["ffn_up"]
    once = ffn.k * ffn.n * int4.dequant_ops_per_weight / H100.simt_flops_per_s
    # a tile-reusing kernel (Marlin) converts each weight once per block of 64 rows
    assert gpu.op_terms(H100, ffn, int4)[2] == pytest.approx(512 // 64 * once)
    for rows, blocks in ((1, 1), (64, 1), (65, 2), (128, 2)):
        one = {o.name: o for o in prefill(ZOO["llama-3-8b"], int4, 1, 1, rows)}["ffn_up"]
        assert gpu.op_terms(H100, one, int4)[2] == pytest.approx(blocks * once)
    assert gpu.op_terms(H100, ffn, int4, dequant_per_row=("int4-wo",))[2] == pytest.approx(512 * once)
    assert gpu.op_terms(H100, ffn, get_precision("int8-wo"), dequant_per_row=("int4-wo",))[2] == pytest.approx(
        gpu.op_terms(H100, ffn, get_precision("int8-wo"))[2])          # int8's kernels are not tinygemm
    facts = {software: dict(kernel_facts(software))["dequant_per_row"] for software in (
        "gpt-fast", "torchao (torch.compile)", "tensorrt-llm 0.9.0", "vllm 0.6.0",
        "pytorch 2.11.0+cu130 (ador benchmarks/gpu_measure.py: CUDA graphs, tinygemm _weight_int4pack_mm, group 128)",
        "pytorch 2.11.0+cu130 (ador benchmarks/gpu_measure.py: CUDA graphs, cuBLAS, SDPA, unfused)")}
    assert list(facts.values()) == [("int4-wo",), ("int4-wo",), (), (), ("int4-wo",), ()]
    # priced through a runtime profile: a decode step of batch 64 pays 64 conversions of its weights
    from ador.hardware.runtime import get_runtime
    from ador.perf.rules import rates_of
    base = get_runtime("default")
    step = {o.name: o for o in decode_step(ZOO["llama-3-8b"], int4, 1, 64, 1024)}["ffn_up"]
    t_once = gpu.op_time(H100, step, int4, 1, rates_of(H100, base))[0]
    per_row = dataclasses.replace(base, dequant_per_row=("int4-wo",))
    t_rows = gpu.op_time(H100, step, int4, 1, rates_of(H100, per_row))[0]
    dequant_once = gpu.op_terms(H100, step, int4)[2]
    assert t_rows - t_once == pytest.approx(63 * dequant_once / H100.efficiency.dequant)


def test_an_lm_head_kept_in_16_bit_is_not_dequantised():
    """Weight-only conversion applies to the weights stored quantised: fp8-wo keeps the LM head in 16
    bits and a tied head is the 16-bit embedding table, so neither pays it; gpt-fast's int4 head does."""
    model = ZOO["llama-3-8b"]
    tied = dataclasses.replace(model, tied_embeddings=True)
    for m, name, converted in ((model, "int4-wo", True), (model, "fp8-wo", False), (tied, "int4-wo", False)):
        p = get_precision(name)
        head = next(o for o in decode_step(m, p, 1, 8, 512) if o.name == "lm_head")
        ffn = next(o for o in decode_step(m, p, 1, 8, 512) if o.name == "ffn_up")
        assert (gpu.op_terms(H100, head, p, dequant_per_row=(name,))[2] > 0) == converted, (m.name, name)
        assert gpu.op_terms(H100, ffn, p)[2] > 0


def test_iso_matrix_efficiency_needs_one_mac_datatype():
    """An ADOR design has one matrix efficiency; fp8-kv16's GPU multiplies attention at its 16-bit and its
    linear layers at its FP8 efficiency, so 'equal' names no single value and is refused."""
    assert gpu.single_tensor_efficiency(H100, FP8) == H100.efficiency.tensor_fp8
    with pytest.raises(ConfigError, match="precision='fp8-kv16'"):
        gpu.single_tensor_efficiency(H100, get_precision("fp8-kv16"))


@pytest.mark.parametrize("bad", ["int4-wo", ["int4-wo", 4]])
def test_dequant_per_row_must_be_a_list_of_precision_names(bad):
    from ador.hardware.runtime import RuntimeProfile
    with pytest.raises(ConfigError, match="dequant_per_row"):
        RuntimeProfile(name="x", dequant_per_row=bad)


def test_a_per_query_head_decode_kernel_rereads_its_kv_head_through_l2():
    """A decode kernel that does not group a KV head's query heads reads the head once per query head
    (ador.validation.kernels: TensorRT-LLM <= 0.9's masked kernel off XQA's 8x128 shapes). When the
    group's thread blocks read the same head together, DRAM serves it once and the L2 every read: the
    DRAM term keeps the unique bytes and the L2 bandwidth sets a floor. When the runtime copies the
    head for each query head first (gpt-fast's repeat_interleave), every read is DRAM traffic."""
    from ador.validation.kernels import kernel_facts
    fp8 = get_precision("fp8")
    mistral = ZOO["mistral-7b"]                              # 32 query heads over 8 KV heads of dim 128
    att = next(o for o in decode_step(mistral, fp8, 1, 64, 2048) if o.kind == "attention")
    group = att.kv_group
    assert group == 4

    def per_head(g, d):
        return g
    shared = gpu.op_terms(H100, att, fp8)
    via_l2 = gpu.op_terms(H100, att, fp8, kv_reads=per_head, kv_l2=True)
    copies = gpu.op_terms(H100, att, fp8, kv_reads=per_head)              # the default: every read from DRAM
    assert H100.l2_bw_bytes_per_s > H100.hbm_bw_bytes_per_s
    assert via_l2[1] == pytest.approx(shared[1]) and shared[3] == 0.0
    assert via_l2[3] == pytest.approx(group * att.kv_bytes / H100.l2_bw_bytes_per_s)
    assert copies[1] == pytest.approx((group * att.kv_bytes + att.act_bytes) / H100.hbm_bw_bytes_per_s)
    assert copies[3] == 0.0
    no_figure = dataclasses.replace(H100, l2_bw_bytes_per_s=0.0)    # without a cache figure: all from DRAM
    assert gpu.op_terms(no_figure, att, fp8, kv_reads=per_head, kv_l2=True)[1] == pytest.approx(copies[1])
    # through a runtime profile: gpt-fast's copies cost DRAM time, a kernel re-reading one head does not,
    # and the breakdown says what binds
    from ador.hardware.runtime import get_runtime
    from ador.perf.rules import rates_of
    expanded = get_runtime("gpt-fast")
    assert not expanded.kv_rereads_from_l2 and expanded.decode_kv_reads(group, att.k) == group
    one_head = dataclasses.replace(expanded, kv_rereads_from_l2=True, decode_kv_split=True)
    (t_copies, _, bound_copies), (t_one, _, bound_one) = (gpu.op_time(H100, att, fp8, 1, rates_of(H100, r))
                                                          for r in (expanded, one_head))
    assert t_copies > 1.5 * t_one and bound_one == "l2" and bound_copies != "l2"
    long = next(o for o in decode_step(mistral, fp8, 1, 1, 32000) if o.kind == "attention")
    unsplit = dataclasses.replace(one_head, decode_kv_split=False)        # one sequence: too few blocks
    assert gpu.op_time(H100, long, fp8, 1, rates_of(H100, unsplit))[2] == "parallelism"

    # which software does what (TensorRT-LLM <= 0.9's XQA coverage only where it is priced)
    from ador.validation.kernels import xqa_coverage
    software = ("tensorrt-llm 0.8.0", "tensorrt-llm 0.6.1", "tensorrt-llm 0.5.0", "tensorrt-llm", "gpt-fast",
                "vllm 0.6.0")
    for priced, xqa, before_xqa in ((False, ("any",), ("any",)), (True, ("8x128",), ())):
        with xqa_coverage(priced):
            facts = [dict(kernel_facts(s)) for s in software]
        assert [f["grouped_kv_decode"] for f in facts] == [xqa, before_xqa, before_xqa, ("any",), (), ("any",)]
        assert [f["kv_rereads_from_l2"] for f in facts] == [True, True, True, True, False, False]
    assert dict(kernel_facts("tensorrt-llm 0.13.0"))["grouped_kv_decode"] == ("any",)


def test_l2_rereads_bind_where_the_l2_is_fast_beside_dram_and_not_where_it_is_not():
    """The same Mistral-7B decode step under TensorRT-LLM 0.8's kernels (XQA for 8x128 only): slower
    than with grouped reads on an H200 (HBM3e at 4.8 TB/s beside its L2), not on an L40S (GDDR6 at
    0.86 TB/s), which is what the release's published runs show (docs/validation.md)."""
    from ador.hardware.runtime import get_runtime
    model, fp8 = ZOO["mistral-7b"], get_precision("fp8")
    new = get_runtime("default")
    old = dataclasses.replace(new, grouped_kv_decode=("8x128",), kv_rereads_from_l2=True)   # XQA's shapes only
    slow = {}
    for name in ("h200-sxm-141gb", "l40s-48gb"):
        device = PRESETS[name]
        t = [evaluate(System(device=device, tp=1, runtime=r), model, fp8, batch=120, input_len=128,
                      output_len=2048).tbt_s for r in (old, new)]
        slow[name] = t[0] / t[1]
    assert slow["h200-sxm-141gb"] > 1.1 and slow["l40s-48gb"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("input_len", [1, 2, 128, 2048])
def test_a_runtime_whose_first_token_comes_from_decode_pays_one_decode_step(input_len):
    """TurboMind before lmdeploy 0.1.0a2: the prefill pass stops one prompt token short and a decode
    step over the last one emits the first token; the decode steps after it are unchanged."""
    from ador.hardware.runtime import get_runtime
    base = get_runtime("tensorrt-llm")
    turbo = dataclasses.replace(base, first_token_from_decode=True)
    model, p = ZOO["llama-2-7b"], get_precision("fp16")
    device = PRESETS["a100-sxm-80gb"]
    plain = evaluate(System(device=device, runtime=base), model, p, batch=1, input_len=input_len, output_len=16)
    got = evaluate(System(device=device, runtime=turbo), model, p, batch=1, input_len=input_len, output_len=16)
    system = System(device=device, runtime=turbo)
    prefilled = stage_time(system, p, prefill(model, p, 1, 1, input_len - 1), breakdown=False).time_s \
        if input_len > 1 else 0.0      # a one-token prompt has no prefill pass at all
    step = stage_time(system, p, decode_step(model, p, 1, 1, input_len), breakdown=False).time_s
    assert got.ttft_s == pytest.approx(turbo.request_overhead_s + prefilled + step, rel=1e-12)
    assert got.tbt_s == plain.tbt_s
    assert got.e2e_s == pytest.approx(got.ttft_s + 15 * got.tbt_s, rel=1e-12)
    if input_len == 1:
        assert got.ttft_s == pytest.approx(plain.ttft_s, rel=1e-12)   # a one-token prefill is that decode step
        assert got.activity() == pytest.approx(plain.activity(), rel=1e-12)
    else:
        assert got.ttft_s > plain.ttft_s   # the decode step streams every weight once more ...
        extra = got.activity()["dram_bytes"] - plain.activity()["dram_bytes"]
        assert extra >= 0.99 * sum(op.weight_bytes * op.count for op in decode_step(model, p, 1, 1, input_len))


@pytest.mark.parametrize("software, from_decode", [
    ("lmdeploy 0.1.0a1 (turbomind)", True), ("lmdeploy 0.1.0a0", True), ("lmdeploy v0.0.9", True),
    ("lmdeploy 0.1.0.dev0", True), ("lmdeploy 0.1.0-alpha1", True), ("lmdeploy 0.1.0a2", False),
    ("lmdeploy 0.1.0", False), ("lmdeploy 0.2.0rc1", False), ("lmdeploy 0.10.0", False), ("lmdeploy", False),
    ("tensorrt-llm 0.9.0", False), ("vllm 0.1.0a1", False)])
def test_only_turbomind_before_its_unified_passes_emits_the_first_token_from_decode(software, from_decode):
    from ador.validation.kernels import kernel_facts
    assert dict(kernel_facts(software))["first_token_from_decode"] is from_decode


@pytest.mark.parametrize("software, grouped", [
    ("tensorrt-llm 0.5.0", ()), ("tensorrt-llm 0.6.1", ()), ("tensorrt-llm v0.7a (preliminary)", ("8x128",)),
    ("tensorrt-llm 0.7.1", ("8x128",)), ("tensorrt-llm 0.9.0", ("8x128",)), ("tensorrt-llm 0.10.0", ("any",)),
    ("tensorrt-llm", ("any",))])
def test_tensorrt_llm_groups_query_heads_from_xqa_on(software, grouped):
    """TensorRT-LLM before 0.7 had no XQA kernel: its masked kernel reads a KV head once per query head
    for every GQA shape; 0.7-0.9 group XQA's 8x128 shape only; later releases every shape
    (ador.validation.kernels, with its sources)."""
    from ador.validation.kernels import kernel_facts
    assert dict(kernel_facts(software))["grouped_kv_decode"] == grouped


@pytest.mark.parametrize("software, grouped, heads", [
    ("lmdeploy 0.1.0a1 (turbomind)", (), (4, 2)), ("lmdeploy 0.1.0a0", (), (4, 2)), ("lmdeploy 0.2.6", (), (4, 2)),
    ("lmdeploy 0.3.0", ("any",), ()), ("lmdeploy 0.10.0", ("any",), ()), ("lmdeploy", ("any",), ()),
    ("lmdeploy 0.0.14", ("any",), ()),
    ("vllm 0.2.0", ("any",), ()), ("tensorrt-llm 0.13.0", ("any",), ())])
def test_turbomind_2_serves_at_most_four_query_heads_a_thread_block(software, grouped, heads):
    """lmdeploy 0.1-0.2's decoder attention (TurboMind 2) dispatches 4, 2 or 1 query heads a thread
    block, its 8-head case commented out; the refactor in 0.3 replaced it (ador.validation.kernels)."""
    from ador.validation.kernels import kernel_facts
    facts = dict(kernel_facts(software))
    assert (facts["grouped_kv_decode"], facts["decode_heads_per_block"]) == (grouped, heads)


def test_a_kv_head_is_read_once_per_thread_block_of_its_query_group():
    """Each thread block loads its KV head: a group of 8 served 4 heads a block reads it twice, a
    group of 6 (4 does not divide it) 3 times, a group of 3 once per query head; a kernel that shares
    it over the whole group reads it once. The DRAM term of a decode attention counts every read."""
    from ador.hardware.runtime import RuntimeProfile
    turbo2 = RuntimeProfile(name="t", grouped_kv_decode=(), decode_heads_per_block=(4, 2))
    assert [turbo2.decode_kv_reads(g, 128) for g in (1, 2, 3, 4, 6, 8, 16)] == [1, 1, 3, 1, 3, 2, 4]
    assert RuntimeProfile(name="t", grouped_kv_decode=()).decode_kv_reads(8, 128) == 8
    assert RuntimeProfile(name="t", decode_heads_per_block=(4, 2)).decode_kv_reads(8, 128) == 1   # "any"
    fp16 = get_precision("fp16")
    llama70 = ZOO["llama-2-70b"]                                 # 64 query heads over 8 KV heads
    att = next(o for o in decode_step(llama70, fp16, 4, 64, 2048) if o.kind == "attention")
    assert att.kv_group == 8
    twice = gpu.op_terms(A100, att, fp16, kv_reads=turbo2.decode_kv_reads)
    assert twice[1] == pytest.approx((2 * att.kv_bytes + att.act_bytes) / A100.hbm_bw_bytes_per_s)
    for bad in (("4",), (0,), (True,), "4", 4):
        with pytest.raises(ConfigError, match="decode_heads_per_block"):
            RuntimeProfile(name="t", decode_heads_per_block=bad)
    from ador.config import from_mapping                          # as a profile's YAML gives it
    loaded = from_mapping(RuntimeProfile, {"name": "t", "decode_heads_per_block": [4, 2]})
    assert loaded.decode_heads_per_block == (4, 2)
    with pytest.raises(ConfigError, match="decode_heads_per_block"):
        from_mapping(RuntimeProfile, {"name": "t", "decode_heads_per_block": [0]})


def test_lmdeploy_llama_2_70b_decode_steps_grow_with_the_kv_cache_as_measured():
    """The published TurboMind 2 rows (lmdeploy 0.1.0a1, Llama-2-70B, TP4 on A100s): a step's median
    time grows with batch x context about twice as fast as one read of the KV cache explains; priced
    with each KV head read by both of its group's thread blocks, the longest-context rows are within
    4.5% (they were 7.0-18.4% short with one read)."""
    from ador.validation.data import load_measurements
    from ador.validation.predict import predict_rows
    rows = [m for m in load_measurements() if m.id in ("m332", "m342", "m350", "m352")]
    assert len(rows) == 4 and all(m.model == "llama-2-70b" and m.metric == "tbt_ms" and m.tp == 4
                                  and m.software.startswith("lmdeploy 0.1.0a1") for m in rows)
    for r in predict_rows(rows):
        assert abs(r.error_pct) < 4.5, (r.row.id, r.error_pct)


@pytest.mark.parametrize("software, cast", [
    ("vllm 0.5.4", True), ("vllm 0.7.3", True), ("vllm 0.6.3.dev109+gcb3b2b9b ROCm 6.2", True),
    ("vllm 0.8.0", False), ("vllm 0.14.1 V1 engine", False), ("vllm (ROCm build, version not stated)", False),
    ("sglang v0.5.5.post1", True), ("sglang", True), ("sglang 0.4 (ROCm)", True), ("tensorrt-llm 0.9.0", False),
    ("torchao", False),
    ("pytorch 2.11.0+cu130 (ador benchmarks/gpu_measure.py: CUDA graphs, cuBLAS, SDPA, unfused)", True)])
def test_which_stacks_cast_fp8_gemm_inputs_in_a_kernel_of_their_own(software, cast):
    from ador.validation.kernels import kernel_facts
    assert dict(kernel_facts(software))["fp8_cast_kernel"] is cast


def test_an_unfused_fp8_cast_is_a_kernel_of_its_own():
    """Under a runtime that casts each FP8 GEMM's input in a kernel of its own, that GEMM costs one
    more kernel: the input read in 16 bits and written in 8 at the achieved bandwidth, plus one fixed
    cost; the LM head (16-bit weights), attention and 16-bit GEMMs pay nothing more."""
    from ador.hardware.runtime import get_runtime
    from ador.perf.rules import rates_of
    fp8, bf16 = get_precision("fp8"), get_precision("bf16")
    model = ZOO["llama-3-8b"]
    ops = {op.name: op for op in decode_step(model, fp8, 1, 32, 1024)}
    qkv, head, att = ops["qkv_proj"], ops["lm_head"], ops["attention"]
    cast = gpu.op_terms(H100, qkv, fp8, fp8_cast=True)[4]
    assert cast == pytest.approx(qkv.m * qkv.k * (2 + 1) / H100.hbm_bw_bytes_per_s)
    assert gpu.op_terms(H100, qkv, fp8)[4] == 0.0
    assert gpu.op_terms(H100, head, fp8, fp8_cast=True)[4] == 0.0
    assert gpu.op_terms(H100, att, fp8, fp8_cast=True)[4] == 0.0
    bf16_qkv = next(op for op in decode_step(model, bf16, 1, 32, 1024) if op.name == "qkv_proj")
    assert gpu.op_terms(H100, bf16_qkv, bf16, fp8_cast=True)[4] == 0.0
    runtime = get_runtime("default")
    fused = rates_of(H100, runtime)
    unfused = rates_of(H100, dataclasses.replace(runtime, fp8_cast_kernel=True))
    extra = gpu.op_time(H100, qkv, fp8, 1, unfused)[0] - gpu.op_time(H100, qkv, fp8, 1, fused)[0]
    assert extra == pytest.approx(cast / fused.hbm_efficiency + fused.op_overhead_s, rel=1e-12)
    assert gpu.op_time(H100, head, fp8, 1, unfused)[0] == gpu.op_time(H100, head, fp8, 1, fused)[0]
