"""The fairness ladder: a design's ratios against a GPU as each modelling asymmetry is removed.

Every answer ador gives is a ratio, and a ratio is only worth something when both sides are judged
by the same rules. The ladder starts from the comparison as the ADOR paper would have it (the
design under the paper's idealised runtime, its dies alone, the GPU anchored to its datasheet
power) and removes one named asymmetry per step, ending in the fully symmetric comparison. Each
step is also applied alone to the first row, so its own worth in the ratio is visible. Computation
only; ``render_markdown`` formats it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from ador.errors import ConfigError, DoesNotFitError
from ador.explore.metrics import Workload, evaluate_design, ratio_vs
from ador.hardware import AdorChip, GpuSpec
from ador.hardware.runtime import ADOR_PAPER, RuntimeProfile, get_runtime
from ador.perf.gpu import single_tensor_efficiency
from ador.workload import ModelSpec, Precision

# The metrics a ladder row compares, and the area each area-efficiency figure is taken over.
TBT, TTFT, ENERGY = "tbt_p99_ms", "ttft_ms", "energy_per_token_j"
AREA = {"die": "output_tok_s_per_mm2", "package": "output_tok_s_per_package_mm2"}


@dataclass(frozen=True)
class Setting:
    """How one comparison is made."""
    design: AdorChip
    design_runtime: RuntimeProfile
    gpu_runtime: RuntimeProfile
    power_rule: str = "datasheet-gpus"
    area: str = "die"
    precision: Precision | None = None     # the MAC datatype whose fitted GPU efficiency the design gets


@dataclass(frozen=True)
class Step:
    label: str        # what this step makes the same on both sides
    why: str          # the asymmetry it removes, and its source
    apply: Callable[[Setting, GpuSpec], Setting]


def _profile(base: RuntimeProfile, name: str, **fields: Any) -> RuntimeProfile:
    return dataclasses.replace(base, name=name, **fields)


def _kernel_overhead(s: Setting, gpu: GpuSpec) -> Setting:
    g = s.gpu_runtime
    return dataclasses.replace(s, design_runtime=_profile(s.design_runtime, s.design_runtime.name + "+kernel",
                                                          kernel_overhead_s=g.kernel_overhead_s,
                                                          kernel_overhead_cycles=g.kernel_overhead_cycles))


def _links(s: Setting, gpu: GpuSpec) -> Setting:
    g = s.gpu_runtime
    return dataclasses.replace(s, design_runtime=_profile(s.design_runtime, s.design_runtime.name + "+links",
                                                          link_efficiency=g.link_efficiency,
                                                          collective_latency_s=g.collective_latency_s,
                                                          comm_overlap=g.comm_overlap))


def _overlap(s: Setting, gpu: GpuSpec) -> Setting:
    return dataclasses.replace(s, design_runtime=_profile(s.design_runtime, s.design_runtime.name + "+overlap",
                                                          overlap=s.gpu_runtime.overlap))


def _memory(s: Setting, gpu: GpuSpec) -> Setting:
    g = s.gpu_runtime
    return dataclasses.replace(s, design_runtime=_profile(s.design_runtime, s.design_runtime.name + "+hbm",
                                                          hbm_efficiency=g.hbm_efficiency,
                                                          reserved_bytes=g.reserved_bytes))


def _whole_profile(s: Setting, gpu: GpuSpec) -> Setting:
    return dataclasses.replace(s, design_runtime=s.gpu_runtime)


def _matrix_efficiency(s: Setting, gpu: GpuSpec) -> float:
    """The GPU die's fitted fraction of peak for the comparison's MAC datatype (fp8 or 16-bit)."""
    return single_tensor_efficiency(gpu, s.precision) if s.precision is not None else gpu.efficiency.tensor


def _matrix(s: Setting, gpu: GpuSpec) -> Setting:
    return dataclasses.replace(s, design=dataclasses.replace(s.design, matrix_efficiency=_matrix_efficiency(s, gpu)))


def _package(s: Setting, gpu: GpuSpec) -> Setting:
    return dataclasses.replace(s, area="package")


def _power(s: Setting, gpu: GpuSpec) -> Setting:
    return dataclasses.replace(s, power_rule="calibrated")


def _resources(s: Setting, gpu: GpuSpec) -> Setting:
    """The design with the GPU's active HBM stacks (same per-stack bandwidth and capacity) and its
    total link bandwidth (same link count, bandwidth per link scaled)."""
    d = s.design
    if not gpu.memory_stacks:
        raise ConfigError("baseline", gpu.name, "has no HBM stacks to match")
    hbm = dataclasses.replace(d.hbm, stacks=gpu.memory_stacks)
    links = d.links if not d.links.count else dataclasses.replace(
        d.links, bw_bytes_per_s_per_link=gpu.link_bw_bytes_per_s / d.links.count)
    return dataclasses.replace(s, design=dataclasses.replace(d, hbm=hbm, links=links))


STEPS: tuple[Step, ...] = (
    Step("per-kernel overhead", "the design pays the GPU runtime's fitted fixed cost per operator instead of a "
         "1000-cycle dispatch", _kernel_overhead),
    Step("link efficiency and collective latency", "the design's collectives reach the fitted fraction of link "
         "bandwidth and pay the fitted software latency per step, as the GPU's do", _links),
    Step("compute/memory overlap", "the design hides only the fitted share of the shorter of compute and data "
         "movement, as GPU kernels do (an ideal roofline hides all of it)", _overlap),
    Step("HBM efficiency and reserved memory", "the design reaches the fraction of peak bandwidth fitted for its "
         "HBM generation and keeps the runtime's reserve, instead of 90% and nothing", _memory),
    Step("same runtime profile", "everything else of the GPU's profile, the per-step host overhead included",
         _whole_profile),
    Step("matrix-engine efficiency", "the design's arrays sustain the GPU die's fitted fraction of peak, not 100% "
         "minus fill/drain", _matrix),
    Step("package area counted", "area efficiency over dies plus HBM stacks on the interposer, not dies alone",
         _package),
    Step("same power rule", "both sides' TDP and energy scaled by the same factors fitted on GPUs, instead of the "
         "GPU anchored to its datasheet TDP and the design unscaled", _power),
    Step("same HBM stacks and link bandwidth", "the design resized to the GPU's active HBM stacks and link "
         "bandwidth (not re-optimised)", _resources),
)


@dataclass(frozen=True)
class Row:
    label: str
    why: str
    design_runtime: str
    gpu_runtime: str
    power_rule: str
    area: str
    design: dict[str, float]
    gpu: dict[str, float]
    ratios: dict[str, float | None]           # cumulative: every step up to this one
    alone: dict[str, float | None] | None     # this step alone, applied to the first row

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _score(s: Setting, gpu: GpuSpec, model: ModelSpec, precision: Precision, workload: Workload, *, tp: int,
           devices: int | None) -> tuple[dict[str, float], dict[str, float], dict[str, float | None]]:
    mine = evaluate_design(s.design, model, precision, workload, tp=tp, devices=devices, runtime=s.design_runtime,
                           power_rule=s.power_rule)
    theirs = evaluate_design(gpu, model, precision, workload, tp=tp, devices=devices, runtime=s.gpu_runtime,
                             power_rule=s.power_rule)
    for side, name, metrics in (("design", s.design.name, mine), ("GPU", gpu.name, theirs)):
        if not metrics["memory_utilisation"] <= 1.0:       # a ratio of a run that cannot happen means nothing
            raise DoesNotFitError(f"batch={workload.batch}: the {side} {name} cannot hold {model.name} "
                                  f"({precision.name}, TP{tp}) and this batch: it needs "
                                  f"{100 * metrics['memory_utilisation']:.0f}% of its memory (runtime "
                                  f"{(s.design_runtime if side == 'design' else s.gpu_runtime).name})")
    area = AREA[s.area]
    ratios = {TBT: ratio_vs(TBT, mine[TBT], theirs[TBT]), TTFT: ratio_vs(TTFT, mine[TTFT], theirs[TTFT]),
              "area_efficiency": ratio_vs(area, mine[area], theirs[area]),
              ENERGY: ratio_vs(ENERGY, mine[ENERGY], theirs[ENERGY])}
    return mine, theirs, ratios


def ladder(design: AdorChip, gpu: GpuSpec, model: ModelSpec, precision: Precision, workload: Workload, *,
           tp: int, devices: int | None = None, gpu_runtime: RuntimeProfile | str | None = None,
           reoptimised: AdorChip | None = None) -> list[Row]:
    """The rows of the ladder; with ``reoptimised`` (a design searched under every symmetric rule), a
    last row for it."""
    first = Setting(design=design, design_runtime=ADOR_PAPER, gpu_runtime=get_runtime(gpu_runtime),
                    precision=precision)
    keep = ("tbt_p99_ms", "ttft_ms", "output_tok_s", "output_tok_s_per_mm2", "output_tok_s_per_package_mm2",
            "energy_per_token_j", "die_area_mm2", "package_area_mm2", "hbm_stacks", "link_bandwidth_gb_s")

    def row(label, why, s, alone) -> Row:
        mine, theirs, ratios = _score(s, gpu, model, precision, workload, tp=tp, devices=devices)
        return Row(label, why, s.design_runtime.name, s.gpu_runtime.name, s.power_rule, s.area,
                   {k: mine[k] for k in keep}, {k: theirs[k] for k in keep}, ratios, alone)

    rows = [row("as the paper would have it", "design under the ADOR paper's idealised runtime, dies only, GPU at "
                "its datasheet power", first, None)]
    current = first
    for step in STEPS:
        current = step.apply(current, gpu)
        alone = _score(step.apply(first, gpu), gpu, model, precision, workload, tp=tp, devices=devices)[2]
        rows.append(row(step.label, step.why, current, alone))
    if reoptimised is not None:
        final = dataclasses.replace(current, design=dataclasses.replace(
            reoptimised, matrix_efficiency=_matrix_efficiency(current, gpu)))
        rows.append(row("... re-optimised under these rules", f"design {reoptimised.name}, searched with every "
                        "rule above", final, None))
    return rows


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render_markdown(rows: list[Row], *, design: str, gpu: str, context: str) -> str:
    """The ladder as a Markdown table, with each step's effect alone."""
    out = [f"Design `{design}` against {gpu}; {context}. Ratios above 1 favour the design: TBT and TTFT "
           "(lower is better), area efficiency (output tokens/s per mm2, over dies or packages as the row says) "
           "and energy per output token. Each row keeps every step above it; \"alone\" applies only that step to "
           "the first row.", "",
           "| step: made the same on both sides | TBT x | TTFT x | area-eff. x | energy x | TBT x alone | "
           "area-eff. x alone |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        alone = r.alone or {}
        out.append(f"| {r.label} | {_x(r.ratios[TBT])} | {_x(r.ratios[TTFT])} | {_x(r.ratios['area_efficiency'])} | "
                   f"{_x(r.ratios[ENERGY])} | {_x(alone.get(TBT))} | {_x(alone.get('area_efficiency'))} |")
    out += ["", "What each step changes:", ""]
    out += [f"- **{r.label}**: {r.why} (design runtime `{r.design_runtime}`, GPU runtime `{r.gpu_runtime}`, "
            f"power rule `{r.power_rule}`, area over {r.area})." for r in rows]
    return "\n".join(out)
