"""What ``ador simulate`` does with its parsed arguments, and how it prints the result.

Without ``--ci`` one simulation runs and every request counts (as a benchmark client reports). With
``--ci 5%`` the load is judged to that precision: independent replications of ``--requests``
requests each (seeds ``--seed``, ``--seed``+1, ...), warm-up and drain excluded (the steady-state
window), until every reported percentile's 95% repeat interval is within 5% of its value.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any, Literal

from ador.errors import ConfigError, DoesNotFitError
from ador.serving.config import AHEAD_POLICIES, SchedulerConfig
from ador.serving.precision import MAX_REPLICATIONS, judge, parse_ci
from ador.serving.requests import Lengths, RequestArrays, burst, load_trace, poisson
from ador.serving.simulator import ALL, STEADY, max_sustainable_rate, percentile_capacity, simulate
from ador.serving.stacks import check_stack_text, scheduler_for

JUDGED = ("ttft_p50_ms", "ttft_p99_ms", "tbt_p50_ms", "tbt_p99_ms", "tpot_p99_ms", "e2e_p99_ms", "output_tok_s",
          "goodput_rps")


def scheduler_config(args: argparse.Namespace, tp: int, device=None) -> SchedulerConfig:
    """The stack's settings (``--stack``, on ``device`` where its defaults depend on the GPU) or the
    defaults, with the flags given on top."""
    if args.stack is not None:
        check_stack_text(args.stack)
    cfg = scheduler_for(args.stack, tp, device, pp=getattr(args, "pp", 1)).config if args.stack \
        else SchedulerConfig()
    changes: dict[str, Any] = {"policy": args.policy} if args.policy else {}
    if args.policy and args.policy not in AHEAD_POLICIES and getattr(args, "schedule_ahead", None) is None:
        changes["schedule_ahead"] = False        # a stack's engine loop does not carry to this policy
    for name in ("max_batch", "chunk_tokens", "max_batched_tokens", "scheduler_steps", "schedule_ahead"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    cfg = replace(cfg, **changes)
    if changes.get("chunk_tokens") is not None and cfg.policy != "chunked":
        raise ConfigError("--chunk-tokens", changes["chunk_tokens"], f"applies to the chunked policy (this run's "
                                                                     f"is {cfg.policy})")
    cfg.check()
    return cfg


def requests_from(args: argparse.Namespace, seed: int | None = None, rate: float | None = None, *,
                  trace: RequestArrays | None = None) -> RequestArrays:
    """The requests ``args`` describe (``trace``: ``args.trace`` as already loaded)."""
    seed = args.seed if seed is None else seed
    rate = args.rate if rate is None else rate
    if args.trace:
        trace = load_trace(args.trace) if trace is None else trace
        if not trace.lengths_only:             # it times its own arrivals
            if args.rate is not None:
                raise ConfigError("--rate", args.rate, "the trace times its own arrivals (a trace whose arrival_s "
                                                       "are all 0 takes its arrivals from --rate)")
            return trace
        if rate is None:                 # all at once (or a closed loop's clients send them in order)
            return trace
        fill = Lengths("fixed", 1)       # only the arrival times are drawn; the trace gives the lengths
        return trace.arriving(poisson(rate, len(trace), fill, fill, seed=seed).arrival_s)
    kind: Literal["fixed", "lognormal"] = "lognormal" if args.lengths == "long-tailed" else "fixed"
    prompt = Lengths(kind, args.input_len, args.length_cv)
    output = Lengths(kind, args.output_len, args.length_cv)
    if rate is None:
        return burst(args.requests, prompt, output, seed=seed)
    return poisson(rate, args.requests, prompt, output, seed=seed)


def run(args: argparse.Namespace, system, model, precision) -> dict[str, Any]:
    config = scheduler_config(args, system.tp, system.device)
    slo = {"ttft_slo_ms": args.ttft_slo, "tbt_slo_ms": args.tbt_slo}
    cached = float(getattr(args, "prefix_cached", None) or 0.0)
    ci = parse_ci(args.ci)
    clients = getattr(args, "concurrency", None)
    trace = load_trace(args.trace) if args.trace else None      # read once, whatever uses it
    if clients is not None:
        for flag, value in (("--rate", args.rate), ("--find-capacity", args.find_capacity)):
            if value:
                raise ConfigError(flag, value, "a closed loop (--concurrency) sets its own pace: leave it out")
        if trace is not None and not trace.lengths_only:
            raise ConfigError("--trace", args.trace, "a closed loop (--concurrency) sets its own pace: give a trace "
                                                     "of lengths only (every arrival_s 0)")
    if args.find_capacity:
        by_p99 = getattr(args, "capacity_by", "attainment") == "p99"
        targets = dict(getattr(args, "slo_targets", {}))
        if by_p99 and not {"ttft_p99_ms", "tbt_p99_ms"} & set(targets):
            raise ConfigError("--capacity-by", "p99", "needs --slo ttft_p99_ms=MS and/or --slo tbt_p99_ms=MS")
        if args.ttft_slo is None and args.tbt_slo is None and not by_p99:
            raise ConfigError("--find-capacity", True, "needs --slo ttft_p99_ms=MS and/or --slo tbt_mean_ms=MS (what "
                                                       "each request is judged by)")
        base = requests_from(args, rate=1.0, trace=trace)

        def at(r: float):
            return simulate(system, model, precision, base.at_rate(r), config=config, **slo, prefix_cached=cached)
        if by_p99:      # the p99 keys judged on the simulated percentiles
            rate, result = percentile_capacity(at, ttft_p99_ms=targets.get("ttft_p99_ms"),
                                               tbt_p99_ms=targets.get("tbt_p99_ms"))
            if result is None:
                raise DoesNotFitError(f"policy={config.policy}: no arrival rate keeps the p99s within the SLOs")
            return {"max_rate_rps": rate, "capacity_by": "p99", **result.to_dict()}
        rate, result = max_sustainable_rate(at, target=args.target_attainment)
        if result is None:
            raise DoesNotFitError(f"policy={config.policy}: no arrival rate meets the SLOs for "
                                  f"{100 * args.target_attainment:.0f}% of requests")
        return {"max_rate_rps": rate, "capacity_by": "attainment", "target_attainment": args.target_attainment,
                **result.to_dict()}
    if ci is None:
        result = simulate(system, model, precision, requests_from(args, trace=trace), config=config,
                          progress=not args.json,
                          window=ALL, clients=clients, **slo, prefix_cached=cached)
        if not result.n_finished:
            raise DoesNotFitError(f"requests={result.n_requests}: none could be served (each needs more KV cache "
                                  f"than {result.kv_capacity_tokens} tokens, or the queue never drained)")
        return {**result.to_dict(), "clients": clients}
    if args.trace:
        raise ConfigError("--ci", args.ci, "replicates a random load; a trace is one fixed sample")

    def once(seed: int, n: int):
        reqs = requests_from(argparse.Namespace(**{**vars(args), "requests": n}), seed=seed)
        return simulate(system, model, precision, reqs, config=config, window=STEADY, clients=clients, **slo,
                        prefix_cached=cached)
    j = judge(once, JUDGED, ci=ci, requests=args.requests, max_reps=args.max_replications,
              max_requests=args.max_requests, first_seed=args.seed)
    data = j.results[0].to_dict()
    for name in JUDGED:                     # the judged values replace the first replication's
        family, _, stat = name.removesuffix("_ms").partition("_")
        if name.endswith("_ms") and family + "_ms" in data:
            data[family + "_ms"][stat] = j.value(name)
        else:
            data[name] = j.value(name)
    data["precision"] = j.to_dict()
    data["clients"] = clients
    return data


def text(data: dict[str, Any], title: str) -> str:
    r = data
    lines = [f"{title}, policy {r['policy']}: {r['n_finished']} of {r['n_requests']} requests served"
             + (f", {r['refused']} refused" if r['refused'] else "")
             + (f", {r['preemptions']} preemptions" if r['preemptions'] else "")
             + (" (OVERLOADED: the queue grows; percentiles depend on the run's length)" if r["overloaded"] else "")]
    if "max_rate_rps" in r:
        judged = (f">= {100 * r['target_attainment']:.0f}% of requests meet the SLOs" if "target_attainment" in r
                  else "the simulated p99s within the --slo p99 keys")
        lines.append(f"  highest sustainable arrival rate: {r['max_rate_rps']:.3g} req/s ({judged})")
    intervals = r.get("precision", {}).get("intervals", {})
    for name in ("ttft_ms", "tbt_ms", "tpot_ms", "e2e_ms", "queue_ms"):
        q = r[name]
        cells = []
        for stat in ("p50", "p90", "p99"):
            iv = intervals.get(f"{name[:-3]}_{stat}_ms")
            cells.append(f"{stat} {q[stat]:9.1f}" + (f" ±{iv['half_width']:.1f}" if iv else ""))
        lines.append(f"  {name[:-3].upper():6} " + "  ".join(cells) + " ms")
    offered = f"from {r['clients']} clients, one request each at a time" if r.get("clients") else \
        "all at once" if r["arrival_rate"] is None else f"{r['arrival_rate']:.3g}/s"
    lines.append(f"  throughput {r['output_tok_s']:.1f} output tok/s ({r['total_tok_s']:.1f} total); arrivals "
                 f"{offered}; mean in system {r['mean_in_system']:.2f}")
    slo = ", ".join(f"{k} {v:g} ms" for k, v in (("ttft_p99_ms", r["ttft_slo_ms"]), ("tbt_mean_ms", r["tbt_slo_ms"]))
                    if v)
    if slo:
        lines.append(f"  requests served in time (each within {slo}): attainment {100 * r['slo_attainment']:.1f}%, "
                     f"goodput {r['goodput_rps']:.3g} req/s")
    lines.append("  utilisation: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["utilisation"].items())
                 + f", HBM {100 * r['hbm_utilisation']:.0f}%")
    if "precision" in r:
        p = r["precision"]
        lines.append(f"  {p['replications']} replications of {p['requests_per_replication']} requests "
                     f"({p['requests']} simulated in all; warm-up and drain excluded); "
                     f"± is the 95% interval a repeat with fresh seeds falls in; target {100 * p['target']:g}% "
                     + ("met" if p["met"] else f"NOT met within {MAX_REPLICATIONS} replications"))
    return "\n".join(lines)
