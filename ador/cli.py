"""The ``ador`` command. Each subcommand parses its arguments, calls the library, and renders."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from ador.cli_args import LazyChoices, Parser, UsageError, count, seed, share, trials
from ador.cli_study import register as register_study
from ador.cli_validation import register as register_validation
from ador.errors import AdorError, ConfigError, DoesNotFitError
from ador.slo import SLO_KEYS

GiB = 1024 ** 3


def _fmt_bytes(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def _system_args(p: argparse.ArgumentParser, precisions) -> None:
    p.add_argument("--hardware", required=True, help="preset name (ador hardware list) or design .yaml")
    p.add_argument("--model", required=True, help="zoo name (ador models) or a Hugging Face config.json")
    p.add_argument("--tp", type=count, default=1, help="tensor-parallel degree")
    p.add_argument("--pp", type=count, default=1, help="pipeline-parallel degree")
    p.add_argument("--devices", type=count, default=None, help="devices in all (default: tp*pp; more are replicas)")
    p.add_argument("--precision", default="fp16", choices=precisions, help="weights, activations and KV cache")
    p.add_argument("--runtime", default=None,
                   help="runtime profile for the device, GPU or design alike: a name (tensorrt-llm, the default; "
                        "gpt-fast, default, ideal, ador-paper, ...) or a profile .yaml")


def _build_system(args: argparse.Namespace):
    from ador.hardware import System, get_device
    from ador.workload import get_model, get_precision
    device = get_device(args.hardware)
    model = get_model(args.model)
    precision = get_precision(args.precision)
    system = System.of(device, tp=args.tp, devices=args.devices, pp=args.pp, runtime=args.runtime)
    return system, model, precision


def _require_finite(data: Any, hardware: str) -> None:
    """A design the model cannot price (a bandwidth or clock so small that times overflow) is an
    error naming the first non-finite figure, never ``Infinity`` ms or ``nan`` W in the output."""
    import math
    from ador.errors import ConfigError

    def first_bad(obj: Any, path: str) -> str | None:
        if isinstance(obj, dict):
            return next((b for k, v in obj.items() if (b := first_bad(v, f"{path}.{k}" if path else str(k)))), None)
        if isinstance(obj, list):
            return next((b for i, v in enumerate(obj) if (b := first_bad(v, f"{path}[{i}]"))), None)
        if isinstance(obj, float) and not math.isfinite(obj):
            return f"{path}={obj}"
        return None
    bad = first_bad(data, "")
    if bad:
        raise ConfigError("hardware", hardware, f"the model gives a non-finite result ({bad}): a bandwidth, rate or "
                                                f"clock of the design is too small to model")


# --- ador models -----------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    from ador.workload import ZOO
    rows = []
    for m in ZOO.values():
        moe = f"{m.n_experts}x top-{m.top_k}" if m.is_moe else ""
        rows.append({"name": m.name, "params_b": round(m.total_params() / 1e9, 2), "layers": m.n_layers,
                     "d_model": m.d_model, "heads": m.n_heads, "kv_heads": m.n_kv_heads, "head_dim": m.head_dim,
                     "d_ff": m.d_ff, "ffn": m.ffn_kind, "vocab": m.vocab_size, "moe": moe, "source": m.source})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':16} {'params':>8} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>4} {'hd':>4} "
          f"{'d_ff':>6} {'ffn':>6} {'vocab':>6} moe")
    for r in rows:
        print(f"{r['name']:16} {r['params_b']:7.1f}B {r['layers']:6} {r['d_model']:7} {r['heads']:5} "
              f"{r['kv_heads']:4} {r['head_dim']:4} {r['d_ff']:6} {r['ffn']:>6} {r['vocab']:6} {r['moe']}")
    return 0


# --- ador hardware ---------------------------------------------------------------------------

def cmd_hardware_list(args: argparse.Namespace) -> int:
    from ador.hardware import PRESETS
    from ador.perf.peaks import device_peaks
    rows = [{"name": name, **device_peaks(d)} for name, d in PRESETS.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'hardware':16} {'kind':5} {'fp16 TF/s':>9} {'fp8 TF/s':>9} {'HBM TB/s':>8} {'HBM GiB':>8} "
          f"{'link GB/s':>9} {'node':>5}")
    for r in rows:
        print(f"{r['name']:16} {r['kind']:5} {r['fp16_tflops']:9.1f} {r['fp8_tflops']:9.1f} "
              f"{r['hbm_tb_s']:8.2f} {r['hbm_gib']:8.1f} {r['link_gb_s']:9.1f} {r['node_nm']:>4}nm")
    return 0


def cmd_hardware_show(args: argparse.Namespace) -> int:
    from ador.hardware import device_to_mapping, device_to_yaml, get_device
    device = get_device(args.name)
    if args.json:
        print(json.dumps(device_to_mapping(device), indent=2))
    else:
        sys.stdout.write(device_to_yaml(device))
    return 0


# --- ador evaluate ---------------------------------------------------------------------------

def cmd_evaluate(args: argparse.Namespace) -> int:
    from ador.perf import evaluate
    system, model, precision = _build_system(args)
    result = evaluate(system, model, precision, batch=args.batch, input_len=args.input_len,
                      output_len=args.output_len)
    if not result.fits and not args.allow_overflow:
        m = result.memory
        has = _fmt_bytes(result.capacity_bytes) if result.capacity_bytes > 0 else (
            f"none: its {_fmt_bytes(system.device.hbm_capacity_bytes)} of memory is less than the runtime's "
            f"reserve of {_fmt_bytes(system.runtime.reserved_bytes)}")
        raise DoesNotFitError(
            f"hardware={system.device.name}: {model.name} ({precision.name}, tp={system.tp}, pp={system.pp}, "
            f"batch={args.batch}) needs {_fmt_bytes(m.total_bytes)} per device (weights "
            f"{_fmt_bytes(m.weight_bytes)}, KV {_fmt_bytes(m.kv_bytes)}) but has {has}; "
            f"raise --tp/--pp, lower --batch or use a smaller --precision")
    from ador.cost.report import DEFAULT_POWER_RULE
    from ador.efficiency import efficiency
    power_rule = args.power_rule or DEFAULT_POWER_RULE
    data = result.to_dict()
    data.update(efficiency(system, result, power_rule=power_rule))
    data["die_area_mm2"] = data["die_area_mm2_per_device"]
    data["package_area_mm2"] = data["package_area_mm2_per_device"]
    data["dies"] = system.dies
    data["runtime_profile"] = system.runtime.to_mapping()
    data["power_rule"] = power_rule
    from ador.perf.evaluate import tbt_p99_s
    data["tbt_p99_ms"] = tbt_p99_s(system, model, precision, args.batch, args.input_len, args.output_len,
                                   result.tbt_s) * 1e3
    _require_finite(data, system.device.name)
    warning = _reticle_warning(system.device, data["die_area_mm2"] / system.dies)
    data["within_reticle"] = warning is None
    if warning:
        print(f"ador: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{model.name} ({precision.name}) on {system.devices} x {system.device.name} "
          f"(tp={system.tp}, pp={system.pp}, replicas={system.replicas}), runtime profile {system.runtime.name}")
    print(f"batch {args.batch}, input {args.input_len}, output {args.output_len} tokens")
    if result.exceeds_context:
        print(f"  note: {args.input_len + args.output_len} tokens exceed {model.name}'s trained context of "
              f"{model.max_seq_len}; priced anyway")
    print(f"  TTFT        {data['ttft_ms']:10.2f} ms   (prefill of the whole batch)")
    print(f"  TBT         {data['tbt_ms']:10.3f} ms   (mean over the generation)")
    print(f"  TBT p99     {data['tbt_p99_ms']:10.3f} ms   (99th-percentile step: tbt_p99_ms, what studies optimise)")
    print(f"  end-to-end  {data['e2e_ms']:10.1f} ms")
    print(f"  throughput  {data['output_tok_s']:10.1f} output tok/s "
          f"({data['output_tok_s_per_device']:.1f} per device)")
    dies = "" if system.dies == 1 else f" in {system.dies} dies"
    print(f"  area eff.   {data['output_tok_s_per_mm2']:10.4f} output tok/s per mm2 of die "
          f"({system.devices} x {data['die_area_mm2_per_device']:.0f} mm2{dies})")
    print(f"              {data['output_tok_s_per_package_mm2']:10.4f} output tok/s per mm2 of package "
          f"({system.devices} x {data['package_area_mm2_per_device']:.0f} mm2: dies and HBM stacks)")
    print(f"  energy      {data['energy_per_output_token_j'] * 1e3:10.2f} mJ per output token "
          f"(~{data['avg_power_w_per_device']:.0f} W per device)")
    m = result.memory
    print(f"  memory      {_fmt_bytes(m.total_bytes)} of {_fmt_bytes(result.capacity_bytes)} per device "
          f"(weights {_fmt_bytes(m.weight_bytes)}, KV {_fmt_bytes(m.kv_bytes)}, "
          f"activations {_fmt_bytes(m.activation_bytes)}){'' if result.fits else '  DOES NOT FIT'}")
    for label, stage in (("prefill", result.prefill), ("decode step", result.decode)):
        print(f"  top operators, {label} ({stage.time_s * 1e3:.2f} ms):")
        for t in stage.top(args.top):
            share = 100 * t.time_s / stage.time_s if stage.time_s else 0.0
            print(f"    {t.name:18} {t.time_s * 1e3:9.3f} ms {share:5.1f}%  {t.engine:11} {t.bound}-bound")
    return 0


def _reticle_warning(device, die_area_mm2: float) -> str | None:
    """A designed die (one of the device's ``dies``) over the reticle cannot be made (GPUs are judged
    by their own datasheets: several are multi-die packages)."""
    from ador.cost import RETICLE_LIMIT_MM2
    if device.kind != "ador" or die_area_mm2 <= RETICLE_LIMIT_MM2:
        return None
    return (f"hardware={device.name}: the die is {die_area_mm2:,.0f} mm2, over the {RETICLE_LIMIT_MM2:.0f} mm2 "
            f"reticle: it cannot be made (studies mark such designs infeasible; dies: N cuts the device into N)")


# --- ador area ------------------------------------------------------------------------------

def cmd_area(args: argparse.Namespace) -> int:
    from ador.cost import assess
    from ador.hardware import get_device
    report = assess(get_device(args.hardware))
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{report.name} ({report.kind}, {report.node_nm} nm)")
    est = report.estimated_die_area_mm2
    if report.kind == "gpu":
        gap = f" ({100 * (est / report.die_area_mm2 - 1):+.1f}%)" if est else " (no floorplan for this die)"
        print(f"  die area      {report.die_area_mm2:8.1f} mm2 datasheet; component model "
              f"{est:.1f} mm2{gap}" if est else f"  die area      {report.die_area_mm2:8.1f} mm2 datasheet{gap}")
    else:
        per_die = "" if report.dies == 1 else f" in {report.dies} dies of {report.die_area_mm2 / report.dies:.1f} mm2"
        print(f"  die area      {report.die_area_mm2:8.1f} mm2{per_die} "
              f"({'within' if report.within_reticle else 'EXCEEDS'} the {data['reticle_limit_mm2']:.0f} mm2 reticle)")
    for name, mm2 in sorted(report.components.items(), key=lambda kv: -kv[1]):
        if mm2 > 0:
            print(f"    {name:20} {mm2:8.1f} mm2 {100 * mm2 / (est or 1.0):5.1f}%")   # components: est is set
    tdp = f"  TDP           {report.tdp_w:8.0f} W"
    notes = []
    if report.estimated_tdp_w:
        scaled = f" x {report.tdp_scale:.3f}" if report.tdp_scale != 1.0 else ""
        notes.append(f"full-load component estimate {report.estimated_tdp_w:.0f} W{scaled}, "
                     f"power rule {report.power_rule}")
    if report.datasheet_tdp_w:
        notes.append(f"datasheet {report.datasheet_tdp_w:.0f} W")
    if report.energy_scale != 1.0:
        notes.append(f"counted work's energy x {report.energy_scale:.3f}")
    print(tdp + (f" ({'; '.join(notes)})" if notes else ""))
    for name, w in report.power_components.items():
        print(f"    {name:20} {w:8.1f} W")
    print(f"  cost          {report.cost_usd:8.0f} USD: die {report.die_cost_usd:.0f} "
          f"(yield {100 * report.die_yield:.0f}%, {report.dies} die{'s' if report.dies > 1 else ''}), "
          f"memory {report.memory_cost_usd:.0f} ({report.memory_kind}), package {report.package_cost_usd:.0f}")
    return 0


# --- ador simulate ---------------------------------------------------------------------------

def _slo_targets(args: argparse.Namespace) -> dict[str, float]:
    """``--slo KEY=MS`` (and the deprecated --ttft-slo / --tbt-slo) as KEY -> target; sets what
    the simulator judges each request by (``args.ttft_slo``, ``args.tbt_slo``)."""
    import warnings

    from ador.slo import SloDeprecationWarning, parse_option, simulator_targets
    slo: dict[str, float] = {}
    for text in args.slo:
        key, value = parse_option(text)
        if key in slo:
            raise ConfigError("--slo", text, f"{key} is given twice")
        slo[key] = value
    for flag, key in (("ttft_slo", "ttft_p99_ms"), ("tbt_slo", "tbt_mean_ms")):
        value = getattr(args, flag)
        if value is not None:
            warnings.warn(f"--{flag.replace('_', '-')} is deprecated: write --slo {key}={value:g}",
                          SloDeprecationWarning, stacklevel=2)
            if key in slo:
                raise ConfigError(f"--{flag.replace('_', '-')}", value, f"--slo {key} is given too")
            slo[key] = value
    args.ttft_slo, args.tbt_slo = simulator_targets(slo)
    args.slo_targets = slo
    return slo


# simulate's options that have a default but make no sense beside another option: None in the
# parser, so that a contradiction is told from a default, and filled in here
SIMULATE_DEFAULTS = {"requests": 1000, "input_len": 512, "output_len": 128, "lengths": "fixed", "length_cv": 1.0,
                     "target_attainment": 0.9, "capacity_by": "attainment"}


def _simulate_options(args: argparse.Namespace) -> None:
    """Refuse options another one makes meaningless (they were ignored in silence), then fill in
    the defaults."""
    if args.trace:
        for name in ("requests", "input_len", "output_len", "lengths", "length_cv"):
            if getattr(args, name) is not None:
                raise ConfigError(f"--{name.replace('_', '-')}", getattr(args, name),
                                  "a --trace gives every request and its lengths: leave it out")
    if not args.find_capacity:
        for name in ("target_attainment", "capacity_by"):
            if getattr(args, name) is not None:
                raise ConfigError(f"--{name.replace('_', '-')}", getattr(args, name), "applies to --find-capacity")
    if args.length_cv is not None and args.lengths != "long-tailed":
        raise ConfigError("--length-cv", args.length_cv, "applies to --lengths long-tailed")
    if not args.ci:
        for name in ("max_replications", "max_requests"):
            if getattr(args, name) is not None:
                raise ConfigError(f"--{name.replace('_', '-')}", getattr(args, name), "applies to --ci")
    from ador.serving.precision import MAX_REPLICATIONS, MAX_REQUESTS
    defaults = {**SIMULATE_DEFAULTS, "max_replications": MAX_REPLICATIONS, "max_requests": MAX_REQUESTS}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ador.serving.command import run, text
    from ador.slo import verdicts
    _simulate_options(args)
    slo = _slo_targets(args)
    system, model, precision = _build_system(args)
    data = run(args, system, model, precision)
    _require_finite(data, system.device.name)
    data["slo"] = verdicts(slo, data)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text(data, f"{model.name} ({precision.name}) on {system.devices} x {system.device.name}, "
                         f"tp={system.tp}"))
        for key, v in data["slo"].items():
            if "value_ms" in v:
                print(f"  SLO {key} <= {v['target_ms']:g} ms: {v['value_ms']:.1f} ms, "
                      f"{'met' if v['met'] else 'MISSED'}")
    return 0


# --- ador headline ---------------------------------------------------------------------------

def cmd_headline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ador.headline import run, write_report
    out = Path(args.out)
    if args.update_docs:        # the tracked report of a checkout, never by default
        out = Path(__file__).resolve().parents[1] / "docs" / "results"
        if not out.is_dir():
            raise AdorError(f"update-docs={out}: not a checkout of ador (no docs/results/ beside the package)")
    seeds = tuple(args.seeds) if args.seeds else None
    if seeds and len(set(seeds)) < len(seeds):
        raise ConfigError("--seeds", " ".join(map(str, seeds)), "a seed given twice would count one study twice")
    if not args.report_only:
        from ador.headline.plan import ROLES, SEEDS, STATIC_ROLES
        run(args.trials, args.storage_dir, seeds=seeds or SEEDS, workers=args.workers,
            roles=STATIC_ROLES if args.no_serving else tuple(ROLES), progress=not args.quiet)
    print(write_report(out, args.storage_dir, serving=not args.no_serving, seeds=seeds))
    return 0


# --- parser ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    # choices imported when asked for: building the parser imports neither the cost model nor numpy
    precisions = LazyChoices(module="ador.workload", name="PRECISIONS")
    power_rules = LazyChoices(module="ador.cost.report", name="POWER_RULES")
    parser = Parser(prog="ador", description="Recommend accelerator hardware for LLM serving.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    p = command("models", "list the model zoo")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_models)

    hw = command("hardware", "list or show hardware presets").add_subparsers(dest="hw_cmd", required=True,
                                                                              metavar="COMMAND")
    p = hw.add_parser("list", help="list presets with their peaks")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_hardware_list)
    p = hw.add_parser("show", help="print a preset or design as YAML (a file to start a design from)")
    p.add_argument("name", help="preset name (ador hardware list) or design .yaml")
    p.add_argument("--yaml", action="store_true", help="YAML output (the default)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_hardware_show)

    p = command("evaluate", "latency, throughput and memory of one design on one static batch")
    _system_args(p, precisions)
    p.add_argument("--batch", type=count, default=1, help="requests served together (the static batch)")
    p.add_argument("--input-len", type=count, default=2048, help="prompt tokens per request")
    p.add_argument("--output-len", type=count, default=128, help="output tokens per request")
    p.add_argument("--top", type=count, default=5, help="operators to list per stage")
    p.add_argument("--allow-overflow", action="store_true", help="report even if the model does not fit")
    p.add_argument("--power-rule", choices=power_rules,
                   help="how component power is scaled (the same for GPUs and designs unless datasheet-gpus; "
                        "default: calibrated, ador.cost.report.DEFAULT_POWER_RULE)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = command("area", "die area by component, power and cost of a design")
    p.add_argument("--hardware", required=True, help="preset name or design .yaml")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_area)

    p = command("simulate", "serve a stream of requests: percentile TTFT/TBT, throughput, goodput")
    _system_args(p, precisions)
    p.add_argument("--policy", default=None, choices=LazyChoices(module="ador.serving", name="POLICIES"),
                   help="scheduling policy (default: continuous, or the --stack's)")
    p.add_argument("--stack", help="take a serving stack's scheduler settings: vllm, sglang, tensorrt-llm, "
                                   "with flags as the stack takes them (\"vllm --num-scheduler-steps 10\")")
    p.add_argument("--rate", type=float, help="Poisson arrival rate, requests/s (default: all at t=0, a burst)")
    p.add_argument("--concurrency", type=count, help="a closed loop: this many clients, each sending its next "
                                                      "request when its previous one ends (a benchmark at fixed "
                                                      "concurrency; instead of --rate)")
    p.add_argument("--requests", type=count, help="requests (per replication with --ci; default: 1000)")
    p.add_argument("--trace", help="CSV of arrival_s, prompt_len, output_len (replaces --requests and the "
                                   "lengths; with every arrival_s 0, arrivals follow --rate or --concurrency)")
    p.add_argument("--input-len", type=count, help="prompt length (mean if long-tailed; default: 512)")
    p.add_argument("--output-len", type=count, help="output length (mean if long-tailed; default: 128)")
    p.add_argument("--lengths", choices=["fixed", "long-tailed"], help="request length distribution (default: fixed)")
    p.add_argument("--length-cv", type=float, help="coefficient of variation of long-tailed lengths (default: 1)")
    p.add_argument("--slo", action="append", default=[], metavar="KEY=MS",
                   help=f"a service goal, as in a study's slo: ({', '.join(SLO_KEYS)}); repeat for several")
    p.add_argument("--ttft-slo", type=float, help="deprecated: --slo ttft_p99_ms=MS")
    p.add_argument("--tbt-slo", type=float, help="deprecated: --slo tbt_mean_ms=MS (it bounded each request's mean)")
    p.add_argument("--max-batch", type=count, help="sequences in service per replica (default: 256, vLLM's)")
    p.add_argument("--chunk-tokens", type=count, help="token budget per iteration (chunked; default: 512, Sarathi's)")
    p.add_argument("--max-batched-tokens", type=count, help="prompt tokens per prefill iteration (default: 8192)")
    p.add_argument("--scheduler-steps", type=count, help="decode steps per scheduling decision (vLLM multi-step; "
                                                          "default: 1)")
    p.add_argument("--schedule-ahead", action=argparse.BooleanOptionalAction, default=None,
                   help="form each iteration while the previous one runs (vLLM async scheduling, SGLang's overlap "
                        "scheduler): a request arriving mid-iteration waits one more (default: off, or the --stack's)")
    p.add_argument("--prefix-cached", type=float, default=None, metavar="SHARE",
                   help="share of each prompt already in the server's prefix cache when it arrives (0-1; default 0)")
    p.add_argument("--ci", help="judge the load to this precision (e.g. 5%%): replications until every "
                                "percentile's 95%% repeat interval is within it; steady state only (default: one "
                                "run, every request counted)")
    p.add_argument("--max-replications", type=count,
                   help="with --ci: the most replications to run (default: 12, serving.precision's)")
    p.add_argument("--max-requests", type=count,
                   help="with --ci: the most requests to simulate in all (replications grow within it; "
                        "default: 1,000,000)")
    p.add_argument("--find-capacity", action="store_true", help="bisect for the highest rate that meets the SLOs")
    p.add_argument("--target-attainment", type=share,
                   help="share of requests that must be served in time (--find-capacity; default: 0.9)")
    p.add_argument("--capacity-by", choices=("attainment", "p99"),
                   help="--find-capacity judges a rate by the share of requests served in time (attainment, the "
                        "default) or by the simulated p99 TTFT / p99 TBT against the --slo p99 keys (p99)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of arrivals and lengths")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_simulate)

    p = command("headline", "Llama-3-70B on 8 devices vs A100 and four other GPUs: run the studies (5 seeds each), "
                            "write the report with the fairness ladder, sensitivity and serving view")
    p.add_argument("--trials", type=trials, help="trials per static study and seed (the serving studies get a tenth; "
                                                "default: the study files' budgets)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from the stored studies")
    p.add_argument("--storage-dir", default="studies", help="folder of the two studies' databases")
    p.add_argument("--out", default="headline", help="folder for the report, its plots and the designs")
    p.add_argument("--update-docs", action="store_true",
                   help="write into this checkout's docs/results/ (the tracked report) instead of --out")
    p.add_argument("--no-serving", action="store_true", help="skip the serving studies and the serving view")
    p.add_argument("--seeds", type=seed, nargs="+", help="seeds of every study (default: 1 2 3 7 11)")
    p.add_argument("--workers", type=count, default=2, help="studies run side by side (processes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_headline)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later layers (cost, validation, serving, exploration) add their subcommands here.
_EXTRA_COMMANDS: list[Callable[[Any], None]] = [register_validation, register_study]


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like SIGINT, so that ``finally`` blocks stop worker processes."""
    raise SystemExit(128 + signum)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"ador: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading
    import warnings
    try:
        args = build_parser().parse_args(argv)
    except (UsageError, ConfigError) as err:
        print(f"ador: error: {err}", file=sys.stderr)
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return args.func(args)
    except AdorError as err:
        print(f"ador: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ador: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:        # the machine refused a file: an output path, a full disk
        what = f"file={str(err.filename)!r}: " if err.filename is not None else ""
        print(f"ador: error: {what}{(err.strerror or str(err)).lower()}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
