"""Real-GPU check: run on a machine with an NVIDIA GPU and nvidia-ml-py installed.

    python scripts/gpu_check.py [--collections 50] [--load 20] [--json figures.json]

Reads every GPU metric through llm_otel.gpu with the real NVML, checks that the readings are
sane (ratios in [0, 1], memory used <= limit, power > 0, energy monotonic, identity present),
prints them, and measures the cost of one collection per device in microseconds.

With --load SECONDS (needs PyTorch with CUDA) it then runs a matrix-multiply load on GPU 0 in a
child process that also holds 4 GiB, samples every metric four times a second, and checks that
the readings follow the load: utilization rises, power rises, memory used grows by at least what
the child holds, the child shows up in the per-process memory metric with its pid, and the
energy counter's increase matches power integrated over the same time.

Exits 1 when a check fails, 2 when there is no GPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llm_otel.gpu import GPUMetrics


def collect(reader: InMemoryMetricReader) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    out: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    out[metric.name].append((float(p.value), dict(p.attributes or {})))  # type: ignore[union-attr]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=50)
    parser.add_argument("--load", type=float, default=0.0, help="seconds of GPU load (torch)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    reader = InMemoryMetricReader()
    gpus = GPUMetrics(MeterProvider(metric_readers=[reader]))
    devices = gpus.devices
    if not devices:
        print("no GPU found through NVML")
        return 2
    print(f"{len(devices)} device(s):")
    for d in devices:
        print(f"  {d.attributes}")
    first = collect(reader)
    time.sleep(1.0)
    second = collect(reader)
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            failures.append(what)

    print("readings:")
    for name in sorted(second):
        for value, attrs in second[name]:
            extra = {k: v for k, v in attrs.items() if not k.startswith(("hw.name", "hw.vendor",
                     "hw.model", "hw.driver", "llm_otel.gpu.index"))}  # fmt: skip
            print(f"  {name} = {value:g}  {extra}")
    for value, attrs in second.get("hw.gpu.utilization", []):
        check(
            0.0 <= value <= 1.0, f"utilization {attrs['hw.gpu.task']} in [0,1] ({attrs['hw.id']})"
        )
    usage = {a["hw.id"]: v for v, a in second.get("hw.gpu.memory.usage", [])}
    for value, attrs in second.get("hw.gpu.memory.limit", []):
        check(
            0 <= usage.get(attrs["hw.id"], -1) <= value, f"memory used <= limit ({attrs['hw.id']})"
        )
    for value, attrs in second.get("hw.power", []):
        check(value > 0, f"power > 0 W ({attrs['hw.id']}: {value:.1f} W)")
    before = {a["hw.id"]: v for v, a in first.get("hw.energy", [])}
    for value, attrs in second.get("hw.energy", []):
        check(value >= before.get(attrs["hw.id"], value), f"energy monotonic ({attrs['hw.id']})")
    check(bool(second.get("hw.status")), "hw.status reported")

    timings = []
    for _ in range(args.collections):
        start = time.perf_counter()
        collect(reader)
        timings.append((time.perf_counter() - start) * 1e6 / len(devices))
    print(
        f"cost per collection per device: median {statistics.median(timings):.0f} µs, "
        f"min {min(timings):.0f} µs, max {max(timings):.0f} µs over {args.collections} collections"
    )
    figures: dict[str, Any] = {
        "devices": [dict(d.attributes) for d in devices],
        "collection_us_median": statistics.median(timings),
        "collection_us_min": min(timings),
        "idle": dict(second),
    }
    if args.load > 0:
        figures["load"] = under_load(reader, args.load, check)
    gpus.shutdown()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=str)
    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


_LOAD = """
import sys, time, torch
x = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
held = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")
for _ in range(3):
    x @ x
torch.cuda.synchronize()
print("ready", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    for _ in range(20):
        y = x @ x
    torch.cuda.synchronize()
"""


def _gpu0(points: list[tuple[float, dict[str, Any]]], **match: str) -> float | None:
    for value, attrs in points:
        if attrs.get("llm_otel.gpu.index", 0) != 0:
            continue
        if all(attrs.get(k) == v for k, v in match.items()):
            return value
    return None


def under_load(reader: InMemoryMetricReader, seconds: float, check: Any) -> dict[str, Any]:
    idle = collect(reader)
    idle_power = _gpu0(idle["hw.power"]) or 0.0
    idle_used = _gpu0(idle["hw.gpu.memory.usage"]) or 0.0
    child = subprocess.Popen(
        [sys.executable, "-c", _LOAD, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        check(False, "load process started")
        return {}
    samples: list[dict[str, Any]] = []
    while child.poll() is None:
        t = time.monotonic()
        m = collect(reader)
        pids = {int(a.get("process.pid", -1)): v for v, a in m.get(
            "llm_otel.gpu.process.memory.usage", [])}  # fmt: skip
        samples.append({
            "t": t,
            "util": _gpu0(m["hw.gpu.utilization"], **{"hw.gpu.task": "general"}),
            "power": _gpu0(m["hw.power"]),
            "energy": _gpu0(m["hw.energy"]),
            "used": _gpu0(m["hw.gpu.memory.usage"]),
            "child": pids.get(child.pid),
            "pids": sorted(pids),
        })  # fmt: skip
        time.sleep(0.25)
    steady = samples[len(samples) // 4 : -1] or samples
    util = statistics.median(s["util"] for s in steady if s["util"] is not None)
    power = statistics.median(s["power"] for s in steady if s["power"] is not None)
    used = max(s["used"] or 0 for s in steady)
    integral = sum(
        (b["t"] - a["t"]) * (a["power"] + b["power"]) / 2 for a, b in itertools.pairwise(steady)
    )
    delta = steady[-1]["energy"] - steady[0]["energy"]
    child_mem = max((s["child"] or 0 for s in steady), default=0)
    print(f"under load ({len(samples)} samples over {seconds:g} s, GPU 0):")
    print(f"  utilization median {util:.2f}; power {idle_power:.0f} W idle, {power:.0f} W loaded")
    print(f"  memory used {idle_used / 2**30:.2f} GiB idle, {used / 2**30:.2f} GiB loaded")
    print(f"  energy counter +{delta:.0f} J vs power integrated {integral:.0f} J")
    print(f"  load pid {child.pid}: {child_mem / 2**30:.2f} GiB; pids seen {steady[-1]['pids']}")
    check(util >= 0.5, f"utilization under load >= 0.5 ({util:.2f})")
    check(power > idle_power * 1.2, f"power rises under load ({idle_power:.0f} -> {power:.0f} W)")
    check(used - idle_used >= 4 << 30, "memory used grows by >= the 4 GiB the load holds")
    check(child_mem >= 4 << 30, f"load process {child.pid} in per-process memory with >= 4 GiB")
    check(
        integral > 0 and abs(delta - integral) / integral < 0.25,
        f"energy increase within 25% of power x time ({delta:.0f} J vs {integral:.0f} J)",
    )
    return {
        "samples": samples,
        "utilization_median": util,
        "power_idle_w": idle_power,
        "power_loaded_w": power,
        "memory_idle": idle_used,
        "memory_loaded": used,
        "energy_delta_j": delta,
        "power_integral_j": integral,
        "child_pid": child.pid,
        "child_memory": child_mem,
    }


if __name__ == "__main__":
    sys.exit(main())
