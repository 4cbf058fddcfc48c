"""Published single-node all-reduce timings against the model's collectives: every usable row is
priced, the generated tables and the prose figures of docs/validation.md are the model's own, and the
file's bad rows are refused by name."""
import pytest

from ador.errors import ConfigError
from ador.hardware import PRESETS
from ador.hardware.presets import NVLS_BOARDS
from ador.perf.collectives import collective_seconds
from ador.validation import collectives as c
from ador.workload.ops import ALLREDUCE
from tests.conftest import REPO

DOC = REPO / "docs" / "validation.md"
NCCL, CUSTOM, SMALL, MID, LARGE = ("NCCL / RCCL", "custom kernel", "up to 256 KB (decode)", "256 KB - 8 MB",
                                   "over 8 MB (prefill)")


@pytest.fixture(scope="module")
def report():
    return c.compare()


def test_every_usable_row_is_priced_and_the_rest_say_why(report):
    rows = c.load()
    assert len(rows) == 245
    usable = [r for r in rows if not r.exclude and r.gpu in PRESETS]
    assert [d["id"] for d in report["rows"]] == [r.id for r in usable]
    assert len(report["left_out"]) == 245 - len(usable) and all(x["reason"] for x in report["left_out"])
    assert sum(bool(r.exclude) for r in rows) == 81
    assert sum(x["reason"].endswith("no preset") for x in report["left_out"]) == 21


def test_the_model_side_is_the_collective_the_steps_pay():
    from ador.hardware import System
    from ador.hardware.runtime import runtime_profiles
    from ador.perf.stage import rates
    r = rates(System.of(PRESETS["h100-sxm-80gb"], tp=8, devices=8, runtime=runtime_profiles()["default"]))
    expected = collective_seconds(ALLREDUCE, 1 << 20, 8, r.link_bw, r.step_latency_s, True, r.op_overhead_s)
    assert c.model_us("h100-sxm-80gb", 8, 1 << 20) == pytest.approx(1e6 * expected, rel=1e-12)
    # more bytes cost more, and a GPU with faster links pays less for the same bytes
    assert c.model_us("h100-sxm-80gb", 8, 64 << 20) > c.model_us("h100-sxm-80gb", 8, 1 << 20)
    assert c.model_us("b200-sxm-192gb", 8, 64 << 20) < c.model_us("a100-sxm-80gb", 8, 64 << 20)


HEADER = "id,gpu,gpus,implementation,message_bytes,time_us,busbw_gb_s,source_url\n"


def test_a_bus_bandwidth_is_turned_into_the_time_nccl_tests_measured(tmp_path):
    """nccl-tests: algbw = S / t, busbw = algbw x 2(n-1)/n. 8 GPUs, 1 MiB at 43.70 GB/s: 42.0 us."""
    f = tmp_path / "a.csv"
    f.write_text(HEADER + "x,h100-sxm-80gb,8,nccl,1048576,,43.70,u\n")
    (row,) = c.load(f)
    assert row.time_us == pytest.approx(1048576 * 1.75 / 43.70e9 * 1e6, rel=1e-12)
    assert row.busbw_bytes_per_s == pytest.approx(43.70e9, rel=1e-12)


@pytest.mark.parametrize("rows, message", [
    ("y,h100-sxm-80gb,8,nccl,1048576,,,u\n", "a.csv:2"),                      # neither a time nor a busbw
    ("z,h100-sxm-80gb,eight,nccl,1048576,3,,u\n", "a.csv:2"),                 # not a number
    ("w,h100-sxm-80gb,1,nccl,1048576,,10,u\n", "gpus=1"),                     # no all-reduce on one GPU
    ("v,h100-sxm-80gb,8,nccl,1048576,3,,u\nv,h100-sxm-80gb,8,nccl,2097152,5,,u\n", "twice"),
    ("t,h100-sxm-80gb,8,nccl,1048576,0,,u\n", "time_us=0"),                   # a time of zero
    ("n,h100-sxm-80gb,8,nccl,1048576,nan,,u\n", "time_us=nan"),
    ("s,h100-sxm-80gb,8,nccl,1048576,,-5,u\n", "time_us="),                    # a negative bandwidth
    ("b,h100-sxm-80gb,8,nccl,0,3,,u\n", "message_bytes=0"),
])
def test_a_bad_row_is_refused_by_name(tmp_path, rows, message):
    f = tmp_path / "a.csv"
    f.write_text(HEADER + rows)
    with pytest.raises(ConfigError, match=message):
        c.load(f)


def test_a_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        c.load(tmp_path / "gone.csv")


def _pct(x: float) -> str:
    return f"{abs(x):.0f}%"


def test_the_doc_quotes_the_models_figures(report):
    text = DOC.read_text()
    g = lambda gpu, n, kind, band: c.group(report, gpu, n, kind, band)["median_error_pct"]   # noqa: E731
    a100_large, a100_mid = g("a100-sxm-80gb", 8, NCCL, LARGE), g("a100-sxm-80gb", 8, NCCL, MID)
    assert a100_large > 0 > a100_mid        # slow on prefill sizes, fast in between
    assert f"prefill-size all-reduces (over 8 MB) {_pct(a100_large)} slow" in text
    assert f"256 KB - 8 MB\nones {_pct(a100_mid)} fast" in text
    h100, h200 = g("h100-sxm-80gb", 8, NCCL, LARGE), g("h200-sxm-141gb", 8, NCCL, LARGE)
    assert f"come out {_pct(h100)} and\n{_pct(h200)} slow" in text
    small_nccl, small_custom = g("h100-sxm-80gb", 8, NCCL, SMALL), g("h100-sxm-80gb", 8, CUSTOM, SMALL)
    assert small_nccl < 0 < small_custom
    assert f"it is {_pct(small_nccl)} fast at the median of the NCCL rows" in text.replace("\n", " ")
    assert f"and {_pct(small_custom)}\nslow against one-shot kernels" in text
    a100_small, h200_small = g("a100-sxm-80gb", 8, NCCL, SMALL), g("h200-sxm-141gb", 8, NCCL, SMALL)
    assert a100_small < 0 and h200_small < 0
    assert f"it is {_pct(a100_small)} fast on the A100 and {_pct(h200_small)} fast on the H200" in text
    four_custom, four_nccl = g("h100-sxm-80gb", 4, CUSTOM, MID), g("h100-sxm-80gb", 4, NCCL, MID)
    assert f"(+{four_custom:.0f}% and +{four_nccl:.0f}%)" in text
    fr = {x["gpu"]: x for x in c.link_fractions()}
    assert f"reaches {100 * fr['a100-sxm-80gb']['fraction']:.0f}% of the A100's NVLink3" in text.replace("\n", " ")
    assert f"({fr['a100-sxm-80gb']['busbw_gb_s']:.0f} GB/s bus bandwidth)" in text
    lo, hi = sorted((fr["h100-sxm-80gb"]["busbw_gb_s"], fr["h200-sxm-141gb"]["busbw_gb_s"]))
    assert f"reaches {lo:.0f}-{hi:.0f} GB/s" in text.replace("\n", " ")
    assert f"(`link_efficiency` {fr['a100-sxm-80gb']['fitted_fraction']:.3f})" in text


def test_the_generated_section_is_current(tmp_path):
    from ador.markdown import markers
    doc = tmp_path / "v.md"
    doc.write_text(DOC.read_text())
    c.update_doc(doc)
    assert (tmp_path / c.PLOT_NAME).stat().st_size > 20_000 and (DOC.parent / c.PLOT_NAME).is_file()
    begin, end = markers(c.DOC_COMMAND)
    section = lambda t: t.split(begin, 1)[1].split(end, 1)[0]   # noqa: E731
    assert section(doc.read_text()) == section(DOC.read_text())


def test_the_best_bandwidth_counts_only_usable_rows_of_large_messages():
    def row(id_, size, us, exclude=""):
        return c.AllReduceMeasurement(id_, "a100-sxm-80gb", 8, "nccl", size, us, "u", exclude)
    rows = [row("big", 1 << 30, 8000.0), row("faster but excluded", 1 << 30, 4000.0, "glitch"),
            row("faster but small", 1 << 20, 1.0)]
    (line,) = c.link_fractions(rows)
    assert line["id"] == "big"
    assert line["busbw_gb_s"] == pytest.approx((1 << 30) * 1.75 / 8000e-6 / 1e9)


def test_the_figures_table_quotes_the_check(report):
    assert (f"kernel benchmarks ({len(report['rows'])} rows, never fitted on; \"One all-reduce\" below) | "
            f"**{report['mape_pct']:.1f}%** |") in DOC.read_text()


def test_the_docs_quote_what_a_reducing_switch_is_worth():
    """The presets' plain switch is a named assumption: its worth against each board, as quoted."""
    from benchmarks.nvls_fit import NVLS_BOARDS, ratio_effect
    effect = ratio_effect()
    assert all(e["tbt_p99_x"] > 1 and e["ttft_x"] > 1 and e["output_tok_s_x"] > 1 for e in effect.values())
    h100, h200, b200 = (effect[n] for n in NVLS_BOARDS)
    f = lambda e: f"{e['tbt_p99_x']:.2f}x, {e['ttft_x']:.2f}x, {e['output_tok_s_x']:.2f}x"   # noqa: E731
    quoted = f"(H200: {f(h200)}; B200: {f(b200)};"
    validation = DOC.read_text().replace("\n", " ")
    modelling = (REPO / "docs" / "modelling.md").read_text()
    assert (f"{h100['tbt_p99_x']:.2f}x as fast per decode step, {h100['ttft_x']:.2f}x to the first token and "
            f"{h100['output_tok_s_x']:.2f}x in output tokens/s {quoted}") in validation
    assert (f"TBT ratio would be divided by {h100['tbt_p99_x']:.2f}x, its TTFT ratio by {h100['ttft_x']:.2f}x and "
            f"its throughput-based ratios by {h100['output_tok_s_x']:.2f}x {quoted}") in modelling


def test_a_steps_all_reduce_is_set_beside_the_timings_near_its_size():
    from ador.hardware.runtime import runtime_profiles
    profile = runtime_profiles()["tensorrt-llm"]
    size = 128 * 8192 * 2
    check = c.step_check("a100-sxm-80gb", 8, size, 160, profile)
    usable = [r for r in c.load() if not r.exclude and r.gpu == "a100-sxm-80gb" and r.gpus == 8]
    assert {d["id"] for d in check.near} == {r.id for r in usable if size / 2 <= r.message_bytes <= size * 2} != set()
    assert any(not size / 2 <= r.message_bytes <= size * 2 for r in usable)     # the size filter bites
    assert check.model_us == pytest.approx(c.model_us("a100-sxm-80gb", 8, size, profile=profile))
    for d in check.near:
        assert d["error_pct"] == pytest.approx(100 * (d["model_us"] / d["measured_us"] - 1))
    errors = sorted(d["error_pct"] for d in check.near)
    text = check.sentence("X")
    assert f"priced at {check.model_us:.1f} us each" in text and f"({errors[0]:+.0f}% to {errors[-1]:+.0f}%)" in text
    assert "no published" in c.step_check("a100-sxm-80gb", 4, size, 160, profile).sentence("X")


def test_a_steps_check_leaves_out_excluded_rows():
    from ador.hardware.runtime import runtime_profiles
    rows = [c.AllReduceMeasurement("kept", "a100-sxm-80gb", 8, "nccl", 1 << 21, 60.0, "u"),
            c.AllReduceMeasurement("glitch", "a100-sxm-80gb", 8, "nccl", 1 << 21, 600.0, "u", "flagged")]
    check = c.step_check("a100-sxm-80gb", 8, 1 << 21, 160, runtime_profiles()["default"], rows)
    assert [d["id"] for d in check.near] == ["kept"]


def test_the_graph_collectives_probe_prices_vllm_alone_and_restores_the_facts():
    from ador.hardware.runtime import runtime_profiles
    from ador.validation.kernels import runtime_for
    from benchmarks.graph_collectives import _graph_collectives
    profiles = runtime_profiles()
    fitted = profiles["default"].collective_latency_s
    with _graph_collectives():
        assert runtime_for("vLLM 0.10.2", profiles)[0].collective_latency_s == 0.0
        assert runtime_for("TensorRT-LLM 1.1.0", profiles)[0].collective_latency_s == fitted
    assert runtime_for("vLLM 0.10.2", profiles)[0].collective_latency_s == fitted > 0


def test_ador_validate_reads_an_all_reduce_file_by_its_header(capsys, report, tmp_path):
    import json

    from ador.cli import main
    assert main(["validate", "--data", "allreduce.csv", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["mape_pct"] == pytest.approx(report["mape_pct"]) and len(got["rows"]) == len(report["rows"])
    assert main(["validate", "--data", "allreduce.csv"]) == 0
    assert f"**MAPE {report['mape_pct']:.1f}%**" in capsys.readouterr().out
    assert main(["validate", "--data", "allreduce.csv", "--profile", "ador-paper"]) == 2
    assert "--profile does not apply" in capsys.readouterr().err
    assert main(["validate", "--data", "allreduce.csv", "--plot", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").stat().st_size > 20_000
    assert not c.is_allreduce_file(REPO / "ador" / "data" / "measured.csv")


def test_a_column_named_twice_is_refused(tmp_path):
    f = tmp_path / "twice.csv"
    f.write_text("id,gpu,gpus,implementation,message_bytes,time_us,source_url,exclude,exclude\n"
                 "a,h100-sxm-80gb,8,nccl,1048576,30,u,,glitch\n")
    with pytest.raises(ConfigError, match="columns named twice: exclude"):
        c.load(f)


def test_the_plots_panels_are_the_compared_rows(report):
    panels = c.curves(report)
    for p in panels:
        rows = [d for d in report["rows"] if (d["gpu"], d["gpus"]) == (p["gpu"], p["gpus"])]
        assert sum(len(v) for v in p["points"].values()) == len(rows) >= c.PANEL_MIN_ROWS
        assert (p["reducing_switch_us"] is None) == (p["gpu"] not in NVLS_BOARDS)
        if p["reducing_switch_us"] is not None:
            assert all(r <= m for r, m in zip(p["reducing_switch_us"], p["model_us"]))
    assert {(p["gpu"], p["gpus"]) for p in panels} >= {("a100-sxm-80gb", 8), ("h100-sxm-80gb", 8)}


def test_a_file_with_nothing_to_compare_is_refused(tmp_path, capsys):
    from ador.cli import main
    f = tmp_path / "none.csv"
    f.write_text(HEADER.replace("source_url\n", "source_url,exclude\n") + "a,h100-sxm-80gb,8,nccl,1048576,3,,u,glitch\n"
                 "b,gb200-185gb,4,nccl,1048576,3,,u,\n")
    assert main(["validate", "--data", str(f), "--json"]) == 2
    err = capsys.readouterr().err
    assert "none can be compared" in err and "glitch" in err and "no preset" in err


def test_the_doc_quotes_what_the_in_switch_all_reduce_does_to_the_check(report):
    reducing = c.nvls_presets()
    assert {n for n, d in reducing.items() if getattr(d, "topology", "") == "reducing_switch"} == set(NVLS_BOARDS)
    with_it = c.compare(devices=reducing)
    assert with_it["mape_pct"] < report["mape_pct"]
    text = DOC.read_text().replace("\n", " ")
    assert f"falls from {report['mape_pct']:.1f}% to {with_it['mape_pct']:.1f}%" in text
    h100, h200 = (c.group(with_it, g, 8, NCCL, LARGE)["median_error_pct"] for g in ("h100-sxm-80gb", "h200-sxm-141gb"))
    assert f"prefill sizes +{h100:.0f}% and +{h200:.0f}%" in text
