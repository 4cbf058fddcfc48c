"""p99 TBT and goodput against arrival rate, for several systems and policies (data only).

``python -m ador.serving.sweep --out docs`` regenerates docs/serving.png and the table in
docs/serving.md's example.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ador.hardware import System, get_device
from ador.serving.requests import Lengths, poisson
from ador.serving.simulator import SchedulerConfig, simulate
from ador.workload import get_model, get_precision


@dataclass(frozen=True)
class Line:
    label: str
    hardware: str
    tp: int
    devices: int
    policy: str


EXAMPLE = (
    Line("8 x A100, TP8, continuous", "a100-sxm-80gb", 8, 8, "continuous"),
    Line("8 x A100, TP8, chunked", "a100-sxm-80gb", 8, 8, "chunked"),
    Line("8 x A100, 2 x TP4, disaggregated", "a100-sxm-80gb", 4, 8, "disaggregated"),
    Line("8 x ador-example, TP8, continuous", "ador-example", 8, 8, "continuous"),
    Line("8 x ador-example, TP8, chunked", "ador-example", 8, 8, "chunked"),
    Line("8 x ador-example, TP8, concurrent", "ador-example", 8, 8, "concurrent"),
)


def rate_sweep(lines=EXAMPLE, *, model: str = "llama-3-70b", precision: str = "fp16",
               rates=(0.5, 1, 2, 3, 4, 5, 6, 8), requests: int = 2000, input_len: int = 512, output_len: int = 128,
               ttft_slo_ms: float = 2000.0, tbt_slo_ms: float = 50.0, seed: int = 1) -> dict[str, Any]:
    spec, prec = get_model(model), get_precision(precision)
    base = poisson(1.0, requests, Lengths("lognormal", input_len, 1.0), Lengths("lognormal", output_len, 1.0), seed)
    out: dict[str, Any] = {"model": model, "precision": precision, "requests": requests, "input_len": input_len,
                           "output_len": output_len, "ttft_slo_ms": ttft_slo_ms, "tbt_slo_ms": tbt_slo_ms,
                           "rates": list(rates), "lines": []}
    for line in lines:
        system = System.of(get_device(line.hardware), tp=line.tp, devices=line.devices)
        points = []
        for rate in rates:
            reqs = base.at_rate(rate)
            r = simulate(system, spec, prec, reqs, config=SchedulerConfig(policy=line.policy),
                         ttft_slo_ms=ttft_slo_ms, tbt_slo_ms=tbt_slo_ms)
            points.append({"rate": rate, "tbt_p99_ms": r.tbt_ms["p99"], "tbt_p50_ms": r.tbt_ms["p50"],
                           "ttft_p99_ms": r.ttft_ms["p99"], "goodput_rps": r.goodput_rps,
                           "slo_attainment": r.slo_attainment, "output_tok_s": r.output_tok_s})
        out["lines"].append({"label": line.label, "hardware": line.hardware, "tp": line.tp, "devices": line.devices,
                             "policy": line.policy, "points": points})
    return out


def markdown_table(data: dict[str, Any]) -> str:
    rates = data["rates"]
    rows = ["| system and policy | " + " | ".join(f"{r:g}/s" for r in rates) + " |",
            "| --- | " + " | ".join("---:" for _ in rates) + " |"]
    for line in data["lines"]:
        cells = [f"{p['tbt_p99_ms']:.0f} / {p['goodput_rps']:.2f}" for p in line["points"]]
        rows.append(f"| {line['label']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ador.serving.sweep")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    from ador.report.serving import plot_rate_sweep
    data = rate_sweep()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving_sweep.json").write_text(json.dumps(data, indent=1) + "\n")
    plot_rate_sweep(data, args.out / "serving.png")
    print(markdown_table(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
