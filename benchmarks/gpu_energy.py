"""Measure the energy a real GPU spends on Llama-shaped passes, GEMMs and memory streams, as JSON.

Run on a machine with a CUDA GPU, PyTorch and NVML's Python binding (``nvidia-ml-py``; none of them a
dependency of ador, imported here only):

    python benchmarks/gpu_energy.py --hardware h200-sxm-141gb --out energy-h200.json

Every workload is captured once in a CUDA graph (``gpu_measure.capture_graph``) and replayed back to
back for ``--seconds`` after ``--warm-seconds`` of the same replays (so clocks and temperature have
settled); the board's energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the
driver loaded) is read before and after, with the GPU idle-synchronised at both ends, and the
replays are timed with CUDA events. A thread samples the board's power and SM clock every 20 ms
meanwhile (a cross-check of the counter, and of throttling). The board is idle for ``--seconds``
before the first and after the last workload, and its power then is recorded.

The workloads (what ``ador.validation.energy`` prices with the model):

- ``gemm``: one bf16 ``torch.matmul`` of 8192 x 8192 x 8192 and one FP8 ``torch._scaled_mm`` of the
  same shape (operands already e4m3, bf16 output): matrix work, counted in FLOPs.
- ``stream``: a 2 GiB bf16 device-to-device copy (2 GiB read, 2 GiB written) and a matrix-vector
  product of one token with a 2 GiB bf16 weight (the weight read once): HBM traffic, counted in bytes.
- ``decode`` / ``prefill``: ``gpu_measure.Net``'s llama-3-8b (bf16, TP 1, CUDA graphs, cuBLAS, SDPA,
  unfused) at the decode steps and prompt passes of ``DECODE_POINTS`` / ``PREFILL_POINTS``, and
  llama-3-70b's TP-8 shard (``SHARD_LAYERS`` distinct layers, no all-reduce) at the headline's batch.

Each replay's energy is the counter's difference over the replays; the JSON keeps the counter
readings, the wall and event times, the sampled power and clocks, so any figure can be recomputed.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

# run as a script on a bare GPU machine: the repository root goes on the path for the shared parts
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_measure import LLAMA3_8B, LLAMA3_70B, Net, _environment, capture_graph  # noqa: E402

GEMM_MNK = (8192, 8192, 8192)
STREAM_BYTES = 2 * 2**30            # each stream workload's buffer: far beyond any GPU's L2
Points = tuple[tuple[int, int], ...]
DECODE_POINTS: Points = ((1, 1024), (16, 1024), (64, 1024), (128, 1024), (256, 1024))     # (batch, KV tokens)
PREFILL_POINTS: Points = ((1, 2048), (4, 2048))                                             # (batch, prompt)
# the headline's operating point (batch 128, 2,048-token prompts, 256 outputs; KV mid-generation)
SHARD_TP = 8
SHARD_LAYERS = 4
SHARD_DECODE = (128, 2048 + 128)
SHARD_PREFILL = (4, 2048)
SAMPLE_S = 0.02


class PowerSampler:
    """Board power (W) and SM clock (MHz) every ``SAMPLE_S`` on a thread, between start() and stop()."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml, self.handle = nvml, handle
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.instant = self._instant_power() is not None

    def _instant_power(self) -> float | None:
        """Instantaneous board power where the driver offers it (NVML_FI_DEV_POWER_INSTANT), else None."""
        try:
            field = self.nvml.nvmlDeviceGetFieldValues(self.handle, [self.nvml.NVML_FI_DEV_POWER_INSTANT])[0]
            if field.nvmlReturn != 0:
                return None
            return field.value.uiVal / 1e3
        except Exception:        # an older binding or driver: fall back to the averaged reading
            return None

    def _power_w(self) -> float:
        if self.instant:
            value = self._instant_power()
            if value is not None:
                return value
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3

    def _loop(self) -> None:
        while not self._stop.is_set():
            clock = self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_SM)
            self.samples.append((time.perf_counter(), self._power_w(), clock))
            self._stop.wait(SAMPLE_S)

    def start(self) -> None:
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        times = [t for t, _, _ in self.samples]
        powers = [p for _, p, _ in self.samples]
        clocks = [c for _, _, c in self.samples]
        # the samples' trapezoid integral: the energy where the board has no energy counter
        integral = sum((t1 - t0) * (p0 + p1) / 2 for t0, t1, p0, p1 in zip(times, times[1:], powers, powers[1:]))
        return {"samples": len(powers), "power_mean_w": statistics.fmean(powers) if powers else None,
                "power_max_w": max(powers) if powers else None, "sampled_energy_j": integral,
                "sampled_span_s": times[-1] - times[0] if times else 0.0,
                "sm_clock_mean_mhz": statistics.fmean(clocks) if clocks else None,
                "sm_clock_min_mhz": min(clocks) if clocks else None}


def energy_mj(nvml: Any, handle: Any) -> int | None:
    """The board's energy counter (mJ since the driver loaded); None where the board has none."""
    try:
        return int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except nvml.NVMLError:
        return None


def _energy_between(counter: list[int | None], sampled: dict[str, Any], wall_s: float) -> tuple[float, str]:
    """Joules over a window: the counter's difference, else the sampled power over the wall time."""
    if counter[0] is not None and counter[1] is not None:
        return (counter[1] - counter[0]) / 1e3, "counter"
    span = sampled["sampled_span_s"]
    return (sampled["sampled_energy_j"] * wall_s / span if span > 0 else float("nan")), "samples"


def measure(torch: Any, nvml: Any, handle: Any, sampler: PowerSampler, graph: Any, *, seconds: float,
            warm_seconds: float) -> dict[str, Any]:
    """Replay ``graph`` back to back for about ``seconds`` after ``warm_seconds`` of replays; the
    board's energy over the timed replays, their count and times."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        graph.replay()
    end.record()
    end.synchronize()
    per_replay_ms = start.elapsed_time(end) / 3
    warm = max(1, math.ceil(warm_seconds * 1e3 / per_replay_ms))
    replays = max(3, math.ceil(seconds * 1e3 / per_replay_ms))
    for _ in range(warm):
        graph.replay()
    torch.cuda.synchronize()
    sampler.start()
    energy0_mj = energy_mj(nvml, handle)
    wall0 = time.perf_counter()
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    wall1 = time.perf_counter()
    energy1_mj = energy_mj(nvml, handle)
    sampled = sampler.stop()
    energy_j, energy_from = _energy_between([energy0_mj, energy1_mj], sampled, wall1 - wall0)
    event_ms = start.elapsed_time(end)
    return {"replays": replays, "warm_replays": warm, "event_ms": event_ms, "wall_s": wall1 - wall0,
            "ms_per_replay": event_ms / replays, "energy_counter_mj": [energy0_mj, energy1_mj],
            "energy_from": energy_from, "energy_j": energy_j, "j_per_replay": energy_j / replays,
            "power_w": energy_j / (wall1 - wall0), **sampled}


def idle(nvml: Any, handle: Any, sampler: PowerSampler, seconds: float) -> dict[str, Any]:
    """The board's power with nothing running for ``seconds``."""
    sampler.start()
    energy0_mj = energy_mj(nvml, handle)
    wall0 = time.perf_counter()
    time.sleep(seconds)
    wall1 = time.perf_counter()
    energy1_mj = energy_mj(nvml, handle)
    sampled = sampler.stop()
    energy_j, energy_from = _energy_between([energy0_mj, energy1_mj], sampled, wall1 - wall0)
    return {"wall_s": wall1 - wall0, "energy_counter_mj": [energy0_mj, energy1_mj], "energy_from": energy_from,
            "energy_j": energy_j, "power_w": energy_j / (wall1 - wall0), **sampled}


def gemm_pass(torch: Any, mnk: tuple[int, int, int], dtype_name: str) -> Callable[[], Any]:
    """One m x n x k product of random operands: bf16 ``matmul``, or FP8 ``_scaled_mm`` (e4m3 operands,
    unit scales, bf16 output)."""
    m, n, k = mnk
    a = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, k, dtype=torch.bfloat16, device="cuda")
    if dtype_name == "bf16":
        return lambda: a @ b.T
    a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
    one = torch.ones((), dtype=torch.float32, device="cuda")
    return lambda: torch._scaled_mm(a8, b8.T, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


def stream_pass(torch: Any, nbytes: int, k_in: int, kind: str) -> Callable[[], Any]:
    """HBM traffic: a copy of ``nbytes`` of bf16 (read and written), or one token times a bf16 weight of
    ``nbytes`` with ``k_in`` inputs (the weight read once)."""
    src = torch.randn(nbytes // 2, dtype=torch.bfloat16, device="cuda")
    if kind == "copy":
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
    weight = src.view(-1, k_in)
    x = torch.randn(1, k_in, dtype=torch.bfloat16, device="cuda")
    return lambda: x @ weight.T


def main(argv: list[str] | None = None) -> int:
    import pynvml as nvml
    import torch

    parser = argparse.ArgumentParser(prog="gpu_energy")
    parser.add_argument("--hardware", required=True, help="ador preset name of the GPU measured")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed replays per workload (s)")
    parser.add_argument("--warm-seconds", type=float, default=1.0, help="untimed replays before them (s)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and short runs, to check the script")
    args = parser.parse_args(argv)

    device, dtype = torch.device("cuda"), torch.bfloat16
    torch.manual_seed(0)
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    env = _environment(torch, device)
    env["power_limit_w"] = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1e3
    sampler = PowerSampler(nvml, handle)
    env["power_sampling"] = "instantaneous (NVML_FI_DEV_POWER_INSTANT)" if sampler.instant \
        else "nvmlDeviceGetPowerUsage (driver-averaged)"
    print(json.dumps(env), flush=True)

    model, shard_model = LLAMA3_8B, LLAMA3_70B
    mnk, stream_bytes = GEMM_MNK, STREAM_BYTES
    decode_points, prefill_points = DECODE_POINTS, PREFILL_POINTS
    shard_decode, shard_prefill = SHARD_DECODE, SHARD_PREFILL
    if args.quick:
        model = replace(LLAMA3_8B, n_layers=2, d_model=256, n_heads=4, n_kv_heads=2, head_dim=64, d_ff=512,
                        vocab_size=1000)
        shard_model = replace(LLAMA3_70B, n_layers=1, d_model=512, n_heads=16, n_kv_heads=8, head_dim=64,
                              d_ff=1024, vocab_size=1000)
        mnk, stream_bytes = (512, 512, 512), 2**24
        decode_points, prefill_points = ((1, 16), (4, 32)), ((1, 16),)
        shard_decode, shard_prefill = (4, 32), (1, 16)
    timing = dict(seconds=args.seconds, warm_seconds=args.warm_seconds)
    results: list[dict[str, Any]] = []

    def run(entry: dict[str, Any], make: Callable[[], Callable[[], Any]]) -> None:
        graph = capture_graph(torch, make())
        entry.update(measure(torch, nvml, handle, sampler, graph, **timing))
        del graph
        results.append(entry)
        print(f"{entry['workload']} {entry.get('name', '')}: {entry['ms_per_replay']:.4f} ms, "
              f"{entry['j_per_replay']:.4f} J per replay, {entry['power_w']:.0f} W "
              f"({entry['energy_from']}; sampled {entry['power_mean_w']} W, SM {entry['sm_clock_mean_mhz']} MHz, "
              f"min {entry['sm_clock_min_mhz']} MHz)", flush=True)

    idle_before = idle(nvml, handle, sampler, args.seconds)
    print(f"idle: {idle_before['power_w']:.1f} W", flush=True)

    m, n, k = mnk
    for name in ("bf16", "fp8"):
        run(dict(workload="gemm", name=name, m=m, n=n, k=k, dtype=name, flops=2 * m * n * k),
            partial(gemm_pass, torch, mnk, name))
    k_in = 16384 if not args.quick else 256
    for name in ("copy", "gemv"):
        rows = stream_bytes // 2 // k_in
        run(dict(workload="stream", name=name, bytes_read=stream_bytes,
                 bytes_written=stream_bytes if name == "copy" else 2 * rows, rows=rows, cols=k_in),
            partial(stream_pass, torch, stream_bytes, k_in, name))
    torch.cuda.empty_cache()

    net = Net(torch, model, tp=1, n_layers=model.n_layers, dtype=dtype, device=device, with_head=True)
    net.allocate_cache(max(bt * kv for bt, kv in decode_points + prefill_points))
    for batch, kv in decode_points:
        run(dict(workload="decode", model=model.name, tp=1, batch=batch, kv_len=kv, name=f"b{batch} kv{kv}"),
            partial(net.decode_pass, batch, kv))
    for batch, prompt in prefill_points:
        run(dict(workload="prefill", model=model.name, tp=1, batch=batch, prompt=prompt,
                 name=f"b{batch} s{prompt}"), partial(net.prefill_pass, batch, prompt))
    del net
    torch.cuda.empty_cache()

    stack = Net(torch, shard_model, tp=SHARD_TP, n_layers=SHARD_LAYERS if not args.quick else 1, dtype=dtype,
                device=device, with_head=False)
    stack.allocate_cache(max(shard_decode[0] * shard_decode[1], shard_prefill[0] * shard_prefill[1]))
    layers = len(stack.layers)
    run(dict(workload="decode_shard", model=shard_model.name, tp=SHARD_TP, layers=layers, batch=shard_decode[0],
             kv_len=shard_decode[1], name=f"b{shard_decode[0]} kv{shard_decode[1]}"),
        partial(stack.decode_pass, *shard_decode))
    run(dict(workload="prefill_shard", model=shard_model.name, tp=SHARD_TP, layers=layers, batch=shard_prefill[0],
             prompt=shard_prefill[1], name=f"b{shard_prefill[0]} s{shard_prefill[1]}"),
        partial(stack.prefill_pass, *shard_prefill))
    del stack
    torch.cuda.empty_cache()

    torch.cuda.synchronize()
    idle_after = idle(nvml, handle, sampler, args.seconds)
    print(f"idle after: {idle_after['power_w']:.1f} W", flush=True)
    nvml.nvmlShutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "hardware": args.hardware, "timing": timing,
                                    "idle_before": idle_before, "idle_after": idle_after,
                                    "workloads": results}, indent=1))
    print(f"wrote {len(results)} workloads to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
