"""Published GPU power under serving load (``ador/data/energy-published.csv``: the ML.ENERGY Leaderboard
v3.0's vLLM 0.11.1 runs, GPU energy counters over a steady-state window) against the model's power.

Each run is a continuous-batching server holding ``running_batch`` sequences (its measured mean) of
``output_len`` generated tokens on average, with chunked prefill. Its steady state is priced as one
mean iteration: every running sequence decodes one token over a cache of the prompt plus half its
output, and the prompts that replace finished sequences enter the same step (``running_batch x prompt
/ output_len`` tokens, at most vLLM's 8,192-token budget less the decodes; one chunk without earlier
context) through the same projections, with the runtime's per-step overhead; the ``default`` profile
with vLLM's kernel facts. The published files do not give the prompts' length (LMArena chats), so
the iteration is priced at ``PROMPTS`` tokens and the band reported. The figure compared is the
model's power per GPU, its energy of the iteration over its own time for it: the mix of work sets it,
not the amount, so it barely moves with the prompt length (the band), where energy per token and the
iteration's time move with it severalfold. The iteration's time beside the measured one
(``running_batch`` / measured output tokens per second) is reported as context.

Held out: nothing is fitted to these rows.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ador.cost import assess, workload_energy_j
from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.hardware.runtime import runtime_profiles
from ador.markdown import span
from ador.perf import stage_time
from ador.validation.data import DEFAULT_DATA as MEASURED_DATA
from ador.validation.data import positive_number, read_rows
from ador.validation.kernels import runtime_for
from ador.workload import get_model, get_precision
from ador.workload.graph import PrefillChunk, build_iteration

DEFAULT_DATA = MEASURED_DATA.parent / "energy-published.csv"
PROMPTS = (256, 1024, 2048)       # prompt tokens priced: the runs' prompt lengths are not published
CENTRAL_PROMPT = 1024
TOKEN_BUDGET = 8192               # the runs' max-num-batched-tokens (ML.ENERGY v3 vLLM configs)
SOURCE = "ML.ENERGY Leaderboard v3.0"


def is_energy_file(path: str | Path) -> bool:
    """Whether a CSV is in this file's schema (by its header)."""
    from ador.validation.data import csv_columns
    return {"running_batch", "phase", "metric", "value"} <= csv_columns(path)


@dataclass(frozen=True)
class PublishedEnergyRow:
    """One row of the file: one published number of one configuration."""
    id: str
    source: str
    url: str
    hardware: str
    model: str
    precision: str
    software: str
    tp: int
    devices: int
    batch: int
    running_batch: float
    output_len: float
    metric: str
    value: float


@dataclass(frozen=True)
class ServingPowerRun:
    """One published configuration: its power row (configuration and measured power per GPU), its
    energy-per-token row's id, and the output tokens per second the two imply."""
    power: PublishedEnergyRow
    energy_id: str
    output_tok_s: float               # per replica: total power / energy per output token

    @property
    def iteration_s(self) -> float:
        """The measured time of one mean iteration: one token for every running sequence."""
        return self.power.running_batch / self.output_tok_s


REQUIRED = ("id", "source", "url", "hardware", "model", "precision", "software", "tp", "devices", "batch",
            "running_batch", "output_len", "metric", "value")
METRICS = ("avg_power_w_per_gpu", "energy_per_output_token_j", "energy_per_request_j")


def _parse(raw: Mapping[str, str | None], where: str) -> PublishedEnergyRow:
    text = {k: (raw.get(k) or "").strip() for k in ("id", "source", "url", "hardware", "model", "precision",
                                                     "software", "metric")}
    if text["metric"] not in METRICS:
        raise ConfigError(f"{where}:metric", text["metric"], f"expected one of {', '.join(METRICS)}")
    return PublishedEnergyRow(
        **text, tp=positive_number(raw, "tp", where, integer=True),
        devices=positive_number(raw, "devices", where, integer=True),
        batch=positive_number(raw, "batch", where, integer=True),
        running_batch=positive_number(raw, "running_batch", where),
        output_len=positive_number(raw, "output_len", where), value=positive_number(raw, "value", where))


def load(path: str | Path = DEFAULT_DATA) -> list[ServingPowerRun]:
    """The v3.0 runs of ``path`` that give both power and energy per output token."""
    rows = [r for r in read_rows(path, REQUIRED, _parse) if r.source.startswith(SOURCE)]
    by: dict[tuple, dict[str, PublishedEnergyRow]] = {}
    for r in rows:
        if r.devices != r.tp:       # one replica per run: its throughput and iteration are the run's
            raise ConfigError("devices", r.devices, f"row {r.id}: {SOURCE} runs are one replica of TP {r.tp}")
        metrics = by.setdefault((r.url, r.hardware, r.model, r.precision, r.tp, r.devices, r.batch), {})
        if r.metric in metrics:
            raise ConfigError("id", r.id, f"repeats {metrics[r.metric].id}'s run and metric")
        metrics[r.metric] = r
    runs = []
    for metrics in by.values():
        power, energy = metrics.get("avg_power_w_per_gpu"), metrics.get("energy_per_output_token_j")
        if power is None or energy is None:
            have = power or energy
            assert have is not None
            raise ConfigError("id", have.id, "a run needs both avg_power_w_per_gpu and energy_per_output_token_j")
        for name in ("running_batch", "output_len", "software"):
            if getattr(power, name) != getattr(energy, name):
                raise ConfigError(name, getattr(energy, name), f"row {energy.id} disagrees with row {power.id}")
        runs.append(ServingPowerRun(power=power, energy_id=energy.id,
                                    output_tok_s=power.value * power.devices / energy.value))
    if not runs:
        raise ConfigError("data", str(path), f"no {SOURCE} run with both power and energy per token")
    return runs


def prompt_chunks(tokens: int, prompt: int) -> tuple[PrefillChunk, ...]:
    """A step's ``tokens`` of new prompts of ``prompt`` tokens each: whole prompts, and what is left as
    a chunk halfway into one (its earlier half already cached), as chunked prefill spreads a prompt."""
    whole, rest = divmod(tokens, prompt)
    chunks = (PrefillChunk(whole, prompt, 0),) if whole else ()
    return chunks + ((PrefillChunk(1, rest, (prompt - rest) // 2),) if rest else ())


def price(run: ServingPowerRun, prompt: int) -> dict[str, float]:
    """The model's mean iteration of ``run`` at prompts of ``prompt`` tokens: its time, its power per
    GPU over that time, and its energy per output token at the measured pace."""
    row = run.power
    device = PRESETS.get(row.hardware)
    if device is None:
        raise ConfigError("hardware", row.hardware, f"row {row.id}: unknown hardware")
    model, precision = get_model(row.model), get_precision(row.precision)
    runtime, _ = runtime_for(row.software, runtime_profiles())
    system = System.of(device, tp=row.tp, devices=row.devices, runtime=runtime)
    batch = max(1, round(row.running_batch))
    prompt_tokens = max(1, min(round(batch * prompt / row.output_len), TOKEN_BUDGET - batch))
    ops = build_iteration(model, precision, row.tp, prefill=prompt_chunks(prompt_tokens, prompt),
                          decode_batch=batch, decode_kv_len=round(prompt + row.output_len / 2), fuse_linear=True)
    stage = stage_time(system, precision, ops)
    energy_j = workload_energy_j(device, precision.compute_dtype, stage.activity())
    # the same counted work at the measured pace: its dynamic energy plus static power over the measured
    # time of an iteration (the time model's error left out, the unknown prompt length left in)
    static_w = assess(device).working_static_w
    paced_j = energy_j + static_w * (run.iteration_s - stage.time_s)
    return {"model_ms": stage.time_s * 1e3, "model_w": energy_j / stage.time_s,
            "paced_j_per_token": paced_j * row.devices / batch}


def _errors(rows: list[dict[str, Any]], key: str, measured: str) -> dict[str, float]:
    """Median errors (%) over ``rows`` of the model's ``key`` against ``measured``: at the central
    prompt, and at each end of the prompt band."""
    def median(values: Any) -> float:
        return statistics.median((v - 1.0) * 100.0 for v in values)
    return {"central": median(r[key] / r[measured] for r in rows),
            "low": median(min(r[f"{key}_band"]) / r[measured] for r in rows),
            "high": median(max(r[f"{key}_band"]) / r[measured] for r in rows)}


def compare(runs: Sequence[ServingPowerRun]) -> dict[str, Any]:
    """Every run beside the model at each of ``PROMPTS``; by configuration, median errors at
    ``CENTRAL_PROMPT`` and over the band: power at the model's own pace, its time per iteration, and
    energy per output token at the measured pace."""
    rows = []
    for run in runs:
        at = {p: price(run, p) for p in PROMPTS}
        central = at[CENTRAL_PROMPT]
        p = run.power
        row = {"ids": [p.id, run.energy_id], "hardware": p.hardware, "model": p.model, "precision": p.precision,
               "tp": p.tp, "devices": p.devices, "batch_cap": p.batch, "running_batch": p.running_batch,
               "measured_w": p.value, "measured_ms": run.iteration_s * 1e3,
               "measured_j_per_token": p.value * p.devices / run.output_tok_s}
        for key in ("model_w", "model_ms", "paced_j_per_token"):
            row[key] = central[key]
            row[f"{key}_band"] = [min(a[key] for a in at.values()), max(a[key] for a in at.values())]
        rows.append(row)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["hardware"], r["devices"], r["model"], r["precision"])):
        groups.setdefault(config(r), []).append(r)
    summary = {name: {"n": len(g), "measured_w": [min(r["measured_w"] for r in g), max(r["measured_w"] for r in g)],
                      "power": _errors(g, "model_w", "measured_w"), "pace": _errors(g, "model_ms", "measured_ms"),
                      "paced_energy": _errors(g, "paced_j_per_token", "measured_j_per_token")}
               for name, g in groups.items()}
    return {"prompts": list(PROMPTS), "central_prompt": CENTRAL_PROMPT, "rows": rows, "by_config": summary}


def config(row: dict[str, Any]) -> str:
    return f"{row['devices']} x {row['hardware']}, {row['model']} {row['precision']} TP{row['tp']}"


def _cell(e: dict[str, float]) -> str:
    return f"{e['central']:+.0f}% ({e['low']:+.0f}% to {e['high']:+.0f}%)"


def table(report: dict[str, Any]) -> str:
    """Markdown: per configuration, the measured power and the model's median errors."""
    p, prompts = report["central_prompt"], report["prompts"]
    out = ["| configuration | runs | measured W per GPU | model W per GPU | model time per iteration | "
           "model J per output token at the measured pace |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in report["by_config"].items():
        lo, hi = s["measured_w"]
        out.append(f"| {name} | {s['n']} | {lo:.0f}-{hi:.0f} | {_cell(s['power'])} | {_cell(s['pace'])} | "
                   f"{_cell(s['paced_energy'])} |")
    out += ["", f"Errors of the model (above zero: higher, or slower), medians over each configuration's batch caps "
                f"at {p}-token prompts, in brackets at {prompts[0]} and {prompts[-1]} (the runs' prompt length is "
                "not published). The time compares the model's mean iteration with the measured one (running batch "
                "over output tokens per second); \"at the measured pace\" charges the model's counted work its static "
                "power over the measured time instead of its own (its power at that pace errs alike)."]
    return "\n".join(out)


def figures(report: dict[str, Any]) -> dict[str, str]:
    """The figures docs/validation.md quotes (the H100's; the B200 has no floorplan of its own)."""
    from ador.cost.report import component_power_calibration, work_energy_calibration
    s = report["by_config"]
    h100 = [v for k, v in s.items() if "h100" in k]
    b200 = [v for k, v in s.items() if "b200" in k]
    # the same runs under the rule before the GEMM anchor: every component scaled by the TDP's factor
    old = component_power_calibration() / work_energy_calibration()

    def pct(values: list[float]) -> str:
        return span(values, "+.0f", sep=" to ", unit="%")

    return {"runs": str(len(report["rows"])), "configs": str(len(s)),
            "h100_model": pct([v["power"]["central"] for v in h100]),
            "h100_full_load": pct([((1 + v["power"]["central"] / 100) * old - 1) * 100 for v in h100]),
            "h100_pace": pct([v["pace"]["central"] for v in h100]),
            "h100_paced_energy": pct([v["paced_energy"]["central"] for v in h100]),
            "h100_paced_energy_band": pct([e for v in h100 for e in (v["paced_energy"]["low"],
                                                                     v["paced_energy"]["high"])]),
            # under the full-load factor every component, static included, shrinks by the same ratio
            "h100_full_load_paced_high": pct([((1 + v["paced_energy"]["high"] / 100) * old - 1) * 100 for v in h100]),
            "b200_model": pct([v["power"]["central"] for v in b200]),
            "b200_pace": pct([v["pace"]["central"] for v in b200]),
            "b200_paced_energy": pct([v["paced_energy"]["central"] for v in b200])}


def plot(report: dict[str, Any], path: str | Path) -> None:
    """Power per GPU against the running batch, one panel per configuration: measured points and the
    model's band over the prompt lengths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["by_config"])
    cols = 3
    rows_n = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.0 * cols, 3.7 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names):
        g = sorted((r for r in report["rows"] if config(r) == name), key=lambda r: r["running_batch"])
        xs = [r["running_batch"] for r in g]
        ax.fill_between(xs, [r["model_w_band"][0] for r in g], [r["model_w_band"][1] for r in g], color="tab:blue",
                        alpha=0.3, label="model (prompts of the band)")
        ax.scatter(xs, [r["measured_w"] for r in g], color="black", s=18, zorder=3, label="measured (ML.ENERGY)")
        cost = assess(PRESETS[g[0]["hardware"]])
        tdp = cost.datasheet_tdp_w or cost.tdp_w
        ax.axhline(tdp, color="grey", linestyle="--", linewidth=0.8, label=f"TDP {tdp:.0f} W")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.35 * tdp)
        ax.set_title(name, fontsize=8.5)
        ax.set_xlabel("mean running batch")
        ax.set_ylabel("power per GPU (W)")
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"Power under serving load: published vLLM runs against the model at its own pace (bands: prompts "
                 f"of {report['prompts'][0]}-{report['prompts'][-1]} tokens; energy at the measured pace: the table)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOT_NAME = "validation_energy_serving.png"
DOC_COMMAND = ('python -c "from ador.validation import energy_serving; '
               'energy_serving.update_doc(\'docs/validation.md\')"')


def update_doc(path: str | Path) -> None:
    """Rewrite the generated serving-power section of ``path`` from the shipped file, and its plot beside it."""
    from ador.markdown import update_section
    report = compare(load())
    plot(report, Path(path).parent / PLOT_NAME)
    update_section(Path(path), DOC_COMMAND, "\n\n".join(
        [f"![power under serving load: published runs against the model]({PLOT_NAME})", table(report)]))
