"""How the headline's ratios move when an assumption moves: the area model's MAC and SRAM figures
+-50%, the MAC trees' activation buffer shared or private, how the GPU's GEMMs place their tiles on
the SMs (``GpuSpec.gemm_schedule``), the prompt/output length mix, the batch.
Each line rescores the named design and the GPU under the same study rules; nothing is re-searched."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Sequence

from ador.cost.area import device_area, floorplan_of_chip
from ador.cost.package import INTERPOSER_KEEP_OUT
from ador.explore.config import Study
from ador.hardware import GPUS, AdorChip
from ador.headline.compare import area_basis, ratio, score
from ador.headline.plan import AREA_SCALES, BATCHES, LENGTH_MIXES, REFERENCE
from ador.validation.gemm import SCHEDULE_MEASURED

MAC_PARTS = ("mac_arrays", "mac_trees")          # ador/cost/area.py die_area's components
AS_SEARCHED, SCHEDULE = "as searched", "GPU GEMM schedule"
SCHEDULE_MOVES = 0.02     # a flip that moves the TBT ratio by less is reported as barely moving it
SRAM_PARTS = ("local_sram", "global_sram")


@dataclass(frozen=True)
class Line:
    group: str          # "area model", "MAC-tree buffer", "GPU GEMM schedule", "length mix", "batch"
    label: str
    tbt_x: float | None
    area_eff_x: float | None
    note: str = ""
    # the knee picked again from the whole feasible population rescored by the moved assumption
    # (area lines only: nothing else is re-searched)
    repicked_tbt_x: float | None = None
    repicked_area_eff_x: float | None = None


def scaled_area_eff(design: AdorChip, study: Study, parts: tuple[str, ...], scale: float,
                    metrics: dict[str, float]) -> float:
    """The design's area efficiency with the area model's ``parts`` scaled by ``scale`` (the die
    grows or shrinks by their change; the package by the die's change plus its keep-out)."""
    parts_mm2 = device_area(floorplan_of_chip(design))
    delta = (scale - 1.0) * sum(parts_mm2[p] for p in parts)
    if area_basis(study) == "package":
        grown = metrics["package_area_mm2"] + delta * (1.0 + INTERPOSER_KEEP_OUT)
    else:
        grown = metrics["die_area_mm2"] + delta
    base = metrics["package_area_mm2" if area_basis(study) == "package" else "die_area_mm2"]
    return metrics["area_eff"] * base / grown


def repick(population: list[tuple[AdorChip, dict[str, float]]], study: Study, parts: tuple[str, ...], scale: float,
           gpu_metrics: dict[str, float]) -> tuple[float | None, float | None]:
    """The knee of the feasible ``population`` (designs with their stored metrics) once its area
    efficiencies are rescored with ``parts`` scaled, as ratios against the GPU."""
    from ador.explore.pareto import knee_index, pareto_mask
    if not population:
        return None, None
    metric = "output_tok_s_per_package_mm2" if area_basis(study) == "package" else "output_tok_s_per_mm2"
    points = [(m["tbt_p99_ms"], scaled_area_eff(d, study, parts, scale, {**m, "area_eff": m[metric]}))
              for d, m in population]
    directions = ["minimize", "maximize"]
    front = [p for p, keep in zip(points, pareto_mask(points, directions)) if keep]
    tbt, eff = front[knee_index(front, directions)]
    return gpu_metrics["tbt_p99_ms"] / tbt, eff / gpu_metrics["area_eff"]


def table(design: AdorChip, study: Study, gpu: str = REFERENCE,
          population: Sequence[tuple[AdorChip, dict[str, float]]] = ()) -> list[Line]:
    mine, theirs = score(design, study), score(GPUS[gpu], study)
    w = study.workload
    lines = [Line(AS_SEARCHED, f"{w.batch} x {w.input_len} in / {w.output_len} out",
                  ratio("tbt_p99_ms", mine, theirs), ratio("area_eff", mine, theirs))]
    for parts, what in ((MAC_PARTS, "MAC area"), (SRAM_PARTS, "SRAM area")):
        for s in AREA_SCALES:
            eff = scaled_area_eff(design, study, parts, s, mine)
            lines.append(Line("area model", f"{what} x{s:g}", ratio("tbt_p99_ms", mine, theirs),
                              eff / theirs["area_eff"], "the GPU's area is its datasheet die",
                              *repick(list(population), study, parts, s, theirs)))
    other: Literal["shared", "private"] = "private" if design.mactree.buffer == "shared" else "shared"
    flipped = dataclasses.replace(design, mactree=dataclasses.replace(design.mactree, buffer=other))
    m = score(flipped, study)
    lines.append(Line("MAC-tree buffer", f"{design.mactree.buffer} -> {other}", ratio("tbt_p99_ms", m, theirs),
                      ratio("area_eff", m, theirs)))
    # the GPU's tile schedule is measured on Hopper only (docs/validation.md, "Single GEMMs"); the other
    # schedule, without refitting, shows how much of the ratio rests on it
    baseline = GPUS[gpu]
    schedule = _other(baseline.gemm_schedule)
    g = score(dataclasses.replace(baseline, gemm_schedule=schedule), study)
    lines.append(Line(SCHEDULE, f"{gpu}: {baseline.gemm_schedule} -> {schedule}",
                      ratio("tbt_p99_ms", mine, g), ratio("area_eff", mine, g),
                      "the GPU's constants as fitted; " + ("measured on this GPU" if gpu in SCHEDULE_MEASURED
                                                           else "not measured on this GPU")))
    for label, prompt, output in LENGTH_MIXES:
        w = dataclasses.replace(study.workload, input_len=prompt, output_len=output)
        m, g = score(design, study, w), score(GPUS[gpu], study, w)
        lines.append(Line("length mix", label, ratio("tbt_p99_ms", m, g), ratio("area_eff", m, g),
                          "" if g["memory_utilisation"] <= 1 else f"{gpu} does not hold the batch's KV cache"))
    for batch in BATCHES:
        w = dataclasses.replace(study.workload, batch=batch)
        m, g = score(design, study, w), score(GPUS[gpu], study, w)
        lines.append(Line("batch", f"batch {batch}", ratio("tbt_p99_ms", m, g), ratio("area_eff", m, g),
                          "" if g["memory_utilisation"] <= 1 else f"{gpu} does not hold the batch's KV cache"))
    return lines


def _other(schedule: str) -> Literal["waves", "stream-k"]:
    return "stream-k" if schedule == "waves" else "waves"


def schedule_caveat(lines: Sequence[Line], gpu: str = REFERENCE) -> str:
    """A sentence on how far the TBT ratio rests on ``gpu``'s GEMM tile schedule, from its sensitivity
    line and whether a sweep measured that GPU's schedule; "" without the lines."""
    base = next((s for s in lines if s.group == AS_SEARCHED), None)
    flip = next((s for s in lines if s.group == SCHEDULE), None)
    if base is None or flip is None or not base.tbt_x or not flip.tbt_x:
        return ""
    schedule = GPUS[gpu].gemm_schedule
    other = _other(schedule)
    if abs(flip.tbt_x / base.tbt_x - 1.0) <= SCHEDULE_MOVES:
        return (f"The TBT ratio barely moves with how {gpu}'s GEMMs place their tiles on the SMs: "
                f"{base.tbt_x:.2f}x priced {schedule}, {flip.tbt_x:.2f}x priced {other}.")
    if gpu in SCHEDULE_MEASURED:
        status = "as measured on this GPU (docs/validation.md, \"Single GEMMs\")"
    elif schedule == "waves":
        status = ("not measured on this GPU: Hopper's GEMMs were measured to pay no partial last wave, and the "
                  "public rows, mostly A100, fit better with whole waves, through TTFT and output per GPU: their "
                  "decode rows prefer neither (benchmarks/splitk_fit.py)")
    else:
        status = "not measured on this GPU, assumed as measured on Hopper"
    return (f"The TBT ratio rests on how {gpu}'s GEMMs place their tiles on the SMs: priced {schedule} ({status}), "
            f"the named design's ratio is {base.tbt_x:.2f}x; priced {other}, {flip.tbt_x:.2f}x.")
