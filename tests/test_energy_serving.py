"""Published GPU power under serving load (ador/data/energy-published.csv) against the model."""
import json
import subprocess
import sys

import pytest

from ador.errors import ConfigError
from ador.validation import energy_serving as es
from tests.conftest import REPO


@pytest.fixture(scope="module")
def report():
    return es.compare(es.load())


def test_every_v3_run_pairs_its_power_with_its_energy_per_token():
    runs = es.load()
    assert len(runs) == 69
    assert all(run.power.value > 0 and run.output_tok_s > 0 for run in runs)

    def run_of(model):
        key = ("h100-sxm-80gb", model, 128)
        return next(r for r in runs if (r.power.hardware, r.power.model, r.power.batch) == key)
    h100 = run_of("llama-3.1-8b")
    # ML.ENERGY v3 file meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json, max_num_seqs 128:
    # avg_power_watts 669.24, energy_per_token_joules 0.09511, output_throughput_tokens_per_sec 7036.5
    assert h100.power.value == pytest.approx(669.2)
    assert h100.output_tok_s == pytest.approx(7036.5, rel=1e-3)
    # ...Llama-3.1-70B-Instruct__lm-arena-chat.json, 4 H100s, max_num_seqs 128: avg_power_watts 2183.76 (all
    # four GPUs), energy_per_token_joules 0.56337, output_throughput_tokens_per_sec 3876.27
    tp4 = run_of("llama-3.1-70b")
    assert (tp4.power.devices, tp4.power.tp) == (4, 4)
    assert tp4.power.value == pytest.approx(2183.76 / 4, rel=1e-3)
    assert tp4.output_tok_s == pytest.approx(3876.27, rel=1e-3)


def test_the_compared_power_barely_moves_with_the_unknown_prompt_length(report):
    # the reason power, not energy per token, is compared: across 256-2048-token prompts the model's
    # power per GPU moves by a fraction of what its time per iteration does
    for r in report["rows"]:
        lo, hi = r["model_w_band"]
        assert hi / lo < 1.35, (r["ids"], lo, hi)


def test_the_docs_quote_the_serving_power_figures(report):
    doc = (REPO / "docs" / "validation.md").read_text()
    section = doc.split("### Power under serving load", 1)[1].split("<!-- BEGIN GENERATED", 1)[0]
    section = " ".join(section.split())
    f = es.figures(report)
    for key, value in f.items():
        if key not in ("runs", "configs"):
            assert value in section, (key, value)
    assert f"each of the {f['runs']} runs'" in section
    assert es.table(report) in doc
    assert (REPO / "docs" / es.PLOT_NAME).is_file()


@pytest.mark.parametrize("column,value,message", [
    ("running_batch", "", "running_batch"), ("running_batch", "nan", "running_batch"),
    ("tp", "0", "tp"), ("metric", "watts", "metric"), ("value", "-3", "value")])
def test_a_bad_row_is_refused_by_name(tmp_path, column, value, message):
    import csv
    with es.DEFAULT_DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0][column] = value
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ConfigError, match=message):
        es.load(bad)


def test_a_run_without_its_energy_row_is_refused(tmp_path):
    lines = es.DEFAULT_DATA.read_text().splitlines(keepends=True)
    header, rows = lines[0], [line for line in lines[1:] if not line.startswith("e001,")]
    path = tmp_path / "half.csv"
    path.write_text(header + "".join(rows))
    with pytest.raises(ConfigError, match="e002"):
        es.load(path)


def test_ador_validate_dispatches_the_file_and_refuses_a_foreign_doc_update(tmp_path):
    run = [sys.executable, "-m", "ador.cli", "validate", "--data", "energy-published.csv", "--json"]
    out = subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert set(json.loads(out.stdout)) == {"prompts", "central_prompt", "rows", "by_config"}
    copy = tmp_path / "copy.csv"
    copy.write_text(es.DEFAULT_DATA.read_text())
    bad = subprocess.run([sys.executable, "-m", "ador.cli", "validate", "--data", str(copy), "--update-doc",
                          str(tmp_path / "x.md")], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "update-doc" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_readme_quotes_both_energy_checks(report):
    from ador.validation import energy
    readme = " ".join((REPO / "README.md").read_text().split())
    f, g = es.figures(report), energy.figures()
    assert (f"{g['n']} workloads we ran on an H100 and an H200, on which the power rule's energy anchor was "
            f"chosen: the model's energy is {g['ratio_range']} of measured") in readme
    assert (f"{f['runs']} published vLLM serving runs whose prompt lengths are unpublished (H100 energy per output "
            f"token at the measured pace {f['h100_paced_energy']} at 1,024-token prompts, "
            f"{f['h100_paced_energy_band']} over 256-2,048") in readme
    assert f"vs {f['runs']} published vLLM runs" in readme


def _rewrite(tmp_path, change):
    import csv
    with es.DEFAULT_DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows = change(rows)
    path = tmp_path / "changed.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_runs_the_pricing_cannot_mean_are_refused(tmp_path):
    def replicas(rows):
        rows[0]["devices"] = "2"
        return rows

    def twice(rows):
        return rows + [{**rows[0], "id": "e999"}]

    def disagree(rows):
        rows[1]["running_batch"] = "9.0"
        return rows

    def v2_only(rows):
        return [r for r in rows if not r["source"].startswith(es.SOURCE)]

    for change, message in ((replicas, "devices"), (twice, "e999"), (disagree, "running_batch"),
                            (v2_only, "no ML.ENERGY")):
        with pytest.raises(ConfigError, match=message):
            es.load(_rewrite(tmp_path, change))


def test_a_steps_new_prompts_are_whole_prompts_and_one_partial_chunk():
    chunks = es.prompt_chunks(2600, 1024)
    assert [(c.requests, c.tokens, c.context) for c in chunks] == [(2, 1024, 0), (1, 552, 236)]
    assert sum(c.requests * c.tokens for c in chunks) == 2600
    assert [(c.requests, c.tokens) for c in es.prompt_chunks(300, 1024)] == [(1, 300)]
    assert [(c.requests, c.tokens) for c in es.prompt_chunks(2048, 1024)] == [(2, 1024)]


def test_the_cli_refuses_bad_input_in_one_line(tmp_path):
    def unknown_gpu(rows):
        rows[0]["hardware"] = "no-such-gpu"
        rows[1]["hardware"] = "no-such-gpu"
        return rows

    def bad_value(rows):
        rows[0]["value"] = "lots"
        return rows

    for change, expected in ((unknown_gpu, "no-such-gpu"), (bad_value, "lots")):
        path = _rewrite(tmp_path, change)
        out = subprocess.run([sys.executable, "-m", "ador.cli", "validate", "--data", str(path)],
                             capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode != 0 and expected in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    profile = subprocess.run([sys.executable, "-m", "ador.cli", "validate", "--data", "energy-published.csv",
                              "--profile", "x"], capture_output=True, text=True, cwd=tmp_path)
    assert profile.returncode != 0 and "--profile" in profile.stderr


def test_the_cli_draws_the_plot(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ador.cli", "validate", "--data", "energy-published.csv", "--plot",
                          str(tmp_path / "p.png")], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "p.png").stat().st_size > 20_000
