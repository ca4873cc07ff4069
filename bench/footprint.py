"""Import cost, memory over many calls, and span export throughput to the local Collector.

python bench/footprint.py import            # `import llm_otel` in fresh processes
python bench/footprint.py memory --calls 100000
python bench/footprint.py export --spans 50000   # needs scripts/stack.sh start
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["import", "memory", "export"])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if args.what == "import":
        import_cost(args.runs)
    elif args.what == "memory":
        memory(args.calls)
    else:
        export(args.spans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
