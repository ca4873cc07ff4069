"""The demo: an LLM service with no telemetry code, watched through Collector, Jaeger, Prometheus.

1. starts the stack (scripts/stack.sh start: our Collector, Jaeger v2, Prometheus, Alertmanager
   and the alert relay on loopback), with every alert's ``for:`` shortened to 15 s so an alert
   fires while you watch (LLM_OTEL_ALERT_FOR; the rules are otherwise as shipped);
2. starts the OpenAI-compatible test server and examples/fastapi_service.py under
   ``opentelemetry-instrument`` (GPU metrics from a simulated NVML, as this machine has no GPU);
3. sends traffic: plain and streamed questions, and a few that the LLM fails;
4. makes one model fail until LLMHighErrorRate pages, and waits for the notification to reach
   the alert relay (the stack's default webhook receiver);
5. prints where to look, with a Prometheus query and its answer, and the alert.

The stack keeps running afterwards so you can look; ``scripts/stack.sh stop`` ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.openai_server import OpenAITestServer  # noqa: E402

SERVICE = "support-bot-demo"
PORT = 8765


def _json(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _json(url)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _query(expr: str) -> list[Any]:
    answer = _json("http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    return list(answer["data"]["result"])


def _notified(relay_log: Path, since: float) -> str | None:
    """The LLMHighErrorRate page for the demo service that reached the relay after ``since``."""
    if not relay_log.exists():
        return None
    for line in reversed(relay_log.read_text().splitlines()):
        record = json.loads(line)
        labels = record["notification"].get("commonLabels", {})
        received = datetime.fromisoformat(record["received_at"]).timestamp()
        if received < since:
            return None
        if labels.get("service_name") == SERVICE and labels.get("alertname") == "LLMHighErrorRate":
            runbook = record["notification"]["commonAnnotations"].get("runbook_url", "")
            return f"{record['received_at']} {record['title']}\n    runbook: {runbook}"
    return None


def _fail(n: int) -> None:
    for _ in range(n):
        with contextlib.suppress(urllib.error.HTTPError):  # the service answers 502
            _json(f"http://127.0.0.1:{PORT}/ask", {"question": "fail", "model": "error-500"})


def _trigger_alert(relay_log: Path) -> str | None:
    """Fail one model until LLMHighErrorRate pages; wait for the relay to receive it."""
    firing = [a for a in _json("http://127.0.0.1:9093/api/v2/alerts")
              if a["labels"].get("alertname") == "LLMHighErrorRate"
              and a["labels"].get("service_name") == SERVICE
              and a["labels"].get("severity") == "page"]  # fmt: skip
    if firing:  # a recent run's page: Alertmanager notified it then, and repeats it hourly
        return (f"LLMHighErrorRate (page) already firing since {firing[0]['startsAt']}, "
                f"notified then\n    (see the relay's log)")  # fmt: skip
    since = time.time()
    print("\nmaking model error-500 fail until LLMHighErrorRate pages (about 40 s)")
    _fail(1)
    time.sleep(8)  # its first sample in Prometheus: rate() needs two
    start = time.monotonic()
    _fail(60)
    while time.monotonic() - start < 180:
        found = _notified(relay_log, since)
        if found:
            print(f"  notified after {time.monotonic() - start:.0f} s")
            return found
        time.sleep(1)
    print("  no notification within 3 minutes: see http://127.0.0.1:9090/alerts")
    return None


def _graph(expr: str) -> str:
    """Prometheus' UI with the query filled in."""
    query = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "1h"})
    return f"http://127.0.0.1:9090/graph?{query}"


def _where_to_look(alert: str | None, relay_log: Path, paths: str) -> None:
    tokens = 'sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum{service_name="%s"})'
    expr = tokens % SERVICE
    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"
    # Over all time (cumulative buckets): a rate() window needs two scrapes of each series.
    p95 = f'histogram_quantile(0.95, sum by (le) ({ttfc}{{service_name="{SERVICE}"}}))'
    print("\nWhere to look")
    llm_otel = [sys.executable, "-m", "llm_otel", "traces"]
    listing = subprocess.run([*llm_otel, "--service", SERVICE, "--limit", "5", "--json"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    traces = json.loads(listing.stdout or "{}").get("traces", [])
    print(f"  Traces:        llm-otel traces --service {SERVICE}      (Jaeger's query API)")
    if traces:
        slowest = max(traces, key=lambda t: t["slowest_call_ms"] or 0)
        print(f"                 llm-otel traces {slowest['trace_id']}   (its slowest LLM call)")
        subprocess.run([*llm_otel, "--service", SERVICE, "--limit", "5"], check=False)
    print("                 (this Jaeger build has no web UI: docs/jaeger.md)")
    print("  Prometheus:    http://127.0.0.1:9090/graph, alerts: http://127.0.0.1:9090/alerts")
    print("  Alertmanager:  http://127.0.0.1:9093 (UI), http://127.0.0.1:9093/api/v2/alerts")
    amtool = paths.split("AMTOOL_BIN=")[1].splitlines()[0]
    print(f"                 {amtool} alert query --alertmanager.url=http://127.0.0.1:9093")
    print(f"  Notifications: {relay_log} (the alert relay's log)")
    if alert:
        print(f"\n  Alert delivered: {alert}")
    print(f"\n  {expr}\n  {_graph(expr)}")
    for row in _query(expr):
        print(f"    {row['metric']['gen_ai_token_type']:>6}: {row['value'][1]} tokens")
    print(f"\n  {p95}\n  {_graph(p95)}")
    for row in _query(p95):
        print(f"    p95 time to first chunk: {float(row['value'][1]):.3f} s")
    scores = ("sum by (gen_ai_evaluation_name) (llm_otel_evaluation_score_sum"
              f'{{service_name="{SERVICE}"}}) / sum by (gen_ai_evaluation_name) '
              f'(llm_otel_evaluation_score_count{{service_name="{SERVICE}"}})')  # fmt: skip
    print(f"\n  {scores}\n  {_graph(scores)}   (online evaluation: docs/quality.md)")
    for row in _query(scores):
        name = row["metric"].get("gen_ai_evaluation_name", "?")
        print(f"    mean {name} score: {float(row['value'][1]):.2f}")
    gpu = _query(f'hw_gpu_utilization_ratio{{service_name="{SERVICE}", hw_gpu_task="general"}}')
    print(f"\n  hw_gpu_utilization_ratio: {len(gpu)} simulated GPU series")


def main() -> int:
    stack = str(ROOT / "scripts" / "stack.sh")
    holds = {**os.environ, "LLM_OTEL_ALERT_FOR": os.environ.get("LLM_OTEL_ALERT_FOR", "15s")}
    subprocess.run([stack, "start"], check=True, env=holds)
    paths = subprocess.run([stack, "paths"], check=True, capture_output=True, text=True).stdout
    relay_log = Path(dict(line.split("=", 1) for line in paths.splitlines())["RUN_DIR"])
    relay_log = relay_log / "alerts.jsonl"
    llm = OpenAITestServer().start()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="demo-key",
        OTEL_SERVICE_NAME=SERVICE,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
        OTEL_METRIC_EXPORT_INTERVAL="2000",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
        LLM_OTEL_EVALUATORS="default",  # the built-in quality and safety checks, every call
        LLM_OTEL_EVALUATION_SAMPLE_RATE="1",
        PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "fakes" / "fakenvml"), str(ROOT)]),
    )
    service = subprocess.Popen(
        [shutil.which("opentelemetry-instrument", path=str(bin_dir)) or "opentelemetry-instrument",
         shutil.which("uvicorn", path=str(bin_dir)) or "uvicorn", "examples.fastapi_service:app",
         "--host", "127.0.0.1", "--port", str(PORT), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{PORT}/healthz", 30)
        print(f"\nservice {SERVICE} on http://127.0.0.1:{PORT}: sending traffic")
        outcomes = {"ok": 0, "failed": 0}
        for i in range(30):
            model = "error-429" if i % 10 == 9 else ("slow-first" if i % 5 == 0 else "gpt-4o-mini")
            body = {"question": f"question {i}", "model": model, "stream": i % 2 == 0}
            try:
                _json(f"http://127.0.0.1:{PORT}/ask", body)
                outcomes["ok"] += 1
            except urllib.error.HTTPError:
                outcomes["failed"] += 1
        print(f"  {outcomes['ok']} answered, {outcomes['failed']} failed (HTTP 502 from the LLM)")
        time.sleep(8)  # a metric export, a scrape and a rule evaluation
        _where_to_look(_trigger_alert(relay_log), relay_log, paths)
        print("\nGrafana dashboards to import: collector-config/grafana/*.json")
        print("Stop the stack with: scripts/stack.sh stop")
    finally:
        service.terminate()
        service.wait(timeout=30)
        llm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
