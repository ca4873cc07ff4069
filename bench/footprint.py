"""Import cost, memory over many calls, and span export throughput to the local Collector.

python bench/footprint.py import            # `import llm_otel` in fresh processes
python bench/footprint.py memory --calls 100000
python bench/footprint.py export --spans 50000   # needs scripts/stack.sh start
python bench/footprint.py down --calls 3000     # call latency: Collector up, down, hanging
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def import_cost(runs: int) -> None:
    def measure(setup: str, stmt: str) -> float:
        code = (
            f"{setup}\nimport time\nt = time.perf_counter()\n{stmt}\nprint(time.perf_counter() - t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return float(out.stdout) * 1000

    alone = [measure("", "import llm_otel") for _ in range(runs)]
    over_sdk = [
        measure(
            "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk._logs",
            "import llm_otel",
        )
        for _ in range(runs)
    ]
    print(
        f"import llm_otel in a fresh process: median {statistics.median(alone):.1f} ms "
        f"(min {min(alone):.1f}, max {max(alone):.1f}, {runs} runs)"
    )
    print(f"  of which beyond the OTel SDK itself: median {statistics.median(over_sdk):.1f} ms")
    leaked = subprocess.run(
        [sys.executable, "-c", "import sys, llm_otel; print('openai' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"  imports openai: {leaked}")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def memory(calls: int) -> None:
    import worker

    worker.content_env("llm_otel", False)
    tp, mp, lp = worker.providers()
    worker.instrument("llm_otel", False, tp, mp, lp)
    client, _ = worker.make_clients()
    step = max(calls // 10, 1)
    for i in range(1, calls + 1):
        client.chat.completions.create(model="gpt-4o-mini", messages=worker.MESSAGES)
        if i % step == 0:
            gc.collect()
            print(f"  after {i:>7} calls: RSS {_rss_mb():.1f} MiB", flush=True)


def export(spans: int) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    def accepted() -> float:
        text = urllib.request.urlopen("http://127.0.0.1:8888/metrics", timeout=5).read().decode()
        found = re.findall(
            r"^otelcol_receiver_accepted_spans(?:_total)?\{[^}]*\} ([0-9.e+]+)$", text, re.M
        )
        return sum(float(v) for v in found)

    before = accepted()
    tp = TracerProvider()
    tp.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint="http://127.0.0.1:4318/v1/traces"),
            max_queue_size=spans,
            max_export_batch_size=512,
            schedule_delay_millis=50,
        )
    )
    tracer = tp.get_tracer("bench")
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 20,
    }
    start = time.perf_counter()
    for _ in range(spans):
        tracer.start_span("chat gpt-4o-mini", attributes=attrs).end()
    tp.force_flush(120_000)
    elapsed = time.perf_counter() - start
    time.sleep(2)
    received = accepted() - before
    print(
        f"exported {spans} GenAI spans over OTLP/HTTP to the local Collector in {elapsed:.2f} s: "
        f"{spans / elapsed:,.0f} spans/s; the Collector accepted {received:,.0f}"
    )
    tp.shutdown()


_DOWN_CHILD = """
import statistics, sys, time
sys.path.insert(0, {bench!r})
import worker
import llm_otel
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
mode, calls = sys.argv[1], int(sys.argv[2])
if mode != "none":
    endpoints = {{"up": "http://127.0.0.1:4318", "down": "http://127.0.0.1:9", "hang": {hang!r}}}
    llm_otel.configure(endpoint=endpoints[mode],
                       metric_reader=InMemoryMetricReader(), gpu=False)
client, _ = worker.make_clients()
times = []
for _ in range(calls):
    t = time.perf_counter()
    client.chat.completions.create(model="gpt-4o-mini", messages=worker.MESSAGES)
    times.append(time.perf_counter() - t)
times.sort()
print(statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6, max(times) * 1e6)
sys.stdout.flush()
import os
os._exit(0)  # not waiting for the exporter to give up at shutdown: that is not the app's latency
"""


def down(calls: int) -> None:
    """Call latency with no telemetry, with the Collector down, and with one that hangs."""
    import os
    import socket

    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(128)  # accepts connections, never answers: every export waits for its timeout
    hang = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    child = _DOWN_CHILD.format(bench=str(Path(__file__).resolve().parent), hang=hang)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_BSP_MAX_QUEUE_SIZE="2048", OTEL_EXPORTER_OTLP_TIMEOUT="10")
    labels = {
        "none": "not instrumented",
        "up": "instrumented, Collector up (scripts/stack.sh start)",
        "down": "instrumented, Collector down (connection refused)",
        "hang": "instrumented, Collector hanging (accepts, never answers)",
    }
    try:
        urllib.request.urlopen("http://127.0.0.1:13133/", timeout=2)
    except OSError:
        del labels["up"]  # no local Collector running
    for mode, label in labels.items():
        out = subprocess.run(
            [sys.executable, "-c", child, mode, str(calls)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=600,
        ).stdout.split()
        median, p99, worst = (float(v) for v in out[-3:])
        print(f"{label:<58} median {median:7.0f} µs  p99 {p99:7.0f} µs  max {worst:8.0f} µs")
    hanging.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["import", "memory", "export", "down"])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if args.what == "import":
        import_cost(args.runs)
    elif args.what == "memory":
        memory(args.calls)
    elif args.what == "down":
        down(args.calls)
    else:
        export(args.spans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
