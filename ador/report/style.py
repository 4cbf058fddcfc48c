"""One look for every plot: a colour and a marker per system (each GPU keeps its own everywhere),
a fixed colour per operator (the same in every panel), and the axis labels."""
from __future__ import annotations

from typing import Sequence

UNITS = {"ttft_ms": "ms", "tbt_ms": "ms", "tbt_p99_ms": "ms", "e2e_ms": "ms", "output_tok_s": "tokens/s",
         "output_tok_s_per_device": "tokens/s", "output_tok_s_per_mm2": "tokens/s per mm2 of die",
         "output_tok_s_per_package_mm2": "tokens/s per mm2 of package", "output_tok_s_per_w": "tokens/s per W",
         "energy_per_token_j": "J", "die_area_mm2": "mm2", "package_area_mm2": "mm2", "system_die_area_mm2": "mm2",
         "tdp_w": "W", "cost_usd": "USD", "memory_utilisation": "fraction", "serving_ttft_p99_ms": "ms",
         "serving_tbt_p99_ms": "ms", "serving_goodput_rps": "requests/s", "serving_slo_attainment": "fraction",
         "serving_output_tok_s": "tokens/s", "system_package_area_mm2": "mm2", "cost_per_mtok_usd": "USD",
         "capex_usd": "USD", "power_at_load_w": "W", "system_tdp_w": "W", "dies": "dies"}

# GPU family -> (colour, marker), the same in every plot
GPU_STYLES = {"a100": ("#1f77b4", "s"), "h100": ("#ff7f0e", "D"), "h200": ("#8c564b", "^"),
              "l40s": ("#e377c2", "v"), "mi300x": ("#bcbd22", "P"), "b200": ("#17becf", "X")}
# designs and anything else, in order of appearance
OTHER_STYLES = (("#2ca02c", "o"), ("#d62728", "*"), ("#9467bd", "h"), ("#7f7f7f", "p"), ("#17becf", "<"),
                ("#bcbd22", ">"), ("#e377c2", "d"), ("#8c564b", "8"))

# a colour per operator, in the order of a layer, never depending on which panel shows it
OPERATOR_COLOURS = {
    "embedding": "#17becf", "attn_norm": "#edc948", "qkv_proj": "#4e79a7", "attention": "#f28e2b",
    "out_proj": "#59a14f", "attn_allreduce": "#9c755f", "ffn_norm": "#bcbd22", "ffn_up": "#e15759",
    "ffn_act": "#76b7b2", "ffn_down": "#b07aa1", "ffn_allreduce": "#1f3b73", "moe_router": "#ff9da7",
    "moe_topk": "#aec7e8", "expert_up": "#d62728", "expert_act": "#98df8a", "expert_down": "#9467bd",
    "final_norm": "#c49c94", "lm_head": "#393b79", "logits_allgather": "#dbdb8d",
    "attn_die_allreduce": "#7f6b5d", "ffn_die_allreduce": "#2f4b83", "logits_die_allgather": "#bdbd7d",
}
OPERATORS = tuple(OPERATOR_COLOURS)
_SPARE = ("#8c6d31", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d")
OTHER_OPERATORS = "#d9d9d9"       # operators outside the shown ones, grouped
OVERHEAD = "#ffffff"              # time no operator accounts for (drawn hatched)


def system_styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """label -> (colour, marker): a GPU by its family, every other system its own pair."""
    out: dict[str, tuple[str, str]] = {}
    others = iter(OTHER_STYLES)
    for label in labels:
        family = next((k for k in GPU_STYLES if k in label.lower()), None)
        if family is not None and GPU_STYLES[family] not in out.values():
            out[label] = GPU_STYLES[family]
        else:
            out[label] = next(others, ("#000000", "o"))
    return out


def operator_colour(name: str) -> str:
    """The colour of an operator, fixed by its name (unknown names hash into spare colours)."""
    return OPERATOR_COLOURS.get(name) or _SPARE[sum(map(ord, name)) % len(_SPARE)]


def axis_label(metric: str, direction: str) -> str:
    better = "lower is better" if direction == "minimize" else "higher is better"
    unit = UNITS.get(metric)
    return f"{metric} ({unit}; {better})" if unit else f"{metric} ({better})"
