"""The headline pipeline (issue 19): its numbers are the model's, its ladder moves the right way, its
sentences say what the breakdown says, and its serving capacities are `ador simulate`'s."""
import json
import re

import pytest

from ador.cli import main
from ador.explore.fairness import TBT
from ador.headline import run, write_report
from ador.headline.plan import PAPER, REFERENCE, SERVING, STATIC_ROLES, SYMMETRIC
from tests.conftest import REPO

SEEDS = (1, 2)


@pytest.fixture(scope="module")
def headline(tmp_path_factory):
    """The static half of the pipeline on a tiny budget (two seeds, 40 trials each)."""
    from ador.headline.pipeline import collect
    tmp = tmp_path_factory.mktemp("headline")
    run(40, tmp / "studies", seeds=SEEDS, roles=STATIC_ROLES, workers=1, progress=False)
    h = collect(tmp / "studies", seeds=SEEDS, serving=False)
    return tmp, h


@pytest.mark.slow
def test_every_number_of_the_named_design_is_what_evaluate_gives(headline, capsys):
    from ador.headline.pipeline import to_json
    tmp, h = headline
    report = write_report(tmp / "out", tmp / "studies", serving=False, seeds=SEEDS)
    data = json.loads((tmp / "out" / "llama3-70b-8dev.json").read_text())
    assert data == json.loads(json.dumps(to_json(h), sort_keys=True, default=str))
    design = tmp / "out" / "llama3-70b-8dev-recommended.yaml"
    capsys.readouterr()
    assert main(["evaluate", "--hardware", str(design), "--model", "llama-3-70b", "--tp", "8", "--devices", "8",
                 "--batch", "128", "--input-len", "2048", "--output-len", "256", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    row = next(b for b in data["baselines"] if b["gpu"] == REFERENCE)["design"]
    for key in ("ttft_ms", "tbt_p99_ms", "output_tok_s", "die_area_mm2"):
        assert ev[key] == pytest.approx(row[key], rel=1e-9), key
    # the report prints those numbers
    text = report.read_text()
    assert f"| p99 TBT (ms) | {row['tbt_p99_ms']:.2f} |" in text
    assert f"| TTFT (ms) | {row['ttft_ms']:.0f} |" in text
    # each baseline's held-out serving check is the one computed, in its row and its sentence
    for gpu, served in h.serving_coverage.items():
        assert re.search(rf"^\| {re.escape(gpu)} \| [a-z ]+ \| {re.escape(served.cell())} \|", text, re.M), gpu
        assert served.sentence(f"{gpu}'s time per output token") in text
    assert h.serving_coverage["b200-sxm-192gb"].errors_pct      # the B200 has runs at this size, TP and load
    # ratios between the GPUs on the same held-out runs: the ratios module's table of exactly those runs
    from ador.validation import ratios
    runs = [r for c in h.serving_coverage.values() for r in c.results]
    assert h.serving_ratios == ratios.summary(runs, {"TPOT (mean)": ("tpot_mean_ms",)})
    assert ratios.table(h.serving_ratios) in text and "| TPOT (mean) |" in text
    pair = next(x for x in h.serving_ratios if (x["gpu"], x["base"]) == ("b200-sxm-192gb", "h200-sxm-141gb"))
    assert pair["n"] == len(ratios.pair_errors(runs, "b200-sxm-192gb", "h200-sxm-141gb")["tpot_mean_ms"]) > 0
    # the A100 decode step's all-reduces: Llama-3-70B's 160 per step of batch x hidden x 2 bytes, as priced
    assert (h.allreduce.per_step, h.allreduce.message_bytes) == (160, 128 * 8192 * 2)
    assert h.allreduce.near and h.allreduce.sentence("The A100 decode step's all-reduces") in text
    named = h.named_seed[SYMMETRIC]
    last = h.ladders[named][-1]
    assert last.ratios[TBT] == pytest.approx(h.ratios[SYMMETRIC]["tbt_x"].values[named], rel=1e-9)
    assert last.ratios["area_efficiency"] == pytest.approx(h.ratios[SYMMETRIC]["area_eff_x"].values[named], rel=1e-9)
    # the ladder's first row is the paper study's own comparison
    first = h.ladders[h.named_seed[PAPER]][0]
    assert first.ratios[TBT] == pytest.approx(h.ratios[PAPER]["tbt_x"].values[h.named_seed[PAPER]], rel=1e-9)
    # regenerated from storage without running anything: the same report
    again = write_report(tmp / "out", tmp / "studies", serving=False, seeds=SEEDS).read_text()
    assert again == text
    for png in ("llama3-70b-8dev-ladder.png", "llama3-70b-8dev-fronts.png"):
        assert (tmp / "out" / png).stat().st_size > 10_000


def ladder_violations(ladders) -> list[str]:
    """Steps that remove an advantage of the design (its ratios fall when the step is applied
    alone) but raise the cumulative ratio beyond the seeds' range."""
    from ador.headline.picks import Spread
    from ador.headline.report import step_effect
    seeds = sorted(ladders)
    n = len(ladders[seeds[0]])
    bad = []
    for key in (TBT, "area_efficiency"):
        spreads = [Spread({s: ladders[s][i].ratios[key] for s in seeds}) for i in range(n)]
        for seed, rows in ladders.items():
            for i in range(1, n - 1):       # the last row is a re-optimised design, not a step
                if step_effect(rows[i], rows[0]) != "removes an advantage of the design":
                    continue
                if rows[i].ratios[key] > rows[i - 1].ratios[key] + spreads[i - 1].high - spreads[i - 1].low + 1e-9:
                    bad.append(f"seed {seed}: {rows[i].label} raises {key}")
    return bad


@pytest.mark.slow
def test_the_ladder_is_monotone_where_it_must_be(headline):
    import dataclasses
    _, h = headline
    assert ladder_violations(h.ladders) == []
    # the symmetric re-optimised design never beats the paper-style comparison beyond the seed range
    for key in (TBT, "area_efficiency"):
        firsts = [rows[0].ratios[key] for rows in h.ladders.values()]
        assert min(rows[-1].ratios[key] for rows in h.ladders.values()) <= max(firsts) + 1e-9
    # mutant: steps not accumulated (each row is its step alone, from the first row): the
    # check must see a row that removes an advantage yet rises
    mutant = {seed: [rows[0]] + [dataclasses.replace(r, ratios=dict(r.alone)) for r in rows[1:-1]] + [rows[-1]]
              for seed, rows in h.ladders.items()}
    assert ladder_violations(mutant)


@pytest.mark.slow
def test_every_explanatory_sentence_matches_the_breakdown(headline):
    tmp, h = headline
    text = write_report(tmp / "out2", tmp / "studies", serving=False, seeds=SEEDS).read_text()
    section = text.split("## What binds")[1].split("\n## ")[0]
    for key in ("design", "baseline"):
        a = h.anatomy[key]
        m = re.search(re.escape(a.label) + r"'s p99 decode step takes ([\d.]+) ms: (.*)\.", section)
        assert m and float(m.group(1)) == pytest.approx(a.time_ms, abs=0.006)
        shares = dict((p.split("% ", 1)[1], float(p.split("%")[0])) for p in m.group(2).split(", "))
        from ador.report.binds import BOUND_WORDS
        for bound, ms in a.ms_by_bound.items():
            words = BOUND_WORDS.get(bound, bound)
            if words in shares:
                assert shares[words] == pytest.approx(100 * ms / a.time_ms, abs=0.51)
    ratio = h.anatomy["baseline"].time_ms / h.anatomy["design"].time_ms
    assert f"is {ratio:.2f}x as long as" in section
    # the step the TBT ratio is quoted on is the anatomy's: the p99 decode step
    v = next(x for x in h.baselines if x.gpu == REFERENCE)
    assert v.design["tbt_p99_ms"] == pytest.approx(h.anatomy["design"].time_ms, rel=1e-9)
    assert v.baseline["tbt_p99_ms"] == pytest.approx(h.anatomy["baseline"].time_ms, rel=1e-9)


def test_serving_capacity_is_what_simulate_finds(capsys):
    from ador.hardware import GPUS
    from ador.hardware.runtime import get_runtime
    from ador.headline.serving_view import ServingLine, capacity
    line = ServingLine("a100", GPUS[REFERENCE], "chunked", get_runtime("tensorrt-llm"))
    mine = capacity(line, "llama-3-70b", "fp16", tp=8, devices=8)
    capsys.readouterr()
    assert main(["simulate", "--hardware", REFERENCE, "--model", "llama-3-70b", "--tp", "8", "--devices", "8",
                 "--policy", "chunked", "--requests", str(SERVING.requests), "--input-len", str(SERVING.input_len),
                 "--output-len", str(SERVING.output_len), "--lengths", "long-tailed", "--find-capacity",
                 "--capacity-by", "p99", "--slo", f"ttft_p99_ms={SERVING.ttft_p99_ms:g}",
                 "--slo", f"tbt_p99_ms={SERVING.tbt_p99_ms:g}", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_rate_rps"] == mine > 0
    assert data["ttft_ms"]["p99"] <= SERVING.ttft_p99_ms and data["tbt_ms"]["p99"] <= SERVING.tbt_p99_ms


def test_headline_cli_report_only_needs_stored_studies(tmp_path, capsys):
    assert main(["headline", "--report-only", "--no-serving", "--storage-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")]) != 0
    assert "llama3-70b-8dev" in capsys.readouterr().err


def test_shipped_studies_exist_for_every_role():
    from ador.explore.config import load_study
    from ador.headline.plan import ROLES
    for name in ROLES.values():
        study = load_study(REPO / "studies" / f"{name}.yaml")
        assert study.spec.trials >= 20


@pytest.mark.slow
def test_a_repicked_knee_at_unchanged_areas_is_the_studys_knee(headline):
    from ador.hardware import GPUS
    from ador.headline.compare import score
    from ador.headline.picks import feasible_population
    from ador.headline.sensitivity import MAC_PARTS, repick
    tmp, h = headline
    seed = h.named_seed[SYMMETRIC]
    study = h.searched[SYMMETRIC].study
    gpu = score(GPUS[REFERENCE], study)
    population = feasible_population(SYMMETRIC, tmp / "studies", seed)
    tbt_x, area_x = repick(population, study, MAC_PARTS, 1.0, gpu)
    assert tbt_x == pytest.approx(h.ratios[SYMMETRIC]["tbt_x"].values[seed], rel=1e-9)
    assert area_x == pytest.approx(h.ratios[SYMMETRIC]["area_eff_x"].values[seed], rel=1e-9)
    # the re-picked knee is taken from the rescored population: scaling MAC area moves it
    assert repick(population, study, MAC_PARTS, 0.5, gpu)[1] != pytest.approx(area_x, rel=1e-6)


def test_sensitivity_says_how_far_the_tbt_ratio_rests_on_the_gpus_tile_schedule():
    """The baseline GPU's GEMM schedule flipped, its constants as fitted: the A100 (whole waves,
    unmeasured) priced stream-K decodes faster, so the design's TBT ratio falls; an H100 (stream-K,
    measured) priced in whole waves decodes slower. The line, its note and the report's sentence say so."""
    import dataclasses

    from ador.explore.config import load_study
    from ador.hardware import GPUS
    from ador.hardware.io import load_device
    from ador.headline.compare import score
    from ador.headline.plan import ROLES
    from ador.headline.sensitivity import SCHEDULE, schedule_caveat, table
    study = load_study(REPO / "studies" / f"{ROLES[SYMMETRIC]}.yaml")
    design = load_device(REPO / "docs" / "results" / "llama3-70b-8dev-recommended.yaml")
    mine = score(design, study)
    text = (REPO / "docs" / "results" / "llama3-70b-8dev.md").read_text()
    for gpu, flip, measured in ((REFERENCE, "stream-k", False), ("h100-sxm-80gb", "waves", True)):
        lines = table(design, study, gpu=gpu)
        line = next(s for s in lines if s.group == SCHEDULE)
        assert line.label == f"{gpu}: {GPUS[gpu].gemm_schedule} -> {flip}"
        flipped = score(dataclasses.replace(GPUS[gpu], gemm_schedule=flip), study)
        assert line.tbt_x == pytest.approx(flipped["tbt_p99_ms"] / mine["tbt_p99_ms"])
        assert line.area_eff_x == pytest.approx(mine["area_eff"] / flipped["area_eff"])
        assert line.note.endswith("measured on this GPU") and ("not measured" not in line.note) == measured
        sentence = schedule_caveat(lines, gpu)
        assert f"{line.tbt_x:.2f}x" in sentence and f"{lines[0].tbt_x:.2f}x" in sentence
        moved = abs(line.tbt_x / lines[0].tbt_x - 1.0) > 0.02
        assert ("barely moves" in sentence) == (not moved)
        if gpu == REFERENCE:
            assert moved and line.tbt_x < 0.9 * lines[0].tbt_x  # whole waves hold the A100's ratio up
            assert "rests on" in sentence and "not measured on this GPU" in sentence
            assert sentence in text                             # the shipped report says it
        else:
            assert line.tbt_x >= lines[0].tbt_x * (1 - 1e-9)   # whole waves never speed a GPU up
            assert not moved or "as measured on this GPU" in sentence
