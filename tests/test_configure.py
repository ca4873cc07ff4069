"""``llm_otel.configure()``: run in subprocesses, since it sets the process-global providers."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from llm_otel._configure import _ExportSettings
from tests.conftest import installed_command
from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


APP = """
import openai, llm_otel
config = llm_otel.configure(service_name="configured-app", endpoint={endpoint!r},
                            resource_attributes={{"deployment.environment.name": "test"}},
                            capture_content="EVENT_ONLY")
assert llm_otel.configure() is config, "configure() is idempotent"
assert "llm_otel_openai" in config.instrumented, config.instrumented
client = openai.OpenAI(base_url={base_url!r}, api_key="k", max_retries=0)
client.chat.completions.create(model="gpt-test", messages=[{{"role": "user", "content": "hi"}}])
config.shutdown()
print("done")
"""


def test_configure_exports_traces_metrics_and_events(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    result = _run(APP.format(endpoint=receiver.endpoint, base_url=server.base_url), {})
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout
    (span,) = receiver.spans
    assert span["name"] == "chat gpt-test"
    assert "gen_ai.input.messages" not in span["attributes"]  # EVENT_ONLY
    resource = receiver.resources[0]
    assert resource["service.name"] == "configured-app"
    assert resource["deployment.environment.name"] == "test"
    assert resource["host.name"] == socket.gethostname()  # hw.* and app series keyed by host
    assert "gen_ai.client.operation.duration" in receiver.metrics
    (point,) = receiver.metrics["gen_ai.client.operation.duration"]
    assert point["unit"] == "s"
    assert [float(b) for b in point["explicitBounds"]][:3] == [0.01, 0.02, 0.04]
    (record,) = receiver.logs
    assert record["eventName"] == "gen_ai.client.inference.operation.details"
    assert "Say" not in record["attributes"]["gen_ai.input.messages"]
    assert '"hi"' in record["attributes"]["gen_ai.input.messages"]


def test_configure_reads_standard_env(server: OpenAITestServer, receiver: OTLPReceiver) -> None:
    script = f"""
    import openai, llm_otel
    config = llm_otel.configure()
    client = openai.OpenAI(base_url={server.base_url!r}, api_key="k", max_retries=0)
    client.embeddings.create(model="emb", input="x")
    config.shutdown()
    """
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "env-app",
        "OTEL_RESOURCE_ATTRIBUTES": "team=llm,host.name=given-host",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    result = _run(script, env)
    assert result.returncode == 0, result.stderr
    (span,) = receiver.spans
    assert span["name"] == "embeddings emb"
    assert receiver.resources[0]["service.name"] == "env-app"
    assert receiver.resources[0]["team"] == "llm"
    assert receiver.resources[0]["host.name"] == "given-host"  # the env wins over the hostname
    assert receiver.metrics == {}


def test_exporter_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    assert isinstance(_ExportSettings(None, None, None).exporter("traces"), Http)
    assert isinstance(_ExportSettings("localhost:4317", "grpc", None).exporter("traces"), Grpc)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    assert isinstance(_ExportSettings(None, None, None).exporter("traces"), Grpc)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert isinstance(_ExportSettings(None, None, None).exporter("traces"), ConsoleSpanExporter)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert _ExportSettings(None, None, None).exporter("traces") is None


def test_configure_under_opentelemetry_instrument_keeps_its_providers(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    instrument = installed_command("opentelemetry-instrument")
    script = f"""
import openai, llm_otel
from opentelemetry import trace
config = llm_otel.configure(service_name="ignored")
assert config.tracer_provider is trace.get_tracer_provider(), "reuses the installed provider"
client = openai.OpenAI(base_url={server.base_url!r}, api_key="k", max_retries=0)
client.chat.completions.create(model="gpt-test", messages=[{{"role": "user", "content": "x"}}])
"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SERVICE_NAME="auto-app")
    result = subprocess.run(
        [instrument, sys.executable, "-c", script],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (span,) = receiver.spans  # one span: one instrumentation, one exporter
    assert span["name"] == "chat gpt-test"
    assert receiver.resources[0]["service.name"] == "auto-app"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("instrument=False, gpu=False", []),
        ("instrument=False", []),
        ("instrument=['llm_otel_openai'], gpu=False", ["llm_otel_openai"]),
        ("gpu=False", None),  # every installed LLM library
    ],
)
def test_instrument_and_gpu_switches(arguments: str, expected: list[str] | None) -> None:
    if expected is None:
        modules = {"anthropic": "anthropic", "cohere": "cohere", "google_genai": "google.genai"}
        modules.update(groq="groq", mistralai="mistralai", ollama="ollama", openai="openai")
        modules.update(bedrock="botocore", litellm="litellm", langchain="langchain_core")
        modules.update(openai_agents="agents", mcp="mcp", llama_index="llama_index.core")
        expected = sorted(
            f"llm_otel_{name}"
            for name, module in modules.items()
            if importlib.util.find_spec(module.split(".")[0]) is not None
            and importlib.util.find_spec(module) is not None
        )  # litellm is not in the main venv: a missing library is not reported as instrumented
    script = f"""
    import llm_otel
    config = llm_otel.configure({arguments})
    print(sorted(config.instrumented))
    """
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none"}  # fmt: skip
    result = _run(script, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


SLOW_EXPORTER_APP = """
import json, threading, openai, llm_otel
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

class Stuck(SpanExporter):
    # A collector that never answers within the app's lifetime: every export blocks.
    def __init__(self):
        self.release = threading.Event()
        self.calls = 0
    def export(self, spans):
        self.calls += 1
        self.release.wait(30)
        return SpanExportResult.FAILURE
    def shutdown(self):
        self.release.set()

stuck = Stuck()
reader = InMemoryMetricReader()
config = llm_otel.configure(span_exporter=stuck, metric_reader=reader)
client = openai.OpenAI(base_url={base_url!r}, api_key="k", max_retries=0)
hi = [{{"role": "user", "content": "hi"}}]
for _ in range(200):
    answer = client.chat.completions.create(model="gpt-test", messages=hi)
    assert answer.choices[0].message.content == "Hello from the test server"
points = {{}}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            if metric.name.startswith("otel.sdk.processor.span."):
                for point in metric.data.data_points:
                    key = metric.name + "|" + str(point.attributes.get("error.type", ""))
                    points[key] = points.get(key, 0) + int(point.value)
print(json.dumps(points))
stuck.release.set()
print("exports", stuck.calls)
"""


def test_a_stuck_exporter_drops_spans_and_counts_them(server: OpenAITestServer) -> None:
    # Queue of 20, batches of 5: one batch blocks in the exporter, 20 wait, the rest are dropped.
    result = _run(
        SLOW_EXPORTER_APP.format(base_url=server.base_url),
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "20",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5",
            "OTEL_LOGS_EXPORTER": "none",
            "LLM_OTEL_GPU_METRICS": "false",
        },
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.splitlines()[0])
    dropped = counts["otel.sdk.processor.span.processed|queue_full"]
    queued = counts["otel.sdk.processor.span.queue.size|"]
    assert counts["otel.sdk.processor.span.queue.capacity|"] == 20
    assert queued <= 20  # memory bounded by the queue, not by the number of calls
    assert dropped >= 200 - 20 - 5  # every span that did not fit is counted
    assert "exports 1" in result.stdout  # the app never waited for the blocked export


def test_a_second_configure_names_what_it_ignored_and_applies_content() -> None:
    script = """
    import logging, llm_otel
    from llm_otel.genai import default_policy
    logging.basicConfig(level=logging.WARNING, format="%(name)s|%(message)s")
    first = llm_otel.configure(service_name="a", endpoint="http://127.0.0.1:9")
    same = llm_otel.configure(service_name="a", endpoint="http://127.0.0.1:9")
    print("identical:", same is first)
    llm_otel.configure(service_name="b", capture_content=True, content_max_length=7)
    policy = default_policy()
    print("content:", policy.mode.value, policy.max_length)
    llm_otel.configure(content_redactor=str.upper)
    policy = default_policy()
    print("kept:", policy.mode.value, policy.max_length, policy.redactor is str.upper)
    """
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "LLM_OTEL_GPU_METRICS": "false"}  # fmt: skip
    result = _run(script, env)
    assert result.returncode == 0, result.stderr
    assert "identical: True" in result.stdout
    assert "content: SPAN_ONLY 7" in result.stdout
    assert "kept: SPAN_ONLY 7 True" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("llm_otel|")]
    assert len(warnings) == 1, result.stderr  # none for the identical call or the content one
    assert "service_name cannot change" in warnings[0] and "endpoint" not in warnings[0]


SCRIPT_APP = """
import sys, openai, llm_otel
llm_otel.configure(service_name="notebook", environment="staging", batch=False,
                   endpoint={endpoint!r})
client = openai.OpenAI(base_url={base_url!r}, api_key="k", max_retries=0)
client.chat.completions.create(model="gpt-test", messages=[{{"role": "user", "content": "x"}}])
print("called", flush=True)
sys.stdin.readline()  # the test has looked at the receiver
print("flushed" if llm_otel.flush() else "flush failed", flush=True)
sys.stdin.readline()
"""


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_batch_false_exports_at_once_and_flush_exports_the_rest(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    script = SCRIPT_APP.format(endpoint=receiver.endpoint, base_url=server.base_url)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # Batches and metric rounds far in the future: only batch=False and flush() export now.
    clean.update(OTEL_BSP_SCHEDULE_DELAY="600000", OTEL_METRIC_EXPORT_INTERVAL="600000",
                 LLM_OTEL_GPU_METRICS="false")  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env=clean,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "called"
        assert _wait_for(lambda: len(receiver.spans) == 1), "the span was sent when it ended"
        assert "gen_ai.client.operation.duration" not in receiver.metrics  # not yet
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "flushed"
        assert "gen_ai.client.operation.duration" in receiver.metrics  # sent by flush()
        assert receiver.spans[0]["name"] == "chat gpt-test"
        resource = receiver.resources[0]
        assert resource["deployment.environment.name"] == "staging"
        assert resource["service.name"] == "notebook"
    finally:
        process.kill()
        process.wait()
