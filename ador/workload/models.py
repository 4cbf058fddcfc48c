"""Transformer model specifications: the zoo of published configurations and HF config.json import."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ador.errors import ConfigError, UnknownNameError

FfnKind = Literal["gelu", "relu", "swiglu"]
NormKind = Literal["layernorm", "rmsnorm"]
PositionKind = Literal["rope", "learned", "alibi"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int                    # FFN hidden size (per expert for MoE)
    vocab_size: int
    max_seq_len: int
    ffn_kind: FfnKind = "swiglu"
    norm_kind: NormKind = "rmsnorm"
    position: PositionKind = "rope"
    parallel_attn: bool = False  # attention and FFN read the same input (GPT-J, Falcon)
    parallel_norms: int = 1      # norms of a parallel block: 1 (GPT-J, Falcon-7B), 2 (one per branch:
    #                              Falcon's new decoder architecture, GPT-NeoX's parallel residual)
    n_experts: int = 1           # 1 = dense FFN
    top_k: int = 1               # experts each token is routed to
    tied_embeddings: bool = False
    sliding_window: int = 0      # 0 = full attention; else tokens of context each query sees
    source: str = ""

    def __post_init__(self) -> None:
        for field in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff",
                      "vocab_size", "max_seq_len", "n_experts", "top_k"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(field, value, "must be a positive integer")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError("n_kv_heads", self.n_kv_heads, f"must divide n_heads={self.n_heads}")
        if self.top_k > self.n_experts:
            raise ConfigError("top_k", self.top_k, f"cannot exceed n_experts={self.n_experts}")
        if self.sliding_window < 0:
            raise ConfigError("sliding_window", self.sliding_window, "must be >= 0")
        if self.parallel_norms not in (1, 2):
            raise ConfigError("parallel_norms", self.parallel_norms, "must be 1 or 2")

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @property
    def ffn_matrices(self) -> int:
        """Weight matrices in one FFN (gate, up, down for SwiGLU; up, down for an MLP)."""
        return 3 if self.ffn_kind == "swiglu" else 2

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    def layer_params(self) -> int:
        """Weights of one transformer layer (biases left out: under 0.1% of any zoo model)."""
        attn = self.d_model * (self.q_dim + 2 * self.kv_dim) + self.q_dim * self.d_model
        ffn = self.n_experts * self.ffn_matrices * self.d_model * self.d_ff
        router = self.d_model * self.n_experts if self.is_moe else 0
        norms = (1 if self.parallel_attn else 2) * self.d_model
        return attn + ffn + router + norms

    def embedding_params(self) -> int:
        heads = 1 if self.tied_embeddings else 2
        positions = self.max_seq_len * self.d_model if self.position == "learned" else 0
        return heads * self.vocab_size * self.d_model + positions + self.d_model  # + final norm

    def total_params(self) -> int:
        return self.n_layers * self.layer_params() + self.embedding_params()

    def active_params(self) -> int:
        """Weights one token touches (MoE: top_k of the experts)."""
        if not self.is_moe:
            return self.total_params()
        inactive = (self.n_experts - self.top_k) * self.ffn_matrices * self.d_model * self.d_ff
        return self.total_params() - self.n_layers * inactive


def _m(name: str, source: str, **kw: Any) -> ModelSpec:
    return ModelSpec(name=name, source=source, **kw)


_LLAMA2 = dict(ffn_kind="swiglu", norm_kind="rmsnorm", position="rope", vocab_size=32000, max_seq_len=4096)
_LLAMA3 = dict(ffn_kind="swiglu", norm_kind="rmsnorm", position="rope", vocab_size=128256)
# GPT-2/3 style: learned positions, input and output embeddings tied (Radford et al. 2019)
_GPT = dict(ffn_kind="gelu", norm_kind="layernorm", position="learned", vocab_size=50257, max_seq_len=2048,
            tied_embeddings=True)

# Published configurations. Sources: the models' Hugging Face config.json files (meta-llama/*,
# mistralai/*, Qwen/*, EleutherAI/gpt-j-6b, tiiuae/falcon-180B, bigscience/bloom, facebook/opt-66b) and
# the papers for models without one (GPT-3: Brown et al. 2020, Table 2.1; MT-NLG 530B: Smith et al.
# 2022, Sec. 2; gpt-20b: the 44-layer, 48x128-head GPT of DESIGN.md).
ZOO: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _m("llama-2-7b", "meta-llama/Llama-2-7b-hf config.json", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=32, head_dim=128, d_ff=11008, **_LLAMA2),
        _m("llama-2-13b", "meta-llama/Llama-2-13b-hf config.json", n_layers=40, d_model=5120, n_heads=40,
           n_kv_heads=40, head_dim=128, d_ff=13824, **_LLAMA2),
        _m("llama-2-70b", "meta-llama/Llama-2-70b-hf config.json", n_layers=80, d_model=8192, n_heads=64,
           n_kv_heads=8, head_dim=128, d_ff=28672, **_LLAMA2),
        _m("llama-3-8b", "meta-llama/Meta-Llama-3-8B config.json", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=8, head_dim=128, d_ff=14336, max_seq_len=8192, **_LLAMA3),
        _m("llama-3-70b", "meta-llama/Meta-Llama-3-70B config.json", n_layers=80, d_model=8192, n_heads=64,
           n_kv_heads=8, head_dim=128, d_ff=28672, max_seq_len=8192, **_LLAMA3),
        _m("llama-3.1-8b", "meta-llama/Llama-3.1-8B config.json", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=8, head_dim=128, d_ff=14336, max_seq_len=131072, **_LLAMA3),
        _m("llama-3.1-70b", "meta-llama/Llama-3.1-70B config.json", n_layers=80, d_model=8192, n_heads=64,
           n_kv_heads=8, head_dim=128, d_ff=28672, max_seq_len=131072, **_LLAMA3),
        _m("llama-3.1-405b", "meta-llama/Llama-3.1-405B config.json", n_layers=126, d_model=16384,
           n_heads=128, n_kv_heads=8, head_dim=128, d_ff=53248, max_seq_len=131072, **_LLAMA3),
        _m("mistral-7b", "mistralai/Mistral-7B-v0.1 config.json", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=8, head_dim=128, d_ff=14336, vocab_size=32000, max_seq_len=32768,
           sliding_window=4096),
        _m("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1 config.json", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=8, head_dim=128, d_ff=14336, vocab_size=32000, max_seq_len=32768, n_experts=8,
           top_k=2),
        # Qwen3 dense: head_dim 128 is not d_model / n_heads; the per-head q/k RMSNorm is not modelled
        # (two small vector ops per layer)
        _m("qwen3-14b", "Qwen/Qwen3-14B config.json", n_layers=40, d_model=5120, n_heads=40, n_kv_heads=8,
           head_dim=128, d_ff=17408, vocab_size=151936, max_seq_len=40960),
        _m("qwen3-32b", "Qwen/Qwen3-32B config.json", n_layers=64, d_model=5120, n_heads=64, n_kv_heads=8,
           head_dim=128, d_ff=25600, vocab_size=151936, max_seq_len=40960),
        _m("gpt-j-6b", "EleutherAI/gpt-j-6b config.json (rotary_dim 64, parallel residual)", n_layers=28,
           d_model=4096, n_heads=16, n_kv_heads=16, head_dim=256, d_ff=16384, vocab_size=50400,
           max_seq_len=2048, ffn_kind="gelu", norm_kind="layernorm", position="rope", parallel_attn=True),
        _m("gpt3-6.7b", "Brown et al. 2020, Table 2.1 (GPT-3 6.7B)", n_layers=32, d_model=4096, n_heads=32,
           n_kv_heads=32, head_dim=128, d_ff=16384, **_GPT),
        _m("gpt3-175b", "Brown et al. 2020, Table 2.1 (GPT-3 175B)", n_layers=96, d_model=12288, n_heads=96,
           n_kv_heads=96, head_dim=128, d_ff=49152, **_GPT),
        _m("gpt-20b", "DESIGN.md: 44 layers, 48 heads of 128 (d_model 6144, d_ff 4x)", n_layers=44,
           d_model=6144, n_heads=48, n_kv_heads=48, head_dim=128, d_ff=24576, **_GPT),
        _m("megatron-530b", "Smith et al. 2022, MT-NLG 530B: 105 layers, hidden 20480, 128 heads",
           n_layers=105, d_model=20480, n_heads=128, n_kv_heads=128, head_dim=160, d_ff=81920, **_GPT),
        _m("bloom-176b", "bigscience/bloom config.json (ALiBi, 250880 vocab)", n_layers=70, d_model=14336,
           n_heads=112, n_kv_heads=112, head_dim=128, d_ff=57344, vocab_size=250880, max_seq_len=2048,
           ffn_kind="gelu", norm_kind="layernorm", position="alibi", tied_embeddings=True),
        _m("falcon-180b", "tiiuae/falcon-180B config.json (new_decoder_architecture, 8 KV heads)",
           n_layers=80, d_model=14848, n_heads=232, n_kv_heads=8, head_dim=64, d_ff=59392,
           vocab_size=65024, max_seq_len=2048, ffn_kind="gelu", norm_kind="layernorm", position="rope",
           parallel_attn=True, parallel_norms=2),
        _m("opt-1.3b", "facebook/opt-1.3b config.json (ReLU MLP, learned positions)", n_layers=24,
           d_model=2048, n_heads=32, n_kv_heads=32, head_dim=64, d_ff=8192, vocab_size=50272,
           max_seq_len=2048, ffn_kind="relu", norm_kind="layernorm", position="learned",
           tied_embeddings=True),
        _m("opt-66b", "facebook/opt-66b config.json (ReLU MLP, learned positions)", n_layers=64,
           d_model=9216, n_heads=72, n_kv_heads=72, head_dim=128, d_ff=36864, vocab_size=50272,
           max_seq_len=2048, ffn_kind="relu", norm_kind="layernorm", position="learned",
           tied_embeddings=True),
    )
}


def padded_heads(model: ModelSpec, tp: int) -> ModelSpec:
    """``model`` with its attention heads padded to a multiple of ``tp``, as a runtime that shards
    heads over a TP degree that does not divide them must run it (AWS Transformers NeuronX pads
    the head dimension of the attention weights): the padded heads are real weights that are stored,
    streamed and multiplied. Key/value heads are padded alike when every query head has its own."""
    if model.n_heads % tp == 0:
        return model
    heads = -(-model.n_heads // tp) * tp
    kv = heads if model.n_kv_heads == model.n_heads else model.n_kv_heads
    if heads % kv:
        kv = -(-kv // tp) * tp if kv >= tp else kv
    return replace(model, name=f"{model.name}@pad{heads}", n_heads=heads, n_kv_heads=kv)


def get_model(name_or_path: str) -> ModelSpec:
    """A zoo model by name, or a model read from a Hugging Face ``config.json`` path."""
    if name_or_path in ZOO:
        return ZOO[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file():
        return load_hf_config(path)
    raise UnknownNameError("model", name_or_path,
                           f"unknown model (known: {', '.join(ZOO)}; or a path to a config.json)")


# model_type values whose FFN is SwiGLU with RMSNorm (the Llama family and its descendants)
# Activation names of Hugging Face configs (transformers' ACT2FN keys that LLM configs use): each
# prices as its FFN kind (silu/swish gates: SwiGLU where the model type gates; gelu variants: GELU MLP)
HF_ACTIVATIONS = {"silu", "swish", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "quick_gelu",
                  "gelu_10", "relu", "relu2", "geglu", "swiglu", "tanh", "sigmoid"}
_SWIGLU_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "gemma", "gemma2",
                 "internlm2", "yi", "deepseek"}


def load_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """Read a Hugging Face ``config.json``; a missing or bad field is a ConfigError naming it."""
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("model", str(path), "no such config.json") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        # ValueError: malformed JSON, or a number of more than 4,300 digits; RecursionError: deep nesting
        raise ConfigError("model", str(path), f"not a readable JSON file ({err.__class__.__name__})") from None
    if not isinstance(cfg, dict):
        raise ConfigError("model", str(path), "config.json must hold a JSON object")
    return spec_from_hf_dict(cfg, name or path.parent.name or path.stem)


MAX_HF_INT = 2 ** 31      # no dimension of a real model comes near; larger ones overflow int64 products


def spec_from_hf_dict(cfg: dict[str, Any], name: str) -> ModelSpec:
    model_type = str(cfg.get("model_type", "")).lower()

    def pick(*keys: str, default: Any = None) -> Any:
        for key in keys:
            if cfg.get(key) is not None:
                return cfg[key]
        if default is None:
            raise ConfigError(f"config.json:{keys[0]}", None, "required field is missing")
        return default

    def as_int(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_HF_INT \
                or value != int(value):        # NaN fails the range test, so int() never sees it
            raise ConfigError(f"config.json:{key}", value, "must be a positive integer (at most 2**31)")
        return int(value)

    d_model = as_int("hidden_size", pick("hidden_size", "n_embd", "d_model", "dim"))
    n_heads = as_int("num_attention_heads", pick("num_attention_heads", "n_head", "num_heads", "n_heads"))
    n_layers = as_int("num_hidden_layers", pick("num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    vocab = as_int("vocab_size", pick("vocab_size", "padded_vocab_size"))
    if model_type == "falcon" and not cfg.get("new_decoder_architecture") and cfg.get("multi_query", True):
        kv_default = 1
    else:
        kv_default = n_heads
    n_kv = as_int("num_key_value_heads", pick("num_key_value_heads", "num_kv_heads", "n_head_kv",
                                              "multi_query_group_num", default=kv_default))
    if cfg.get("head_dim") is None and d_model % n_heads:
        raise ConfigError("config.json:hidden_size", d_model, f"is not a multiple of num_attention_heads={n_heads} "
                                                              f"(give head_dim where the heads are not hidden_size / "
                                                              f"heads wide)")
    head_dim = as_int("head_dim", pick("head_dim", default=d_model // n_heads or 1))
    for key in ("hidden_act", "activation_function"):
        act = cfg.get(key)
        if act is not None and act not in HF_ACTIVATIONS:
            raise ConfigError(f"config.json:{key}", act, f"an activation ador does not know (known: "
                                                         f"{', '.join(sorted(HF_ACTIVATIONS))})")
    swiglu = model_type in _SWIGLU_TYPES or cfg.get("hidden_act") == "silu" and model_type not in {"opt"}
    ffn_kind: Literal["gelu", "relu", "swiglu"]
    if swiglu:
        ffn_kind = "swiglu"
    elif model_type == "opt" or cfg.get("activation_function") == "relu" or cfg.get("hidden_act") == "relu":
        ffn_kind = "relu"
    else:
        ffn_kind = "gelu"
    max_seq = as_int("max_position_embeddings", pick("max_position_embeddings", "n_positions", "seq_length",
                                                     "max_sequence_length", default=2048))
    position: Literal["rope", "learned", "alibi"]
    if model_type == "bloom" or cfg.get("alibi"):
        position = "alibi"
    elif model_type in {"opt", "gpt2"}:
        position = "learned"
    else:
        position = "rope"
    n_experts = as_int("num_local_experts", pick("num_local_experts", "num_experts", "n_routed_experts",
                                                 default=1))
    # an MoE config states each expert's width as moe_intermediate_size where it differs from the
    # dense FFN's (Qwen-MoE, DeepSeek: intermediate_size is then the dense layers' or unused)
    widths = ("moe_intermediate_size", "intermediate_size") if n_experts > 1 else ("intermediate_size",)
    d_ff = as_int(widths[0], pick(*widths, "n_inner", "ffn_dim", "ffn_hidden_size", "moe_intermediate_size",
                                  default=4 * d_model))
    top_k = as_int("num_experts_per_tok", pick("num_experts_per_tok", "moe_top_k", default=1 if n_experts == 1 else 2))
    parallel = bool(model_type == "gptj" or cfg.get("parallel_attn") or cfg.get("use_parallel_residual")
                    or cfg.get("new_decoder_architecture"))
    # Falcon's new decoder architecture normalises each branch's input (ln_attn, ln_mlp: transformers'
    # num_ln_in_parallel_attn, 2 by default there), as GPT-NeoX's parallel residual does; GPT-J has one
    two_norms = bool(cfg.get("new_decoder_architecture") or cfg.get("use_parallel_residual"))
    norms = cfg.get("num_ln_in_parallel_attn") or (2 if two_norms else 1)
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    window = as_int("sliding_window", window) if window else 0
    try:
        return ModelSpec(
            name=name, n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv,
            head_dim=head_dim, d_ff=d_ff, vocab_size=vocab, max_seq_len=max_seq, ffn_kind=ffn_kind,
            norm_kind="rmsnorm" if swiglu else "layernorm", position=position, parallel_attn=parallel,
            parallel_norms=as_int("num_ln_in_parallel_attn", norms) if parallel else 1,
            n_experts=n_experts, top_k=min(top_k, n_experts),
            # transformers' PretrainedConfig defaults tie_word_embeddings to True
            tied_embeddings=bool(cfg.get("tie_word_embeddings", True)),
            sliding_window=window, source=f"config.json ({model_type or 'unknown model_type'})",
        )
    except ConfigError as err:
        raise err.under("config.json") from None


def with_name(spec: ModelSpec, name: str) -> ModelSpec:
    return replace(spec, name=name)
