import json
import re
import shutil

import pytest

from ador.cli import main
from ador.headline import run, write_report
from tests.conftest import REPO


@pytest.mark.slow
def test_headline_pipeline_on_a_tiny_budget(tmp_path, monkeypatch, capsys):
    shutil.copytree(REPO / "studies", tmp_path / "studies", ignore=shutil.ignore_patterns("*.db*"))
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")
    monkeypatch.chdir(tmp_path)
    run(trials=60, storage_dir="studies", progress=False)
    report = write_report(tmp_path / "results", "studies", serving=False)
    text = report.read_text()
    for heading in ("## Assumptions", "## Unconstrained (llama3-70b-8dev)", "## Iso-technology (llama3-70b-8dev-iso)"):
        assert heading in text
    assert "iso-technology** study" in text and "2.51x" in text and "4.01x" in text
    assert text.count("| 64 |") == 2 and text.count("| 256 |") == 2
    assert (tmp_path / "results" / "llama3-70b-8dev-pareto.png").stat().st_size > 5000
    # the report's numbers are what `ador evaluate` says for the recommended design
    for name in ("llama3-70b-8dev", "llama3-70b-8dev-iso"):
        section = text.split(f"({name})")[1]
        m = re.search(r"p99 TBT ([\d.]+) ms, ([\d.]+) tokens/s per mm2, TTFT (\d+) ms", section)
        tbt, eff, ttft = float(m.group(1)), float(m.group(2)), float(m.group(3))
        capsys.readouterr()
        assert main(["evaluate", "--hardware", str(tmp_path / "results" / f"{name}-recommended.yaml"), "--model",
                     "llama-3-70b", "--tp", "8", "--devices", "8", "--batch", "128", "--input-len", "2048",
                     "--output-len", "256", "--json"]) == 0
        ev = json.loads(capsys.readouterr().out)
        assert round(ev["ttft_ms"]) == pytest.approx(ttft, abs=1)
        assert ev["output_tok_s_per_mm2"] == pytest.approx(eff, rel=1e-3)
        from ador.explore.metrics import Workload, evaluate_design
        from ador.hardware import load_device
        from ador.workload import get_model, get_precision
        scored = evaluate_design(load_device(tmp_path / "results" / f"{name}-recommended.yaml"),
                                 get_model("llama-3-70b"), get_precision("fp16"), Workload(128, 2048, 256), tp=8,
                                 devices=8, need_energy=False)
        assert scored["tbt_p99_ms"] == pytest.approx(tbt, abs=0.006)
    # regenerated from storage without running anything: same content
    again = write_report(tmp_path / "results", "studies", serving=False).read_text()
    assert again == text
