"""The command line a user meets: every option explained with its default, names checked against
their choices, counts checked, one-line errors; evaluate's p99 TBT and reticle warning; table
exports; calibrate's progress and output; headline's output folder."""
import argparse
import hashlib
import json

import pytest

from ador import cli
from ador.cli import build_parser, main


def _commands(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))
    yield path, parser


def test_every_option_has_help_and_shows_its_default():
    missing, no_default = [], []
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = " ".join(path) + " " + (action.option_strings[-1] if action.option_strings else action.dest)
            if not action.help:
                missing.append(where)
            elif action.option_strings and action.default not in (None, False) and \
                    "%(default)" not in parser.formatter_class("ador")._get_help_string(action):
                no_default.append(where)
    assert not missing, f"options without help: {missing}"
    assert not no_default, f"defaults not shown: {no_default}"
    text = build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "--batch BATCH" in text and "(default: 1)" in text and "(default: 2048)" in text


def test_the_parser_imports_no_module_its_choices_come_from():
    """Building the parser imports neither the samplers nor the serving simulator (a reading
    command needs neither); help and a bad value still list every choice, as argparse does."""
    import subprocess
    import sys

    from tests.conftest import ador_env
    script = ("import sys; from ador.cli import build_parser; build_parser(); "
              "print(sorted(m for m in ('ador.serving', 'ador.explore.samplers', 'ador.workload', 'optuna') "
              "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ador_env(), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
    commands = dict(_commands(build_parser()))
    from ador.serving.config import POLICIES
    assert "--policy {" + ",".join(POLICIES) + "}" in commands[("simulate",)].format_help()
    assert "--sampler {nsga2,nsga3,tpe,random,grid,gp,pymoo-nsga2}" in commands[("study", "launch")].format_help()
    assert "{fp16,bf16,fp8,fp8-kv16,int8-wo,fp8-wo,int4-wo}" in commands[("evaluate",)].format_help()


@pytest.mark.parametrize("argv,needle", [
    (["study", "launch", "smoke", "--sampler", "annealing"], "--sampler='annealing': unknown (known: nsga2"),
    (["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--policy", "fifo"], "--policy='fifo'"),
    (["evaluate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--precision", "fp3"], "precision='fp3'"),
    (["evaluate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--batch", "0"], "--batch=0: must be >= 1"),
    (["evaluate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--tp", "-2"], "--tp=-2: must be >= 1"),
    (["evaluate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--output-len", "x"],
     "--output-len='x': expected a whole number"),
    (["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--requests", "0"], "--requests=0"),
    (["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--prefix-cached", "2"], "prefix_cached=2.0"),
    (["study", "launch", "smoke", "--trials", "0"], "--trials=0: must be >= 1"),
    (["study", "resume", "smoke", "--workers", "0"], "--workers=0: must be >= 1"),
    (["study", "dashboard", "smoke", "--port", "70000"], "--port=70000"),
    (["fairness", "--design", "ador-example", "--batch", "0"], "--batch=0"),
    (["calibrate", "--max-evaluations", "0"], "--max-evaluations=0"),
    (["nosuchcommand"], "unknown (known: models"),
    (["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--seed", "-1"], "--seed=-1: must be >= 0"),
    (["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--seed", str(2 ** 32)], "a seed is 0.."),
    (["study", "launch", "smoke", "--seed", "-3"], "--seed=-3"),
    (["study", "export", "smoke", "100000000000000000000000"], "no study has that many trials"),
    (["study", "export", "smoke", "-1"], "must be >= 0"),
])
def test_bad_arguments_are_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ador: error: ") and err.count("\n") == 1 and needle in err, err


EVAL = ["evaluate", "--model", "llama-3-8b", "--batch", "16", "--input-len", "512", "--output-len", "128"]


def test_evaluate_shows_the_p99_tbt_studies_optimise(capsys):
    from ador.explore.metrics import Workload, evaluate_design
    from ador.hardware import PRESETS
    from ador.workload import get_model, get_precision
    assert main([*EVAL, "--hardware", "ador-example", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    scored = evaluate_design(PRESETS["ador-example"], get_model("llama-3-8b"), get_precision("fp16"),
                             Workload(16, 512, 128), tp=1)
    assert data["tbt_p99_ms"] == pytest.approx(scored["tbt_p99_ms"]) and data["tbt_p99_ms"] >= data["tbt_ms"]
    assert data["within_reticle"] is True
    assert main([*EVAL, "--hardware", "ador-example"]) == 0
    assert "TBT p99" in capsys.readouterr().out


def test_evaluate_warns_over_the_reticle(capsys, tmp_path):
    import yaml
    assert main(["hardware", "show", "ador-example"]) == 0
    design = yaml.safe_load(capsys.readouterr().out)
    design["systolic"]["count"] = 256
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(design))
    assert main([*EVAL, "--hardware", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["within_reticle"] is False
    assert err.startswith("ador: warning: hardware=") and "over the 858 mm2 reticle" in err and err.count("\n") == 1
    assert main([*EVAL, "--hardware", "h100-sxm-80gb"]) == 0        # a GPU is its datasheet's: no warning
    assert "reticle" not in capsys.readouterr().err


@pytest.fixture
def launched(workdir, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "12", "--quiet"]) == 0
    capsys.readouterr()
    return workdir


def test_export_every_trial_as_a_table(launched, capsys, monkeypatch):
    import pandas as pd
    assert main(["study", "export", "smoke", "--format", "csv"]) == 0
    from io import StringIO
    frame = pd.read_csv(StringIO(capsys.readouterr().out))
    assert len(frame) == 12 and {"trial", "feasible", "on_front", "tbt_p99_ms", "cost_usd", "systolic.count",
                                 "sram.capacity_bytes"} <= set(frame.columns)
    assert frame["sram.capacity_bytes"].min() >= 2 ** 24                 # powers of two expanded, not exponents
    assert main(["study", "export", "smoke", "--format", "json", "--out", "t.json"]) == 0
    assert len(json.loads((launched / "t.json").read_text())) == 12
    assert main(["study", "export", "smoke", "--format", "parquet", "--out", "t.parquet"]) == 0
    table = pd.read_parquet(launched / "t.parquet")
    assert list(table.columns) == list(frame.columns)
    assert table["tbt_p99_ms"].tolist() == pytest.approx(frame["tbt_p99_ms"].tolist())
    capsys.readouterr()
    for argv, needle in ((["--format", "parquet"], "give --out FILE"), (["3", "--format", "csv"], "leave out")):
        assert main(["study", "export", "smoke", *argv]) == 2
        assert needle in capsys.readouterr().err
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(["study", "export", "smoke", "--format", "parquet", "--out", "x.parquet"]) == 2
    err = capsys.readouterr().err
    assert "parquet needs pyarrow: pip install pyarrow" in err and err.count("\n") == 1


def test_calibrate_writes_a_user_file_and_leaves_the_shipped_one(tmp_path, monkeypatch, capsys):
    from ador.hardware import calibration
    from ador.progress import Progress
    shipped = calibration.PACKAGED_CALIBRATION.read_bytes()
    calls = []
    real_update = Progress.update
    monkeypatch.setattr(Progress, "update", lambda self, done, **kw: (calls.append((done, self.total)),
                                                                       real_update(self, done, **kw)))
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--max-evaluations", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["out"] == "calibration.yaml" and (tmp_path / "calibration.yaml").is_file()
    assert calibration.PACKAGED_CALIBRATION.read_bytes() == shipped
    assert calls and calls[-1][0] == calls[-1][1]                      # the bar ends full
    assert len(calls) >= 40                                           # one tick per loss evaluation
    fake = tmp_path / "package.yaml"
    monkeypatch.setattr(calibration, "PACKAGED_CALIBRATION", fake)
    assert main(["calibrate", "--max-evaluations", "40", "--write-package", "--quiet"]) == 0
    assert fake.is_file() and hashlib.sha256(fake.read_bytes()).digest() != hashlib.sha256(shipped).digest()


def test_a_user_calibration_is_used_through_ador_calibration(tmp_path, monkeypatch):
    import subprocess
    import sys
    from tests.conftest import REPO, ador_env
    (tmp_path / "none.yaml").write_text("gpus: {}\nruntimes: {}\n")
    code = "from ador.explore.config import model_version; print(model_version())"
    shipped = subprocess.run([sys.executable, "-c", code], env=ador_env(), capture_output=True, text=True).stdout
    mine = subprocess.run([sys.executable, "-c", code], env=ador_env(ADOR_CALIBRATION=str(tmp_path / "none.yaml")),
                          capture_output=True, text=True).stdout
    assert shipped and mine and shipped != mine                     # studies scored under it say so
    # a command that prices a GPU reads the calibration (listing models does not)
    r = subprocess.run([sys.executable, "-m", "ador.cli", "evaluate", "--hardware", "a100-sxm-80gb",
                        "--model", "llama-3-8b"], capture_output=True, text=True,
                       env=ador_env(ADOR_CALIBRATION=str(tmp_path / "missing.yaml")))
    assert r.returncode == 2 and r.stderr.startswith("ador: error: ADOR_CALIBRATION=") and "no such" in r.stderr
    # a file that is no calibration: one line naming it, not a traceback or another field's error
    (tmp_path / "torn.yaml").write_text("gpus: {a100: [1,\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00gpus")
    (tmp_path / "study.yaml").write_text((REPO / "studies" / "smoke.yaml").read_text())
    for name, needle in (("torn.yaml", "malformed YAML at line 2"), ("binary.yaml", "cannot be read"),
                         ("study.yaml", "not a calibration")):
        r = subprocess.run([sys.executable, "-m", "ador.cli", "evaluate", "--hardware", "a100-sxm-80gb",
                            "--model", "llama-3-8b"], capture_output=True, text=True,
                           env=ador_env(ADOR_CALIBRATION=str(tmp_path / name)))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("ador: error: ADOR_CALIBRATION='") and f"{name}':" in r.stderr, r.stderr
        assert needle in r.stderr, r.stderr


def test_headline_writes_where_asked_and_tracked_docs_only_when_asked(tmp_path, monkeypatch, capsys):
    import ador.headline
    seen = []
    monkeypatch.setattr(ador.headline, "run", lambda *a, **k: None)
    monkeypatch.setattr(ador.headline, "write_report", lambda out, *a, **k: seen.append(out) or out / "x.md")
    monkeypatch.chdir(tmp_path)
    assert main(["headline", "--report-only"]) == 0
    assert main(["headline", "--report-only", "--out", "elsewhere"]) == 0
    assert [str(p) for p in seen] == ["headline", "elsewhere"]
    assert main(["headline", "--report-only", "--update-docs"]) == 0
    assert seen[-1].parts[-2:] == ("docs", "results") and seen[-1].is_dir()
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "ador" / "cli.py"))
    assert main(["headline", "--report-only", "--update-docs"]) == 2
    assert "not a checkout" in capsys.readouterr().err


def test_the_workers_progress_bar_counts_this_runs_trials(launched, monkeypatch):
    """`resume --workers` on a study that already has trials starts its bar at 0, not full."""
    from ador.progress import Progress
    seen = []
    real = Progress.update
    monkeypatch.setattr(Progress, "update", lambda self, done, **kw: (seen.append((done, self.total)),
                                                                       real(self, done, **kw)))
    assert main(["study", "resume", "smoke", "--trials", "10", "--workers", "2"]) == 0   # 12 trials stored
    assert seen and all(done <= total == 10 for done, total in seen)
    assert seen[0][0] < 10


def test_an_output_the_machine_refuses_is_a_one_line_error(launched, capsys):
    """An output path under a regular file (or any path the OS refuses) gets one line naming it and
    exit code 2, from every command that writes files, not a traceback."""
    blocker = launched / "afile"
    blocker.write_text("")
    for argv in (["study", "export", "smoke", "--out", str(blocker / "t.csv")],
                 ["study", "export", "smoke", "3", "--out", str(blocker / "d.yaml")],
                 ["study", "report", "smoke", "--out", str(blocker / "r")],
                 ["validate", "--plot", str(blocker / "v.png")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("ador: error: file=") and "not a directory" in err, err


def test_update_doc_on_a_file_that_is_not_utf8_text_changes_nothing(tmp_path, capsys):
    """--update-doc on a binary file or a directory: one line naming it, the file as it was."""
    doc = tmp_path / "bad.md"
    doc.write_bytes(b"\xff\xfe binary \x00")
    (tmp_path / "dir.md").mkdir()
    for path, needle in ((doc, "not a UTF-8 text file"), (tmp_path / "dir.md", "is a directory")):
        assert main(["validate", "--update-doc", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ador: error: --update-doc='") and f"{path.name}':" in err, err
        assert err.count("\n") == 1 and needle in err, err
    assert doc.read_bytes() == b"\xff\xfe binary \x00"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.md", "dir.md"]
