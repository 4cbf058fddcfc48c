import json
import subprocess
import sys

import pytest

from ador.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


EVAL = ["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-2-70b", "--tp", "8", "--precision", "fp16",
        "--batch", "1", "--input-len", "2048", "--output-len", "128"]


def test_evaluate_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, *EVAL, "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("ttft_ms", "tbt_ms", "e2e_ms", "output_tok_s", "memory_bytes_per_device", "fits", "breakdown"):
        assert key in data
    assert data["fits"] is True
    assert {t["name"] for t in data["breakdown"]["prefill"]} >= {"qkv_proj", "attention", "ffn_up", "attn_allreduce"}
    assert all(t["bound"] in ("compute", "memory", "network", "sram", "noc", "vector", "parallelism")
               for t in data["breakdown"]["decode"])


def test_evaluate_text_summary(capsys):
    code, out, _ = run(capsys, *EVAL)
    assert code == 0
    for word in ("TTFT", "TBT", "end-to-end", "throughput", "memory", "top operators"):
        assert word in out


def test_hardware_show_yaml_is_a_design_evaluate_accepts(capsys, tmp_path):
    code, out, _ = run(capsys, "hardware", "show", "ador-example", "--yaml")
    assert code == 0
    path = tmp_path / "mine.yaml"
    path.write_text(out.replace("count: 8", "count: 16", 1))
    code, out, _ = run(capsys, "evaluate", "--hardware", str(path), "--model", "llama-3-70b", "--tp", "8",
                       "--batch", "64", "--json")
    assert code == 0 and json.loads(out)["hardware"] == "ador-example"


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "--hardware", "nope", "--model", "llama-2-7b"], "hardware='nope'"),
    (["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-9"], "model='llama-9'"),
    (["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-2-7b", "--precision", "fp3"], "precision='fp3'"),
    (["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-2-7b", "--tp", "3"], "tp=3"),
    (["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-3.1-405b"], "needs"),
    (["evaluate", "--hardware", "a100-sxm-80gb", "--model", "llama-2-7b", "--batch", "0"], "batch=0"),
])
def test_bad_input_is_one_line_and_nonzero(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert needle in err
    assert err.count("\n") == 1 and err.startswith("ador: error:")
    assert "Traceback" not in err


def test_malformed_design_file(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: ador\nhbm: {stacks: -1\n")
    code, _, err = run(capsys, "evaluate", "--hardware", str(path), "--model", "llama-2-7b")
    assert code != 0 and "malformed YAML" in err
    path.write_text("kind: ador\nname: x\nhbm: {stacks: -1}\n")
    code, _, err = run(capsys, "evaluate", "--hardware", str(path), "--model", "llama-2-7b")
    assert code != 0 and err.count("\n") == 1


def test_models_and_hardware_list(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0 and any(m["name"] == "mixtral-8x7b" for m in json.loads(out))
    code, out, _ = run(capsys, "hardware", "list")
    assert code == 0 and "h200-sxm-141gb" in out


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "ador.cli", "models"], capture_output=True, text=True)
    assert proc.returncode == 0 and "llama-3-70b" in proc.stdout
