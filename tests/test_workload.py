import dataclasses
import json

import pytest
from hypothesis import given, strategies as st

from ador.errors import ConfigError, UnknownNameError
from ador.workload import ZOO, build_iteration, decode_step, get_model, get_precision, load_hf_config, prefill, shard
from ador.workload.graph import PrefillChunk, causal_pairs
from ador.workload.memory import kv_bytes_per_token_per_device, weight_bytes_per_device
from ador.workload.ops import ALLREDUCE, ATTENTION, GEMM

FP16 = get_precision("fp16")

# Published parameter counts (model cards / papers), in billions.
PUBLISHED_B = {
    "llama-2-7b": 6.74, "llama-2-13b": 13.0, "llama-2-70b": 69.0, "llama-3-8b": 8.03, "llama-3-70b": 70.6,
    "llama-3.1-405b": 405.9, "mistral-7b": 7.24, "mixtral-8x7b": 46.7, "gpt-j-6b": 6.05, "gpt3-6.7b": 6.7,
    "gpt3-175b": 175.0, "megatron-530b": 530.0, "bloom-176b": 176.2, "falcon-180b": 180.0, "opt-66b": 66.0,
}


def test_zoo_has_every_design_md_model():
    wanted = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-8b",
              "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b", "gpt-j-6b", "gpt3-6.7b",
              "gpt3-175b", "gpt-20b", "megatron-530b", "bloom-176b", "falcon-180b", "opt-66b"]
    assert set(wanted) <= set(ZOO)
    gpt20 = ZOO["gpt-20b"]
    assert (gpt20.n_layers, gpt20.n_heads, gpt20.head_dim) == (44, 48, 128)


@pytest.mark.parametrize("name,billions", sorted(PUBLISHED_B.items()))
def test_parameter_counts_match_published(name, billions):
    assert ZOO[name].total_params() / 1e9 == pytest.approx(billions, rel=0.015)


def test_mixtral_active_parameters():
    # Mistral AI: 12.9B active parameters per token
    assert ZOO["mixtral-8x7b"].active_params() / 1e9 == pytest.approx(12.9, rel=0.01)


def _sum(ops, attr, kind=None, name=None):
    return sum(getattr(o, attr) * o.count for o in ops if (kind is None or o.kind == kind)
               and (name is None or o.name == name))


def test_llama3_8b_prefill_flops_by_hand():
    """GQA model: 32 query heads, 8 KV heads."""
    m = ZOO["llama-3-8b"]
    T = 128
    ops = prefill(m, FP16, 1, 1, T)
    qkv = 2 * T * 4096 * (4096 + 2 * 1024)
    out = 2 * T * 4096 * 4096
    ffn = 2 * T * 4096 * 14336 * 3
    head = 2 * 1 * 4096 * 128256           # logits of the last token only
    assert _sum(ops, "flops", GEMM) == pytest.approx(32 * (qkv + out + ffn) + head)
    pairs = T * (T + 1) / 2
    assert _sum(ops, "flops", ATTENTION) == pytest.approx(32 * 4 * 128 * 32 * pairs)
    # KV written: T tokens x 8 KV heads x 128 x (K and V) x 2 bytes x 32 layers (+ the same read back)
    assert _sum(ops, "kv_bytes", ATTENTION) == pytest.approx(2 * 32 * T * 8 * 128 * 2 * 2)


def test_llama3_8b_decode_reads_kv_and_weights():
    m = ZOO["llama-3-8b"]
    ops = decode_step(m, FP16, 1, 4, 1000)
    kv_read = 4 * 1000 * 8 * 128 * 2 * 2 * 32
    kv_write = 4 * 1 * 8 * 128 * 2 * 2 * 32
    assert _sum(ops, "kv_bytes") == pytest.approx(kv_read + kv_write)
    layer_weights = 4096 * 6144 + 4096 * 4096 + 3 * 4096 * 14336
    assert _sum(ops, "weight_bytes") == pytest.approx(2 * (32 * layer_weights + 4096 * 128256))


def test_mixtral_reads_only_the_experts_hit():
    m = ZOO["mixtral-8x7b"]
    expert = 3 * 4096 * 14336 * 2
    one = decode_step(m, FP16, 1, 1, 100)
    assert _sum(one, "weight_bytes", GEMM, "expert_up") + _sum(one, "weight_bytes", GEMM, "expert_down") \
        == pytest.approx(32 * 2 * expert)            # top-2 of 8: two experts per layer
    many = decode_step(m, FP16, 1, 256, 100)
    hit = 8 * (1 - (1 - 2 / 8) ** 256)
    assert _sum(many, "weight_bytes", GEMM, "expert_up") + _sum(many, "weight_bytes", GEMM, "expert_down") \
        == pytest.approx(32 * hit * expert)
    # FLOPs follow the tokens routed, not the experts hit: 2 FLOPs x (256 tokens x 2 experts) x MACs
    flops = _sum(many, "flops", GEMM, "expert_up") + _sum(many, "flops", GEMM, "expert_down")
    assert flops == pytest.approx(32 * 2 * (256 * 2) * 3 * 4096 * 14336, rel=0.02)


def test_tensor_parallel_shards_and_replicates_kv_heads():
    m = ZOO["llama-3-70b"]         # 64 query heads, 8 KV heads
    assert shard(m, 8).kv_heads == 1 and shard(m, 8).q_heads == 8
    sh16 = shard(m, 16)
    assert sh16.q_heads == 4 and sh16.kv_heads == 1   # fewer KV heads than TP: replicated
    # KV per device stops shrinking once KV heads are replicated
    kv8 = kv_bytes_per_token_per_device(m, FP16, 8)
    assert kv_bytes_per_token_per_device(m, FP16, 16) == kv8
    assert kv_bytes_per_token_per_device(m, FP16, 4) == 2 * kv8
    # weights per device never grow with TP
    sizes = [weight_bytes_per_device(m, FP16, tp) for tp in (1, 2, 4, 8, 16)]
    assert sizes == sorted(sizes, reverse=True)


def test_megatron_allreduces_per_layer():
    dense = prefill(ZOO["llama-2-7b"], FP16, 4, 1, 16)
    assert sum(o.count for o in dense if o.kind == ALLREDUCE) == 2 * 32
    parallel = prefill(ZOO["gpt-j-6b"], FP16, 4, 1, 16)   # attention and FFN summed, one all-reduce
    assert sum(o.count for o in parallel if o.kind == ALLREDUCE) == 28
    assert not any(o.kind == ALLREDUCE for o in prefill(ZOO["llama-2-7b"], FP16, 1, 1, 16))


def test_tp_must_divide_heads():
    with pytest.raises(ConfigError, match="tp=3"):
        shard(ZOO["llama-2-7b"], 3)


def test_mixed_iteration_fuses_linear_or_splits_phases():
    m = ZOO["llama-3-8b"]
    chunk = (PrefillChunk(1, 256, 512),)
    fused = build_iteration(m, FP16, 1, 1, chunk, 8, 1000)
    split = build_iteration(m, FP16, 1, 1, chunk, 8, 1000, fuse_linear=False)
    qkv = [o for o in fused if o.name == "qkv_proj"]
    assert len(qkv) == 1 and qkv[0].m == 256 + 8
    assert sorted(o.m for o in split if o.name == "qkv_proj") == [8, 256]
    assert _sum(fused, "flops") == pytest.approx(_sum(split, "flops"))


@given(context=st.integers(0, 3000), tokens=st.integers(1, 3000), window=st.sampled_from([0, 1, 7, 512, 4096]))
def test_causal_pairs_matches_brute_force(context, tokens, window):
    brute = sum(min(pos, window) if window else pos for pos in range(context + 1, context + tokens + 1))
    assert causal_pairs(context, tokens, window) == pytest.approx(brute)


def test_unknown_model_and_precision():
    with pytest.raises(UnknownNameError, match="model='gpt-5'"):
        get_model("gpt-5")
    with pytest.raises(UnknownNameError, match="precision='fp4'"):
        get_precision("fp4")


def test_hf_config_llama_and_mixtral(tmp_path):
    llama = {"model_type": "llama", "hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8,
             "num_hidden_layers": 80, "intermediate_size": 28672, "vocab_size": 128256,
             "max_position_embeddings": 8192, "tie_word_embeddings": False, "hidden_act": "silu"}
    path = tmp_path / "llama3" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(llama))
    spec = get_model(str(path))
    zoo = ZOO["llama-3-70b"]
    assert spec.total_params() == zoo.total_params()
    assert (spec.ffn_kind, spec.norm_kind, spec.name) == ("swiglu", "rmsnorm", "llama3")
    mixtral = {"model_type": "mixtral", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
               "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000,
               "max_position_embeddings": 32768, "num_local_experts": 8, "num_experts_per_tok": 2,
               "tie_word_embeddings": False}
    path = tmp_path / "mixtral.json"
    path.write_text(json.dumps(mixtral))
    spec = load_hf_config(path)
    assert (spec.n_experts, spec.top_k) == (8, 2)
    assert spec.total_params() == ZOO["mixtral-8x7b"].total_params()


def test_hf_config_falcon_gptj(tmp_path):
    falcon = {"model_type": "falcon", "hidden_size": 14848, "num_attention_heads": 232, "num_kv_heads": 8,
              "num_hidden_layers": 80, "vocab_size": 65024, "new_decoder_architecture": True, "parallel_attn": True}
    spec = load_hf_config(_write(tmp_path, "falcon.json", falcon))
    assert (spec.n_kv_heads, spec.head_dim, spec.d_ff, spec.parallel_attn) == (8, 64, 59392, True)
    gptj = {"model_type": "gptj", "n_embd": 4096, "n_head": 16, "n_layer": 28, "vocab_size": 50400,
            "n_positions": 2048, "tie_word_embeddings": False}
    spec = load_hf_config(_write(tmp_path, "gptj.json", gptj))
    assert spec.total_params() == ZOO["gpt-j-6b"].total_params()


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("content,field", [
    ("{not json", "model"),
    ("[1, 2]", "model"),
    ('{"hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 100}', "num_hidden_layers"),
    ('{"hidden_size": -5, "num_attention_heads": 32, "num_hidden_layers": 2, "vocab_size": 100}', "hidden_size"),
    ('{"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 5, "num_hidden_layers": 2,'
     ' "vocab_size": 100}', "n_kv_heads"),
])
def test_hf_config_errors_name_the_field(tmp_path, content, field):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_hf_config(path)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


def test_an_moe_config_reads_each_experts_width_not_the_dense_ffns():
    """Qwen3-30B-A3B's config.json (Qwen/Qwen3-30B-A3B) states intermediate_size 6144 and
    moe_intermediate_size 768; its model card: 30.5B parameters in total, 3.3B activated."""
    from ador.workload.models import spec_from_hf_dict
    cfg = {"model_type": "qwen3_moe", "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 6144,
           "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
           "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936,
           "max_position_embeddings": 40960, "tie_word_embeddings": False}
    spec = spec_from_hf_dict(cfg, "qwen3-30b-a3b")
    assert spec.d_ff == 768 and (spec.n_experts, spec.top_k) == (128, 8)
    assert spec.total_params() / 1e9 == pytest.approx(30.5, rel=0.02)
    assert spec.active_params() / 1e9 == pytest.approx(3.3, rel=0.05)
    dense = spec_from_hf_dict({**cfg, "num_experts": 1, "num_experts_per_tok": 1}, "dense")
    assert dense.d_ff == 6144                               # a dense config's FFN is intermediate_size


@pytest.mark.parametrize("tp, dies, ok", [(5, 1, False), (10, 1, False), (4, 1, True), (8, 1, True), (40, 1, True),
                                         (2, 2, True), (4, 5, False)])
def test_ranks_must_split_or_replicate_the_kv_heads(tp, dies, ok):
    """Qwen3-14B: 40 query heads, 8 KV heads. At tp 5 a rank's 8 query heads span parts of 3 KV
    heads, a layout vLLM and TensorRT-LLM refuse; ador used to floor it to one KV head per rank."""
    model = get_model("qwen3-14b")
    if ok:
        assert shard(model, tp, dies=dies).kv_heads >= 1
    else:
        with pytest.raises(ConfigError, match="KV heads of qwen3-14b") as err:
            shard(model, tp, dies=dies)
        assert err.value.field == ("tp" if dies == 1 else "dies")


def test_falcons_new_decoder_architecture_normalises_each_parallel_branch():
    """Falcon-180B (new_decoder_architecture: ln_attn and ln_mlp) runs two norms per layer, GPT-J
    one, a sequential block two (one with the residual add fused in before each sublayer)."""
    from ador.workload.models import spec_from_hf_dict
    fp16 = get_precision("fp16")

    def norms(name):
        return [op.name for op in decode_step(get_model(name), fp16, 8, 1, 128) if op.name.endswith("_norm")
                and op.name != "final_norm"]
    assert norms("falcon-180b") == ["attn_norm", "ffn_norm"] and norms("gpt-j-6b") == ["attn_norm"]
    assert norms("llama-3-8b") == ["attn_norm", "ffn_norm"]
    base = {"hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 2, "vocab_size": 1000}
    assert spec_from_hf_dict({**base, "model_type": "falcon", "new_decoder_architecture": True,
                              "num_kv_heads": 8}, "f").parallel_norms == 2
    assert spec_from_hf_dict({**base, "model_type": "falcon", "parallel_attn": True}, "f7").parallel_norms == 1
    assert spec_from_hf_dict({**base, "model_type": "gpt_neox", "use_parallel_residual": True}, "n").parallel_norms == 2
    assert spec_from_hf_dict({**base, "model_type": "gptj"}, "j").parallel_norms == 1


@given(model=st.sampled_from(["llama-2-7b", "llama-3-70b", "mixtral-8x7b"]), batch=st.integers(1, 256),
       input_len=st.integers(1, 8192), output_len=st.integers(1, 8192), tp=st.sampled_from([1, 2, 8]))
def test_the_footprint_is_the_peak_of_the_prefill_and_the_last_decode_step(model, batch, input_len, output_len, tp):
    """The prefill's activations are freed before the cache grows: the peak is the larger phase, not
    the full cache plus the whole batch's prefill activations."""
    from ador.workload.memory import activation_bytes_per_device, footprint
    spec = ZOO[model]
    f = footprint(spec, FP16, tp, 1, batch, input_len, output_len)
    kv = kv_bytes_per_token_per_device(spec, FP16, tp)
    prefill_peak = batch * input_len * kv + activation_bytes_per_device(spec, FP16, tp, batch * input_len, batch)
    decode_peak = batch * (input_len + output_len) * kv + activation_bytes_per_device(spec, FP16, tp, batch, batch)
    assert f.total_bytes == pytest.approx(weight_bytes_per_device(spec, FP16, tp) + max(prefill_peak, decode_peak))
    assert f.kv_bytes in (batch * input_len * kv, batch * (input_len + output_len) * kv)


def test_lmdeploys_batch_of_32_long_sequences_fits_an_80gb_a100():
    """LMDeploy ran Llama-2-7B at batch 32 with 2,048 + 2,048 tokens on one A100-80GB (measured rows
    m269/m270): the full cache (64 GiB) and the prefill's activations (3.7 GiB) never coexist."""
    from ador.hardware import PRESETS, System
    from ador.perf.evaluate import capacity_bytes
    from ador.workload.memory import footprint
    need = footprint(get_model("llama-2-7b"), FP16, 1, 1, 32, 2048, 2048).total_bytes
    assert need <= capacity_bytes(System(device=PRESETS["a100-sxm-80gb"]))


@pytest.mark.parametrize("name,head_bytes", [("fp8", 2.0), ("fp8-kv16", 2.0), ("fp8-wo", 2.0), ("int8-wo", 1.0),
                                             ("bf16", 2.0)])
def test_the_lm_head_keeps_the_precision_its_stacks_give_it(name, head_bytes):
    """FP8 stacks (TensorRT-LLM's ModelOpt recipe, vLLM's Fp8Config) leave the LM head in 16-bit; gpt-fast's
    int8 handler quantises it with every other linear layer. The embedding table is 16-bit everywhere.
    The head's read in a decode step and its share of the weights both follow."""
    model, precision = get_model("llama-3-8b"), get_precision(name)
    head_elements = model.vocab_size * model.d_model
    ops = {op.name: op for op in decode_step(model, precision, 1, 1, 128)}
    assert ops["lm_head"].weight_bytes == head_elements * head_bytes
    layer_weights = 4096 * 6144 + 4096 * 4096 + 3 * 4096 * 14336
    norms = 2 * 4096 * 2.0
    assert weight_bytes_per_device(model, precision, 1) == pytest.approx(
        32 * (layer_weights * precision.weight_bytes + norms) + head_elements * 2.0 + head_elements * head_bytes)

def test_a_tied_head_reads_the_16_bit_embedding_table():
    tied = dataclasses.replace(get_model("llama-3-8b"), tied_embeddings=True)
    ops = {op.name: op for op in decode_step(tied, get_precision("int8-wo"), 1, 1, 128)}
    assert ops["lm_head"].weight_bytes == tied.vocab_size * tied.d_model * 2.0


def test_fp8_kv16_keeps_fp8_linear_layers_and_a_16_bit_kv_cache():
    model = get_model("llama-3-8b")
    fp8, kv16 = get_precision("fp8"), get_precision("fp8-kv16")
    assert kv_bytes_per_token_per_device(model, kv16, 1) == 2 * kv_bytes_per_token_per_device(model, fp8, 1)
    assert weight_bytes_per_device(model, kv16, 1) == weight_bytes_per_device(model, fp8, 1)
    assert kv16.compute_dtype == fp8.compute_dtype == "fp8"


def test_a_learned_position_table_is_part_of_the_16_bit_embedding():
    """GPT-3's learned positions sit beside the token table, both unquantised, whatever the linear layers."""
    model = get_model("gpt3-6.7b")
    int8, fp16 = get_precision("int8-wo"), get_precision("fp16")
    tables = (model.vocab_size + model.max_seq_len) * model.d_model
    head = 0 if model.tied_embeddings else model.vocab_size * model.d_model
    linear_fp16 = weight_bytes_per_device(model, fp16, 1) - tables * 2.0 - head * 2.0
    assert weight_bytes_per_device(model, int8, 1) == pytest.approx(
        tables * 2.0 + head * 1.0 + (linear_fp16 - model.n_layers * 2 * model.d_model * 2.0) / 2.0
        + model.n_layers * 2 * model.d_model * 2.0)
