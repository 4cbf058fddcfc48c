"""How much of the multi-GPU over-pricing of 2025 vLLM is the collective step latency fitted on older stacks.

    python -c "from benchmarks import graph_collectives as g; print(g.held_out())"   # about 30 s
    python -c "from benchmarks import graph_collectives as g; print(g.refit())"      # about 1 min

vLLM from 0.3.0 on CUDA runs its tensor-parallel all-reduces as its own kernels captured with the
decode step in a CUDA graph, synchronised through flags in GPU memory (vllm-project/vllm PR 2192),
so a collective step would pay the link's hop latency alone, where the fit charges every stack
12.3 us of software latency per step (``collective_latency_s``). This prices vLLM rows with that
software latency at zero, never as the shipped model does:

- ``held_out()``: InferenceX's NVIDIA time-per-output-token rows (``serving-inferencex.csv``, held
  out), as shipped and with the zero latency for vLLM, constants unchanged: the median error by GPU,
  TP and stack;
- ``refit()``: the public fit redone with the zero latency for its vLLM rows (nightly-CI rows on an
  H200), and what each fit predicts for our own H100/H200 rows and NIM's rows (never fitted).

docs/serving.md ("Where the simulator is weak") quotes the figures; nothing here changes the
shipped calibration.
"""
from __future__ import annotations

import contextlib
import statistics
from typing import Any, Iterator

from ador.hardware.runtime import runtime_profiles
from ador.validation import calibrate, kernels
from ador.validation.data import DEFAULT_DATA, load_measurements, stack_of
from ador.validation.predict import summarise

GRAPH_STACK = "vllm"


@contextlib.contextmanager
def _graph_collectives() -> Iterator[None]:
    """vLLM rows priced with no software latency per collective step (a kernel fact, for the span)."""
    original = kernels.kernel_facts

    def facts(software: str) -> tuple[tuple[str, Any], ...]:
        base = original(software)
        return base + (("collective_latency_s", 0.0),) if stack_of(software) == GRAPH_STACK else base

    kernels._with_facts.cache_clear()
    kernels.kernel_facts = facts   # type: ignore[assignment]
    try:
        yield
    finally:
        kernels.kernel_facts = original
        kernels._with_facts.cache_clear()


def _medians(results: list) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for r in results:
        if r.error_pct is not None:
            key = f"{r.row.hardware} TP{r.row.tp} {r.row.software.split()[0]}"
            groups.setdefault(key, []).append(r.error_pct)
    return {k: round(statistics.median(v), 1) for k, v in sorted(groups.items())}


def held_out() -> dict[str, dict[str, float]]:
    from ador.validation.serving import load_serving, validate_serving
    rows = [r for r in load_serving(DEFAULT_DATA.parent / "serving-inferencex.csv")
            if r.metric == "tpot_mean_ms" and r.hardware != "mi300x-192gb"]
    out = {"as_shipped": _medians(list(validate_serving(rows).rows))}
    with _graph_collectives():
        out["vllm_graph_collectives"] = _medians(list(validate_serving(rows, runtimes=runtime_profiles()).rows))
    return out


def _fit(public: list, held: dict[str, list]) -> dict[str, Any]:
    f = calibrate.fit(public)
    out: dict[str, Any] = {"public_mape_pct": round(f.mape_pct, 2),
                           **{k: round(f.values[k], 3) for k in ("hbm.hbm3", "hbm.hbm3e", "GH100.tensor")}}
    for name, rows in held.items():
        out[f"{name}_mape_pct"] = round(summarise(calibrate.evaluate_rows(rows, f.values, fitted_on=public))
                                        ["mape_pct"], 2)
    return out


def refit() -> dict[str, dict[str, Any]]:
    public = load_measurements(DEFAULT_DATA)
    held = {"own": load_measurements(DEFAULT_DATA.parent / "measured-own-gpu.csv"),
            "nim": load_measurements(DEFAULT_DATA.parent / "measured-nim-h100.csv")}
    out = {"as_shipped": _fit(public, held)}
    with _graph_collectives():
        out["vllm_graph_collectives"] = _fit(public, held)
    return out

