"""Hostile requests and traces end in a one-line error naming the field, never a hang or a traceback."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ador.cli import main
from ador.errors import ConfigError
from ador.hardware import PRESETS, System
from ador.serving import Lengths, RequestArrays, Request, burst, load_trace, poisson, simulate
from ador.workload import get_model, get_precision

A100 = System(device=PRESETS["a100-sxm-80gb"], tp=1)
L8, FP16 = get_model("llama-3-8b"), get_precision("fp16")
HEADER = "arrival_s,prompt_len,output_len\n"


@pytest.mark.parametrize("body, needle", [
    ("nan,10,10\n", "trace:2:arrival_s='nan': must be finite"),
    ("inf,10,10\n", "trace:2:arrival_s='inf': must be finite"),
    ("-1,10,10\n", "an arrival time is 0 .. 2**32 s"),
    ("0,NaN,10\n", "trace:2:prompt_len='NaN': must be finite"),
    ("0,10,0\n", "trace:2:output_len='0': must be a whole number of tokens"),
    ("0,1.5,10\n", "trace:2:prompt_len='1.5'"),
    ("0,1e30,10\n", "trace:2:prompt_len='1e30'"),
    ("0,abc,3\n", "trace:2:prompt_len='abc': must be a number"),
    ("0,10\n", "trace:2:output_len='': must be a number"),
    ("", "has no requests"),
])
def test_hostile_trace_rows_give_one_line_errors(tmp_path, body, needle):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + body)
    with pytest.raises(ConfigError) as err:
        load_trace(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unreadable_traces(tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(HEADER.encode() + b"0,10,10\n\xff\xfe,1,1\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        load_trace(bad)
    with pytest.raises(ConfigError, match="is a directory"):
        load_trace(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        load_trace(tmp_path / "absent.csv")
    (tmp_path / "cols.csv").write_text("time,prompt\n1,2\n")
    with pytest.raises(ConfigError, match="needs columns"):
        load_trace(tmp_path / "cols.csv")


def test_traces_are_sorted_on_loading(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "0.5,100,10\n0.0,200,20\n")
    reqs = load_trace(path)
    assert [(r.arrival_s, r.prompt_len) for r in reqs] == [(0.0, 200), (0.5, 100)]


@pytest.mark.parametrize("make, needle", [
    (lambda: RequestArrays([0.0, math.nan], [1, 1], [1, 1]), "arrival_s=nan"),
    (lambda: RequestArrays([0.0, math.inf], [1, 1], [1, 1]), "arrival_s=inf"),
    (lambda: RequestArrays([1.0, 0.0], [1, 1], [1, 1]), "must not decrease"),
    (lambda: RequestArrays([0.0], [0], [1]), "prompt_len=0"),
    (lambda: RequestArrays([0.0], [5], [math.nan]), "output_len=nan"),
    (lambda: RequestArrays([], [], []), "has no requests"),
    (lambda: RequestArrays.of([Request(0, math.nan, 1, 1)]), "arrival_s=nan"),
    (lambda: poisson(math.nan, 10, Lengths(), Lengths()), "rate=nan"),
    (lambda: poisson(math.inf, 10, Lengths(), Lengths()), "rate=inf"),
    (lambda: poisson(1.0, -1, Lengths(), Lengths()), "requests=-1"),
    (lambda: burst(0, Lengths(), Lengths()), "requests=0"),
    (lambda: Lengths("lognormal", 100, 1e300), "length-cv=1e+300"),
    (lambda: Lengths("lognormal", math.nan), "mean=nan"),
    (lambda: Lengths("truncated-lognormal", 2000, 1.0, 1, 1024), "minimum < mean < maximum"),
])
def test_hostile_requests_are_refused_with_the_field_named(make, needle):
    with pytest.raises(ConfigError, match=needle.replace("+", r"\+")):
        make()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_trace_load_or_fail_cleanly_and_never_hang(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("trace") / "t.csv"
    path.write_bytes(HEADER.encode() + data)
    try:
        reqs = load_trace(path)
    except ConfigError:
        return
    r = simulate(A100, L8, FP16, reqs)
    assert r.n_finished + r.refused == len(reqs)


@pytest.mark.parametrize("args, needle", [
    (["--requests", "-1"], "requests=-1"),
    (["--lengths", "long-tailed", "--length-cv", "1e300"], "length-cv=1e+300"),
    (["--rate", "nan"], "rate=nan"),
    (["--rate", "1", "--ci", "300%"], "ci='300%'"),
])
def test_cli_refuses_hostile_loads_in_one_line(capsys, args, needle):
    assert main(["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ador: error: ") and needle in err and "\n" not in err


def test_cli_trace_with_a_nan_fails_fast(capsys, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "0,10,10\nnan,10,10\n")
    assert main(["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--trace", str(path)]) == 2
    assert "trace:3:arrival_s='nan'" in capsys.readouterr().err


def test_lengths_distributions_have_their_stated_means():
    rng = np.random.default_rng(0)
    for lengths in (Lengths("truncated-lognormal", 226.09, 1.0, 1, 1024), Lengths("uniform", 512, minimum=1,
                                                                                  maximum=1024)):
        x = lengths.sample(rng, 200_000)
        assert x.min() >= lengths.minimum and x.max() <= lengths.maximum
        assert x.mean() == pytest.approx(lengths.mean, rel=0.01)


def test_a_lengths_trace_takes_its_arrivals_from_rate_or_clients_and_a_timed_one_refuses_them(tmp_path, capsys,
                                                                                            spy_simulate, monkeypatch):
    """Published per-request lengths (every arrival_s 0) replay at --rate (Poisson, --seed), from
    --concurrency clients, or all at once; --find-capacity scales their Poisson arrivals. A trace
    that times its arrivals refuses --rate and --concurrency in one line. Each command reads the trace once."""
    import ador.serving.command as command
    lengths = [(14, 129), (375, 1), (487, 10), (30, 854), (5, 8), (236, 57)]
    flat, timed = tmp_path / "flat.csv", tmp_path / "timed.csv"
    flat.write_text(HEADER + "".join(f"0,{p},{o}\n" for p, o in lengths))
    timed.write_text(HEADER + "".join(f"{i * 0.5},{p},{o}\n" for i, (p, o) in enumerate(lengths)))
    seen = spy_simulate(command)
    loads: list = []
    read = command.load_trace
    monkeypatch.setattr(command, "load_trace", lambda path: loads.append(path) or read(path))
    base = ["simulate", "--hardware", "a100-sxm-80gb", "--model", "llama-3-8b", "--json"]
    for extra, check in (
            (["--rate", "2", "--seed", "3"], lambda r, c: c is None and np.array_equal(
                r.arrival_s, poisson(2.0, 6, Lengths("fixed", 1), Lengths("fixed", 1), seed=3).arrival_s)),
            (["--concurrency", "2"], lambda r, c: not r.arrival_s.any() and c == 2),
            ([], lambda r, c: not r.arrival_s.any() and c is None)):
        seen.clear()
        loads.clear()
        assert main([*base, "--trace", str(flat), *extra]) == 0
        assert len(loads) == 1, extra
        (reqs, clients), = seen
        assert list(zip(reqs.prompt_len, reqs.output_len)) == lengths and check(reqs, clients), extra
    seen.clear()
    loads.clear()
    # (a target the six requests can miss: at 2,000 ms they met it at every rate, and no capacity exists)
    assert main([*base, "--trace", str(flat), "--find-capacity", "--slo", "ttft_p99_ms=60"]) == 0
    assert len(loads) == 1
    rates = {round(float(r.arrival_s[-1]), 9) for r, _ in seen}
    assert len(seen) > 2 and len(rates) > 2          # the bisection's rates scale the drawn arrivals
    capsys.readouterr()
    for extra, needle in ((["--rate", "2"], "--rate=2.0: the trace times its own arrivals"),
                          (["--concurrency", "2"], "--trace=")):
        assert main([*base, "--trace", str(timed), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ador: error: ") and needle in err and "\n" not in err
