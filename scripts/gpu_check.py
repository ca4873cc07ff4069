"""Real-GPU check: run on a machine with an NVIDIA GPU and nvidia-ml-py installed.

    python scripts/gpu_check.py [--collections 50]

Reads every GPU metric through llm_otel.gpu with the real NVML, checks that the readings are
sane (ratios in [0, 1], memory used <= limit, power > 0, energy monotonic, identity present),
prints them, and measures the cost of one collection per device in microseconds. Exits 1 when a
check fails, 2 when there is no GPU.
"""

from __future__ import annotations

import argparse
import statistics
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
    gpus.shutdown()
    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
