"""Hostile and absurd input: every loader answers quickly, with a valid object or one line naming
the field. Fuzzing generates YAML aliases (billion-laughs files), huge and non-finite numbers,
deep nesting and costly expressions, each example under a deadline."""
import copy
import csv
import dataclasses
import io
import json
import math
import subprocess
import sys
import time
from datetime import timedelta

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from ador.explore import record
from ador.cli import main
from ador.errors import AdorError
from ador.explore.config import load_study, study_from_dict
from ador.explore.runner import Scorer
from ador.explore.space import build_space, load_space
from ador.hardware import PRESETS, device_from_mapping, device_to_mapping, load_device
from ador.serving.requests import load_trace
from ador.validation.data import load_measurements
from ador.workload.models import load_hf_config, spec_from_hf_dict
from tests.conftest import REPO, ador_env, count_example

# a 9-wide, 8-deep alias tree: 277 bytes of YAML standing for 48 million strings (an unknown key,
# so the error message is what used to expand it)
BOMB = "x: [&a [lol,lol,lol,lol,lol,lol,lol,lol,lol], " + ", ".join(
    f"&{k} [{','.join(['*' + p] * 9)}]" for p, k in zip("abcdefg", "bcdefgh")) + "]\n"
HF = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
      "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192}


def one_line(capsys, *argv, needle=""):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("ador: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err
    return err


def ador_within(seconds, *argv, cwd):
    """Run ``ador`` in a child process that is killed if it hangs; returns (code, stderr)."""
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "ador.cli", *argv], cwd=cwd, capture_output=True, text=True,
                              timeout=seconds * 3, env=ador_env())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"ador {' '.join(argv)} still running after {seconds * 3} s") from None
    took = time.monotonic() - start
    assert took < seconds, f"took {took:.1f} s"
    return proc.returncode, proc.stderr


def _design_yaml(**changes):
    data = device_to_mapping(PRESETS["ador-example"])
    data.update(changes)
    return yaml.safe_dump(data)


def _space_file(workdir, name, **changes):
    space = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    for key, value in changes.items():
        space[key] = value
    # sort_keys=False: derived fields are computed in the order written
    (workdir / "search_spaces" / f"{name}.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    study = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    study["search_space"] = f"{name}.yaml"
    (workdir / "studies" / f"{name}.yaml").write_text(yaml.safe_dump(study))
    return f"studies/{name}.yaml"


# --- hangs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["hardware", "study", "search_space"])
def test_yaml_alias_bomb_is_refused_quickly(workdir, target):
    assert len(BOMB) < 300
    if target == "hardware":
        (workdir / "bomb.yaml").write_text(BOMB + _design_yaml())
        argv = ["area", "--hardware", "bomb.yaml"]
    elif target == "study":
        (workdir / "studies" / "bomb.yaml").write_text(BOMB + (REPO / "studies" / "smoke.yaml").read_text())
        argv = ["study", "launch", "studies/bomb.yaml", "--quiet"]
    else:
        (workdir / "search_spaces" / "bomb.yaml").write_text(BOMB + (REPO / "search_spaces" / "smoke.yaml").read_text())
        (workdir / "studies" / "sb.yaml").write_text(
            (REPO / "studies" / "smoke.yaml").read_text().replace("search_space: smoke.yaml",
                                                                  "search_space: bomb.yaml"))
        argv = ["study", "launch", "studies/sb.yaml", "--quiet"]
    code, err = ador_within(10, *argv, cwd=workdir)
    assert code == 2 and err.count("\n") == 1 and "expands to more than" in err and len(err) < 400, err


@pytest.mark.parametrize("policy", ["continuous", "disaggregated"])
def test_more_replicas_than_requests_is_quick(workdir, policy):
    """Replicas beyond the requests get none and cost nothing (10**12 devices looped over every
    replica: 57 s at 10**8)."""
    code, err = ador_within(20, "simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--rate", "1",
                            "--requests", "40", "--devices", str(10 ** 12), "--policy", policy, cwd=workdir)
    assert code == 0, err


def test_a_serving_row_of_absurd_devices_is_one_line(tmp_path, capsys):
    lines = (REPO / "ador" / "data" / "serving.csv").read_text().splitlines()
    header, row = lines[0].split(","), lines[1].split(",")
    row[header.index("devices")] = "1e300"
    (tmp_path / "s.csv").write_text(lines[0] + "\n" + ",".join(row) + "\n")
    one_line(capsys, "validate", "--data", str(tmp_path / "s.csv"), needle=":devices='1e300': too large")


def test_huge_power_in_a_derived_field_is_refused_quickly(workdir):
    path = _space_file(workdir, "pow", derived={"noc.bw_bytes_per_s": "9**9**9"})
    code, err = ador_within(10, "study", "launch", path, "--quiet", cwd=workdir)
    assert code == 2 and err.count("\n") == 1 and "bits" in err, err


def test_stored_config_with_a_huge_power_does_not_hang_status(workdir):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "3", "--quiet"]) == 0
    stored = optuna.load_study(study_name="smoke", storage="sqlite:///studies/smoke.db")
    config = copy.deepcopy(record.settings(stored)["ador_config"])
    config["search_space"]["derived"]["noc.bw_bytes_per_s"] = "9**9**9"
    record.write_setting(stored, "ador_config", config)
    code, err = ador_within(10, "study", "status", "smoke", cwd=workdir)
    assert code == 2 and err.count("\n") == 1 and "9**9**9" in err, err


@pytest.mark.parametrize("row", ["nan,100,10", "inf,100,10", "-1,100,10", "0,nan,10", "0,100,-5",
                                 "0," + "9" * 400 + ",10", "0,100,1e400", "1e15,100,10", "4294967297,100,10",
                                 "0,100,10,7"])
def test_bad_trace_rows_are_one_line_errors(workdir, row):
    (workdir / "t.csv").write_text(f"arrival_s,prompt_len,output_len\n0,100,10\n{row}\n1,100,10\n")
    code, err = ador_within(15, "simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--trace",
                            "t.csv", cwd=workdir)
    assert code == 2 and err.startswith("ador: error: trace:3") and err.count("\n") == 1, err


@pytest.mark.parametrize("flag", [["--requests", "5"], ["--input-len", "64"], ["--output-len", "8"],
                                  ["--lengths", "fixed"]])
def test_options_a_trace_replaces_are_refused_beside_it(workdir, capsys, flag):
    (workdir / "t.csv").write_text("arrival_s,prompt_len,output_len\n0,100,10\n0.5,100,10\n")
    one_line(capsys, "simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--trace", "t.csv", *flag,
             needle="a --trace gives every request")


def test_a_capacity_search_that_never_saturates_is_an_error(workdir, capsys):
    """Four timed requests meet the SLO at any rate: the search ran out of doublings and reported
    8.39e6 req/s as the capacity."""
    (workdir / "t.csv").write_text("arrival_s,prompt_len,output_len\n0,100,10\n0.5,100,10\n1,100,20\n1.5,100,20\n")
    one_line(capsys, "simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--trace", "t.csv",
             "--find-capacity", "--slo", "ttft_p99_ms=500", needle="no capacity was found")


def test_a_trace_with_a_byte_order_mark_is_read(workdir, capsys):
    """Spreadsheets save CSV with a UTF-8 byte-order mark: the first column is still arrival_s."""
    (workdir / "bom.csv").write_bytes(b"\xef\xbb\xbfarrival_s,prompt_len,output_len\n0,100,10\n0.5,120,12\n")
    assert main(["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--trace", "bom.csv"]) == 0
    assert "2 of 2 requests served" in capsys.readouterr().out


# --- one-line errors instead of tracebacks ----------------------------------------------------------

@pytest.mark.parametrize("changes,needle", [
    ({"freq_hz": 10 ** 400}, "too large"),
    ({"hbm": {**device_to_mapping(PRESETS["ador-example"])["hbm"], "stacks": 10 ** 309}}, "too large"),
    ({"hbm": {**device_to_mapping(PRESETS["ador-example"])["hbm"], "stacks": float("inf")}}, "finite"),
    ({"hbm": {**device_to_mapping(PRESETS["ador-example"])["hbm"], "stacks": float("nan")}}, "finite"),
    ({"node_nm": 2 ** 60}, "too large"),
])
def test_absurd_numbers_in_a_design_are_one_line(workdir, capsys, changes, needle):
    (workdir / "d.yaml").write_text(_design_yaml(**changes))
    one_line(capsys, "area", "--hardware", "d.yaml", needle=needle)


def test_twenty_thousand_deep_nesting_is_one_line(workdir, capsys):
    (workdir / "deep.yaml").write_text("kind: ador\nname: " + "[" * 20000 + "]" * 20000 + "\n")
    one_line(capsys, "area", "--hardware", "deep.yaml", needle="nested")
    (workdir / "deep.json").write_text(json.dumps(HF)[:-1] + ', "x": ' + "[" * 20000 + "]" * 20000 + "}")
    one_line(capsys, "evaluate", "--hardware", "h100-sxm-80gb", "--model", "deep.json", needle="model=")


@pytest.mark.parametrize("knob,needle", [
    ({"type": "int", "low": 1, "high": float("inf")}, "finite"),
    ({"type": "int", "low": float("nan"), "high": 4}, "finite"),
    ({"type": "int", "low": 1, "high": 10 ** 309}, "too large"),
    ({"type": "int", "low": 1, "high": 10 ** 30}, "too large"),       # an object column, not float64
    ({"type": "int", "low": -(10 ** 20), "high": 4}, "too large"),
    ({"type": "categorical", "choices": [float("nan"), 1]}, "finite"),
    ({"type": "categorical", "choices": [1, float("inf")]}, "finite"),
    ({"type": "categorical", "choices": [1, 10 ** 400]}, "too large"),
])
def test_non_finite_and_huge_knob_values_are_one_line(workdir, capsys, knob, needle):
    space = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    space["knobs"]["hbm.stacks"] = knob
    path = _space_file(workdir, "k", knobs=space["knobs"])
    one_line(capsys, "study", "launch", path, "--quiet", needle=needle)


@pytest.mark.parametrize("seed", [-1, 2 ** 32])
def test_a_seed_numpy_cannot_take_is_refused_before_the_study_is_made(workdir, capsys, seed):
    text = (REPO / "studies" / "smoke.yaml").read_text().replace("seed: 1\n", f"seed: {seed}\n")
    (workdir / "studies" / "seeded.yaml").write_text(text)
    one_line(capsys, "study", "launch", "studies/seeded.yaml", "--quiet", needle=f"seed={seed}")
    assert not list((workdir / "studies").glob("seeded*"))[1:]      # the study file alone


@pytest.mark.parametrize("changes,needle", [({"hidden_size": 4097}, "hidden_size=4097: is not a multiple"),
                                            ({"hidden_act": "nosuch"}, "hidden_act='nosuch': an activation"),
                                            ({"activation_function": "x"}, "activation_function='x'")])
def test_hf_config_fields_that_make_no_model_are_one_line(workdir, capsys, changes, needle):
    """Heads that do not split the hidden size (a fractional head width, floored in silence) and an
    activation no FFN kind prices."""
    (workdir / "config.json").write_text(json.dumps({**HF, **changes}))
    one_line(capsys, "evaluate", "--hardware", "h100-sxm-80gb", "--model", "config.json", needle=needle)
    (workdir / "config.json").write_text(json.dumps({**HF, **changes, "head_dim": 128, "hidden_act": "silu",
                                                     "activation_function": "silu"}))
    assert main(["evaluate", "--hardware", "h100-sxm-80gb", "--model", "config.json"]) == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10 ** 400, 1e300])
def test_non_finite_hf_config_fields_are_one_line(workdir, capsys, value):
    (workdir / "config.json").write_text(json.dumps({**HF, "hidden_size": value}))
    one_line(capsys, "evaluate", "--hardware", "h100-sxm-80gb", "--model", "config.json",
             needle="config.json:hidden_size")


@pytest.mark.parametrize("changes,needle", [
    ({"knobs": {"name": {"type": "categorical", "choices": ["a", "b"]}}}, "knobs.name='name': names the design"),
    ({"knobs": {"kind": {"type": "categorical", "choices": ["ador", "gpu"]}}}, "knobs.kind='kind': names the design"),
    ({"derived": {"sram.bw_bytes_per_s": "noc.bw_bytes_per_s", "noc.bw_bytes_per_s": "sram.bw_bytes_per_s"}},
     "derived.sram.bw_bytes_per_s='noc.bw_bytes_per_s': derived fields that read each other"),
    ({"derived": {"noc.bw_bytes_per_s": "2 * noc.bw_bytes_per_s"}}, "(or themselves) in a cycle"),
])
def test_knobs_and_derived_fields_that_would_be_ignored_are_refused(workdir, capsys, changes, needle):
    """A knob on the design's name or kind (exported designs were then refused by evaluate), and
    derived fields that read each other in a cycle (one read the base's value in silence)."""
    space = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    for key, value in changes.items():
        space[key] = {**space[key], **value} if key == "knobs" else value
    (workdir / "search_spaces" / "x.yaml").write_text(yaml.dump(space, sort_keys=False))
    study = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    study["search_space"] = "x.yaml"
    (workdir / "studies" / "x.yaml").write_text(yaml.safe_dump(study))
    one_line(capsys, "study", "launch", "studies/x.yaml", "--quiet", needle=needle)


@pytest.mark.parametrize("expr", ["log2(0)", "min()", "ceil(1e308 * 10)", "(-8) ** 0.5", "10.0 ** 400",
                                  "freq_hz / (hbm.stacks - hbm.stacks)"])
def test_expression_errors_are_one_line(workdir, capsys, expr):
    path = _space_file(workdir, "e", derived={"noc.bw_bytes_per_s": expr})
    one_line(capsys, "study", "launch", path, "--quiet", needle="derived.noc.bw_bytes_per_s")


@pytest.mark.parametrize("argv,needle", [
    (["--requests", "-1"], "requests=-1"),
    (["--requests", "0", "--rate", "2"], "requests=0"),
    (["--lengths", "long-tailed", "--length-cv", "1e300"], "length-cv"),
    (["--lengths", "long-tailed", "--length-cv", "nan"], "length-cv"),
    (["--rate", "inf"], "rate=inf"),
    (["--input-len", "0"], "--input-len=0: must be >= 1"),
    (["--stack", "foo"], "--stack='foo': unknown stack"),
    (["--stack", ""], "unknown stack"),
    (["--stack", "vllm --bogus 3"], "--bogus is not a flag ador reads"),
    (["--stack", "vllm --max-num 3"], "--max-num is ambiguous"),
    (["--stack", "vllm --num-scheduler-steps=-5"], "--num-scheduler-steps='-5': must be a positive number"),
    (["--stack", "vllm --max-num-batched-tokens 0"], "--max-num-batched-tokens='0'"),
    (["--stack", "sglang 0.5.2 --chunked-prefill-size -1"], "--chunked-prefill-size='-1'"),
    (["--stack", "vllm --max-num-seqs"], "--max-num-seqs=None: expected a number"),
    (["--find-capacity", "--slo", "ttft_p99_ms=500", "--target-attainment", "0"], "a share is in (0, 1]"),
    (["--find-capacity", "--slo", "ttft_p99_ms=500", "--target-attainment", "2"], "a share is in (0, 1]"),
    (["--target-attainment", "0.5"], "--target-attainment=0.5: applies to --find-capacity"),
    (["--capacity-by", "p99"], "--capacity-by='p99': applies to --find-capacity"),
    (["--slo", "ttft_p99_ms=5", "--slo", "ttft_p99_ms=6"], "ttft_p99_ms is given twice"),
    (["--slo", "ttft_p99_ms=5", "--ttft-slo", "6"], "--slo ttft_p99_ms is given too"),
    (["--length-cv", "2"], "--length-cv=2.0: applies to --lengths long-tailed"),
    (["--policy", "chunked", "--chunk-tokens", str(10 ** 12)], "activations of a 1,000,000,000,000-token iteration"),
    (["--chunk-tokens", "64"], "--chunk-tokens=64: applies to the chunked policy (this run's is continuous)"),
    (["--max-replications", "5"], "--max-replications=5: applies to --ci"),
    (["--max-requests", "500"], "--max-requests=500: applies to --ci"),
])
def test_bad_simulate_options_are_one_line(capsys, argv, needle):
    one_line(capsys, "simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", *argv, needle=needle)


@pytest.mark.parametrize("stack", ["vllm 0.6.0 --num-scheduler-steps 10", "vllm --enable-chunked-prefill=False",
                                   "vllm 0.11 --num-scheduler-step 15", "sglang 0.5.2 --chunked-prefill-size 4096",
                                   "tensorrt-llm 0.14 --max_batch_size 64 --scheduler_policy max_utilization"])
def test_stacks_as_users_write_them_are_taken(capsys, stack):
    assert main(["simulate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--requests", "10",
                 "--stack", stack]) == 0


def test_grid_over_a_huge_space_is_refused_before_allocating(workdir, capsys):
    space = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    space["knobs"]["sram.bw_bytes_per_s"] = {"type": "int", "low": 1, "high": 10 ** 11}
    del space["derived"]["sram.bw_bytes_per_s"]
    path = _space_file(workdir, "g", knobs=space["knobs"], derived=space["derived"])
    one_line(capsys, "study", "launch", path, "--sampler", "grid", "--quiet", needle="grid")
    assert not list((workdir / "studies").glob("*.db"))


def test_unknown_sampler_on_the_command_line_leaves_no_study(workdir, capsys):
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--sampler", "nsga-2", "--quiet", needle="nsga-2")
    assert not list((workdir / "studies").glob("*.db"))


@pytest.mark.parametrize("field,value", [("hbm.bw_bytes_per_s_per_stack", 1e-300),
                                         ("hbm.bw_bytes_per_s_per_stack", 5e-324), ("noc.bw_bytes_per_s", 1e-300)])
def test_zero_bandwidth_like_designs_are_infeasible_with_a_reason(workdir, capsys, field, value):
    data = device_to_mapping(PRESETS["ador-example"])
    head, leaf = field.split(".")
    data[head][leaf] = value
    (workdir / "z.yaml").write_text(yaml.safe_dump(data))
    for argv in (["evaluate", "--hardware", "z.yaml", "--model", "llama-3-8b", "--json"],
                 ["simulate", "--hardware", "z.yaml", "--model", "llama-3-8b", "--requests", "5", "--json"]):
        err = one_line(capsys, *argv, needle="non-finite")
        assert "Infinity" not in err and "NaN" not in err
    space = build_space({"base": "z", "knobs": {"systolic.count": {"type": "int", "low": 4, "high": 8}},
                         "base_design": data})
    study = dataclasses.replace(load_study("studies/smoke.yaml"), space=space)
    outcome = Scorer(study)({"systolic.count": 8})
    assert outcome.values is None and "non-finite" in " ".join(outcome.user_attrs["infeasible_reasons"])


def test_a_design_under_the_runtimes_reserve_is_infeasible_for_that_reason_not_a_non_finite_figure(workdir):
    """0.1 GiB per HBM stack under the default runtime's reserve: memory_utilisation is infinite, and the
    stored reason says what users need (it said "non-finite metrics: memory_utilisation")."""
    from ador.hardware.runtime import get_runtime
    data = device_to_mapping(PRESETS["ador-example"])
    data["hbm"]["capacity_bytes_per_stack"] = get_runtime(None).reserved_bytes / 10
    space = build_space({"base": "z", "knobs": {"systolic.count": {"type": "int", "low": 4, "high": 8}},
                         "base_design": data})
    study = dataclasses.replace(load_study("studies/smoke.yaml"), space=space)
    outcome = Scorer(study)({"systolic.count": 8})
    assert outcome.values is None
    assert outcome.user_attrs["infeasible_reasons"] == ["does not fit: the runtime's reserve leaves no device memory"]


# --- fuzzing ------------------------------------------------------------------------------------------

# per example: a bound on the time (an alias bomb or a huge power ran for minutes)
FUZZ = settings(max_examples=150, deadline=timedelta(seconds=5), suppress_health_check=list(HealthCheck))

HUGE = ["1e400", "-1e400", "9" * 400, "-" + "9" * 400, ".nan", ".NaN", ".inf", "-.inf", "1e308",
        "1.7976931348623157e308", str(2 ** 53 + 1), str(2 ** 64), "0x" + "f" * 300, "1_000_000_000_000_000_000_000",
        "-0.0", "5e-324"]


@st.composite
def alias_bombs(draw):
    width, depth = draw(st.integers(2, 12)), draw(st.integers(1, 9))
    parts = [f"&x0 [{','.join(['lol'] * width)}]"]
    parts += [f"&x{i} [{','.join([f'*x{i - 1}'] * width)}]" for i in range(1, depth)]
    return "[" + ", ".join(parts) + "]"


@st.composite
def deep_nesting(draw):
    n = draw(st.integers(10, 30000))
    return draw(st.sampled_from(["[" * n + "]" * n, "{a: " * n + "1" + "}" * n, "[" * n]))


YAML_FRAGMENTS = st.one_of(  # (kind, YAML text)
    st.sampled_from(HUGE).map(lambda t: ("huge or non-finite number", t)),
    alias_bombs().map(lambda t: ("alias bomb", t)),
    deep_nesting().map(lambda t: ("deep nesting", t)),
    st.sampled_from(["&r [1, *r]", "*nothing", "!!python/object:os.system", "~", "[]", "{}"]).map(
        lambda t: ("self-alias, unknown alias, tag, empty", t)),
    st.text(max_size=30).map(lambda t: ("arbitrary string", json.dumps(t))))


def _leaf_paths(doc, path=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield path + (k,)
            yield from _leaf_paths(v, path + (k,))


@st.composite
def hostile_yaml(draw, document):
    """(kind, YAML text): ``document`` with one value (at any depth), or the whole text, replaced by
    a hostile fragment."""
    kind, fragment = draw(YAML_FRAGMENTS)
    paths = list(_leaf_paths(document))
    if not paths or draw(st.integers(0, 9)) == 0:
        return kind, fragment
    doc = copy.deepcopy(document)
    path = draw(st.sampled_from(paths))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "HOSTILEFRAGMENT"
    return kind, yaml.safe_dump(doc, default_flow_style=False).replace("HOSTILEFRAGMENT", fragment, 1)


def _valid_or_one_line(load, arg):
    try:
        load(arg)
    except AdorError as err:
        text = str(err)
        assert text and "\n" not in text and len(text) < 2000, text


HW = device_to_mapping(PRESETS["ador-example"])
GPU = device_to_mapping(PRESETS["h100-sxm-80gb"])
SPACE = yaml.safe_load((REPO / "search_spaces" / "default.yaml").read_text())
STUDY = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())


def _kind_of(value):
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) > 2 ** 53:
        return "huge or non-finite number"
    if isinstance(value, str) and any(c in value for c in "*(-") and len(value) < 300:
        return "costly or failing expression"
    if isinstance(value, (list, dict)):
        return "nested value"
    return "other value"


def _load_text(tmp_path_factory, case, what, load):
    kind, text = case
    count_example(what, kind)
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    path.write_text(text)
    _valid_or_one_line(load, path)


@FUZZ
@given(case=st.one_of(hostile_yaml(HW), hostile_yaml(GPU), st.text(max_size=200).map(lambda t: ("arbitrary text", t))))
def test_fuzz_hardware_yaml(tmp_path_factory, case):
    _load_text(tmp_path_factory, case, "hardware YAML", load_device)


@FUZZ
@given(case=hostile_yaml(SPACE))
def test_fuzz_search_space_yaml(tmp_path_factory, case):
    _load_text(tmp_path_factory, case, "search-space YAML", load_space)


@FUZZ
@given(case=hostile_yaml(STUDY))
def test_fuzz_study_yaml(tmp_path_factory, case):
    kind, text = case
    count_example("study YAML", kind)
    d = tmp_path_factory.mktemp("study")
    (d / "search_spaces").mkdir()
    (d / "search_spaces" / "smoke.yaml").write_text((REPO / "search_spaces" / "smoke.yaml").read_text())
    (d / "studies").mkdir()
    (d / "studies" / "f.yaml").write_text(text)
    _valid_or_one_line(load_study, d / "studies" / "f.yaml")


JSON_HOSTILE = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "9" * 400, "9" * 5000, "-0", "1e-400",
                                "[" * 20000 + "]" * 20000, '"' + "x" * 10000 + '"', "null", "true", "{}"])


@FUZZ
@given(key=st.sampled_from(sorted(HF) + ["head_dim", "num_local_experts", "sliding_window", "tie_word_embeddings"]),
       value=JSON_HOSTILE)
def test_fuzz_hf_config_json(tmp_path_factory, key, value):
    count_example("HF config.json", "huge, non-finite, deep or long value")
    path = tmp_path_factory.mktemp("hf") / "config.json"
    text = json.dumps({k: v for k, v in HF.items() if k != key})
    path.write_text(text[:-1] + f', "{key}": {value}}}')
    _valid_or_one_line(load_hf_config, path)


CELL = st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "9" * 400, "9" * 5000, "", "x", "1.5",
                                  "0x10", "1_000"]), st.integers(0, 10 ** 6).map(str), st.text(max_size=8))


@FUZZ
@given(rows=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=5))
def test_fuzz_trace_csv(tmp_path_factory, rows):
    count_example("serving trace CSV", "huge, non-finite, negative or malformed cells")
    path = tmp_path_factory.mktemp("trace") / "t.csv"
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["arrival_s", "prompt_len", "output_len"])
    w.writerows(rows)
    path.write_text(out.getvalue())
    _valid_or_one_line(load_trace, path)


MEASURED_HEADER = (REPO / "ador" / "data" / "measured.csv").read_text().splitlines()[0]
MEASURED_ROW = (REPO / "ador" / "data" / "measured.csv").read_text().splitlines()[1]


@FUZZ
@given(column=st.integers(0, len(MEASURED_HEADER.split(",")) - 1), value=CELL)
def test_fuzz_measured_csv(tmp_path_factory, column, value):
    count_example("measured CSV", "huge, non-finite, negative or malformed cells")
    path = tmp_path_factory.mktemp("measured") / "m.csv"
    row = next(csv.reader([MEASURED_ROW]))
    row[column] = value
    out = io.StringIO()
    csv.writer(out).writerow(row)
    path.write_text(MEASURED_HEADER + "\n" + out.getvalue())
    _valid_or_one_line(load_measurements, path)


STORED = load_study(REPO / "studies" / "smoke.yaml").to_dict()
VALUES = st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), 10 ** 400, 2 ** 64, 1e308, -1, 0,
                                    "9**9**9", "log2(0)", "min()", "10.0 ** 400", "(-8) ** 0.5", "2**256 * 2**256",
                                    "-" * 200 + "1", "x" * 5000]),
                   st.integers(), st.floats(), st.text(max_size=20),
                   st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=3), max_leaves=30))


@FUZZ
@given(data=st.data())
def test_fuzz_stored_study_settings(data):
    """A study's settings as read back from a database someone else wrote."""
    doc = copy.deepcopy(STORED)
    paths = list(_leaf_paths(doc))
    path = data.draw(st.sampled_from(paths))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value = data.draw(VALUES)
    count_example("stored study settings", _kind_of(value))
    _valid_or_one_line(lambda d: study_from_dict(d, "fuzz"), doc)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10 ** 309, -(10 ** 400), 2 ** 53 + 1])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutations(draw, document):
    """``document`` with one value (at any depth) replaced by an arbitrary one, or removed."""
    doc = copy.deepcopy(document)
    path = draw(st.sampled_from(list(_leaf_paths(doc))))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if draw(st.booleans()):
        node[path[-1]] = draw(JSONISH)
    else:
        del node[path[-1]]
    return doc


@FUZZ
@given(data=st.one_of(JSONISH, mutations(HW), mutations(GPU)))
def test_fuzz_hardware_mapping(data):
    count_example("hardware mapping", "JSON-like values, huge and non-finite numbers")
    _valid_or_one_line(device_from_mapping, data)


@FUZZ
@given(data=st.one_of(JSONISH, mutations(SPACE)))
def test_fuzz_search_space_mapping(data):
    count_example("search-space mapping", "JSON-like values, huge and non-finite numbers")
    _valid_or_one_line(build_space, data)


@FUZZ
@given(data=st.one_of(st.dictionaries(st.text(max_size=10), JSONISH, max_size=6), mutations(HF)))
def test_fuzz_hf_config_mapping(data):
    count_example("HF config mapping", "JSON-like values, huge and non-finite numbers")
    _valid_or_one_line(lambda d: spec_from_hf_dict(d, "fuzz"), data)


# --- validation files --------------------------------------------------------------------------------

ACCEL = (REPO / "ador" / "data" / "accelerators.csv").read_text().splitlines(keepends=True)


def _accelerator_file(tmp_path, lines):
    """A copy of the accelerators file with its design folder beside it."""
    import shutil
    shutil.copytree(REPO / "ador" / "data" / "accelerators", tmp_path / "accelerators", dirs_exist_ok=True)
    path = tmp_path / "acc.csv"
    path.write_text("".join(lines))
    return str(path)


@pytest.mark.parametrize("edit,needle", [
    (lambda ls: [ls[0], ls[1].replace(",24,llama-2-7b,bf16,24,1,", ",24,llama-2-7b,bf16,0,1,")], ":tp='0'"),
    (lambda ls: [ls[0], ls[1].replace(",24,llama-2-7b,bf16,24,1,", ",24,llama-2-7b,bf16,24,0,")], ":pp='0'"),
    (lambda ls: [ls[0], ls[1], ls[1]], "appears twice"),
    (lambda ls: [ls[0].replace(",unit", ""), *(line.rsplit(",", 1)[0] + "\n" for line in ls[1:])],
     "missing columns: unit"),
    (lambda ls: [ls[0].rstrip() + ",devices_per_node\n", ls[1].rstrip() + ",x\n"], ":devices_per_node='x'"),
    (lambda ls: [ls[0]], "holds no rows"),
])
def test_bad_accelerator_files_are_one_line(tmp_path, capsys, edit, needle):
    """The accelerators' file is read by the measured files' rules (it skipped missing columns,
    took duplicate ids and divided by a TP of 0)."""
    one_line(capsys, "validate", "--data", _accelerator_file(tmp_path, edit(ACCEL)), needle=needle)


def test_files_of_which_nothing_is_predicted_are_errors(tmp_path, capsys):
    """No MAPE of nan over 0 rows with exit 0: a header-only file of each schema, an accelerators
    file away from its designs, an unknown --profile; calibrate writes nothing from no rows."""
    for name in ("measured.csv", "serving.csv"):
        (tmp_path / name).write_text((REPO / "ador" / "data" / name).read_text().splitlines()[0] + "\n")
        one_line(capsys, "validate", "--data", str(tmp_path / name), needle="holds no rows")
    (tmp_path / "far.csv").write_text("".join(ACCEL))
    one_line(capsys, "validate", "--data", str(tmp_path / "far.csv"), needle="no row could be predicted (file=")
    one_line(capsys, "validate", "--data", "accelerators.csv", "--profile", "nosuch",
             needle="--profile='nosuch': unknown runtime profile")
    one_line(capsys, "calibrate", "--data", str(tmp_path / "measured.csv"), "--out", str(tmp_path / "c.yaml"),
             needle="holds no rows to fit")
    assert not (tmp_path / "c.yaml").exists()


def test_a_run_of_which_no_trial_completes_is_an_error(workdir, capsys):
    """Every trial failing (here a structural constraint no design meets) is a non-zero exit naming
    the common reason, not a report of an empty front; the failed trials stay stored."""
    path = _space_file(workdir, "never", constraints=["hbm.stacks > 100"])
    assert main(["study", "launch", path, "--trials", "4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no trial has completed (4 of this run failed" in err, err
    assert "structural constraint: hbm.stacks > 100" in err
    assert len(optuna.load_study(study_name="never", storage="sqlite:///studies/never.db").trials) == 4


@pytest.mark.parametrize("edit,needle", [
    ({"tp": 2, "devices": 3}, "devices=3: must be a multiple of tp*pp=2"),
    ({"tp": 2, "devices": 1}, "devices=1: must be a multiple of tp*pp=2"),
    ({"workload": {"arrival_rate": 1e300}}, "workload.arrival_rate=1e+300: must be between"),
    ({"workload": {"arrival_rate": 1.0, "requests": 10 ** 12}}, "workload.requests=1000000000000: at most"),
])
def test_study_fields_every_trial_would_fail_on_are_refused(workdir, capsys, edit, needle):
    """A study every one of whose trials would fail (they used to run, all failed, exit 0)."""
    study = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    for key, value in edit.items():
        study[key] = {**study[key], **value} if isinstance(value, dict) else value
    (workdir / "studies" / "edited.yaml").write_text(yaml.safe_dump(study))
    one_line(capsys, "study", "launch", "studies/edited.yaml", "--trials", "2", "--quiet", needle=needle)
    assert not (workdir / "studies" / "edited.db").exists()


def test_a_key_written_twice_is_refused(workdir, capsys):
    """PyYAML keeps the last of two equal keys in silence; ador's files name the line instead.
    Merged keys (<<) may still be overridden."""
    text = (REPO / "studies" / "smoke.yaml").read_text()
    (workdir / "studies" / "dup.yaml").write_text(text + "tp: 2\n")
    one_line(capsys, "study", "launch", "studies/dup.yaml", "--quiet", needle="the key 'tp' is written twice")
    (workdir / "dup-design.yaml").write_text(_design_yaml() + "freq_hz: 1.0e+9\n")
    one_line(capsys, "area", "--hardware", "dup-design.yaml", needle="the key 'freq_hz' is written twice")
    from ador.config import load_yaml
    (workdir / "merge.yaml").write_text("a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n")
    assert load_yaml(workdir / "merge.yaml") == {"a": {"b": 1, "c": 2}, "d": {"b": 3, "c": 2}}


def test_empty_files_directories_and_no_memory_are_named(workdir, capsys):
    (workdir / "empty.yaml").write_text("# nothing but a comment\n")
    one_line(capsys, "study", "launch", "empty.yaml", "--quiet", needle="file='empty.yaml': is empty")
    one_line(capsys, "area", "--hardware", "empty.yaml", needle="file='empty.yaml': is empty")
    (workdir / "adir.yaml").mkdir()
    one_line(capsys, "study", "launch", "adir.yaml", "--quiet", needle="is a directory, not a study file")
    (workdir / "search_spaces" / "sdir.yaml").mkdir()
    study = (REPO / "studies" / "smoke.yaml").read_text().replace("search_space: smoke.yaml", "search_space: sdir.yaml")
    (workdir / "studies" / "sdir.yaml").write_text(study)
    one_line(capsys, "study", "launch", "studies/sdir.yaml", "--quiet", needle="is a directory, not a file")
    data = device_to_mapping(PRESETS["ador-example"])
    data["hbm"] = {**data["hbm"], "capacity_bytes_per_stack": 1024}
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(data))
    one_line(capsys, "evaluate", "--hardware", "tiny.yaml", "--model", "llama-3-8b",
             needle="but has none: its 0.0 GiB of memory is less than the runtime's reserve")


@pytest.mark.parametrize("names,needle", [("[nosuch]", "'nosuch': not a weight-only precision"),
                                          ("[fp16]", "'fp16': not a weight-only precision")])
def test_a_runtime_profile_naming_no_weight_only_precision_is_refused(workdir, capsys, names, needle):
    """``dequant_per_row`` names what it prices: a name that is no weight-only precision priced nothing."""
    (workdir / "rt.yaml").write_text(f"name: mine\ndequant_per_row: {names}\n")
    one_line(capsys, "evaluate", "--hardware", "h100-sxm-80gb", "--model", "llama-3-8b", "--runtime", "rt.yaml",
             needle=needle)


def test_a_fairness_ladder_of_a_run_that_cannot_fit_is_refused(workdir, capsys):
    """Ratios of a batch the design (or the GPU) cannot hold were printed as if it could."""
    one_line(capsys, "fairness", "--design", "ador-example", "--batch", "100000",
             needle="the design ador-example cannot hold llama-3-70b")
    one_line(capsys, "fairness", "--design", "ador-example", "--tp", "1", "--batch", "1",
             needle="cannot hold llama-3-70b (fp16, TP1)")


def test_derived_fields_are_computed_in_the_order_they_read_each_other():
    """A derived field written before one it reads gets that one's derived value (it read the base's)."""
    space = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    written = {"noc.bw_bytes_per_s": "sram.bw_bytes_per_s", **space["derived"]}    # the reader first
    ordered = build_space({**space, "derived": written})
    as_is = build_space(space)
    for values in ({"systolic.count": 4, "mactree.count": 32, "hbm.stacks": 4, "sram.capacity_bytes": 2 ** 25,
                    "node_nm": 5},):
        a, b = ordered.design(values), as_is.design(values)
        assert a.noc.bw_bytes_per_s == b.noc.bw_bytes_per_s == b.sram.bw_bytes_per_s != as_is.base.noc.bw_bytes_per_s
    assert list(as_is.spec.derived) == list(space["derived"])           # an ordered space keeps its order


def test_plots_of_a_study_without_a_front_are_refused_or_quiet(workdir, capsys):
    """No completed trial: plot and report are one-line errors that write nothing. Completed but
    none feasible: the plots are drawn without an empty legend (matplotlib warned on stderr)."""
    path = _space_file(workdir, "never", constraints=["hbm.stacks > 100"])
    assert main(["study", "launch", path, "--trials", "3", "--quiet"]) == 2
    capsys.readouterr()
    for command in ("plot", "report"):
        one_line(capsys, "study", command, "never", "--out", "out", needle="no trial has completed, nothing to plot")
    assert not (workdir / "out").exists()
    study = (REPO / "studies" / "smoke.yaml").read_text().replace("model: llama-3-8b", "model: llama-3.1-405b")
    (workdir / "studies" / "big.yaml").write_text(study)
    assert main(["study", "launch", "studies/big.yaml", "--trials", "3", "--quiet"]) == 0
    capsys.readouterr()
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["study", "plot", "big", "--out", "plots"]) == 0
    assert capsys.readouterr().err == "" and not [str(w.message) for w in caught if "legend" in str(w.message)]


@pytest.mark.parametrize("name,metric_unit", [("measured.csv", ("ttft_ms", "s")),
                                              ("serving.csv", ("output_tok_s", "ms")),
                                              ("accelerators.csv", ("tbt_ms", "us"))])
def test_a_row_in_another_unit_than_its_metric_is_refused(tmp_path, capsys, name, metric_unit):
    """A TTFT stated in seconds was read as milliseconds."""
    metric, unit = metric_unit
    lines = (REPO / "ador" / "data" / name).read_text().splitlines()
    header = lines[0].split(",")
    row = next(line.split(",") for line in lines[1:] if line.split(",")[header.index("metric")] == metric)
    row[header.index("unit")] = unit
    if name == "accelerators.csv":
        path = _accelerator_file(tmp_path, [lines[0] + "\n", ",".join(row) + "\n"])
    else:
        path = tmp_path / name
        path.write_text(lines[0] + "\n" + ",".join(row) + "\n")
    one_line(capsys, "validate", "--data", str(path), needle=f":unit='{unit}': {metric} is in")


def test_a_data_row_with_more_cells_than_the_header_is_refused(tmp_path, capsys):
    """An unquoted comma shifts every later value of a row: csv dropped the extra cell in silence."""
    lines = (REPO / "ador" / "data" / "measured.csv").read_text().splitlines()
    (tmp_path / "m.csv").write_text(lines[0] + "\n" + lines[1] + ",extra\n")
    one_line(capsys, "validate", "--data", str(tmp_path / "m.csv"),
             needle="m.csv:2='extra': more cells than the header has columns")


def test_a_study_longer_than_the_models_context_says_so(workdir, capsys):
    text = (REPO / "studies" / "smoke.yaml").read_text().replace("input_len: 512", "input_len: 9000")
    (workdir / "studies" / "long.yaml").write_text(text)
    assert main(["study", "launch", "studies/long.yaml", "--trials", "2", "--quiet"]) == 0
    assert "9,128 tokens exceed llama-3-8b's trained context of 8,192; priced anyway" in capsys.readouterr().err
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "2", "--quiet"]) == 0
    assert "trained context" not in capsys.readouterr().err


def test_headline_and_study_options_found_by_the_second_fuzz(workdir, capsys):
    """A headline whose studies found nothing feasible (a ValueError traceback); a --trials beyond a
    study file's own bound (ran until killed); --storage beside --storage-dir (the folder was ignored)."""
    one_line(capsys, "headline", "--trials", "1", "--seeds", "1", "--no-serving", "--storage-dir", "hsd",
             "--out", "hout", "--quiet", needle="no feasible design: run more trials")
    code, err = ador_within(20, "study", "launch", "studies/smoke.yaml", "--trials", str(10 ** 20), "--quiet",
                            cwd=workdir)         # in a child: without the bound it runs until killed
    assert code == 2 and "at most 2**53 trials" in err, err
    one_line(capsys, "study", "status", "smoke", "--storage", "sqlite:///studies/smoke.db", "--storage-dir", "studies",
             needle="--storage-dir: not allowed with argument --storage")
    one_line(capsys, "headline", "--seeds", "1", "1", "--out", "hout", needle="--seeds='1 1': a seed given twice")


@pytest.mark.parametrize("edit,needle", [({"ttft_slo_ms": 0}, "load.ttft_slo_ms=0.0: must be a positive"),
                                         ({"rate_rps": 1e30}, "load.rate_rps=1e+30: must be between"),
                                         ({"length_cv": 1}, "load.length_cv=1: unknown field")])
def test_a_system_studys_load_errors_name_the_field(workdir, capsys, edit, needle):
    """They named the whole load: section, cut short; a rate beyond a run's reach was only found
    by every trial failing."""
    study = yaml.safe_load((REPO / "studies" / "llama3-70b-20rps.yaml").read_text())
    study["load"] = {**study["load"], **edit}
    (workdir / "studies" / "load.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    one_line(capsys, "study", "launch", "studies/load.yaml", "--trials", "1", "--quiet", needle=needle)
    assert not (workdir / "studies" / "load.db").exists()
