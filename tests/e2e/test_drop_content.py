"""LLM_OTEL_DROP_CONTENT=true: a Collector that deletes message content centrally, even from an
app that captures it. A second Collector instance (own ports, same Jaeger) runs that mode."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import eventually, jaeger_traces, run_app, stack_paths
from tests.servers.openai_server import OpenAITestServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def dropping_collector(stack: None) -> Iterator[str]:
    """A Collector with content dropping on; yields its OTLP/HTTP endpoint."""
    binary = stack_paths()["COLLECTOR_BIN"]
    grpc, http, health, prom, telemetry = _ports(5)
    env = {
        **os.environ,
        "LLM_OTEL_DROP_CONTENT": "true",
        "LLM_OTEL_COLLECTOR_OTLP_GRPC": f"127.0.0.1:{grpc}",
        "LLM_OTEL_COLLECTOR_OTLP_HTTP": f"127.0.0.1:{http}",
        "LLM_OTEL_COLLECTOR_HEALTH": f"127.0.0.1:{health}",
        "LLM_OTEL_COLLECTOR_PROMETHEUS": f"127.0.0.1:{prom}",
        "LLM_OTEL_COLLECTOR_TELEMETRY_PORT": str(telemetry),
        "LLM_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
    }
    process = subprocess.Popen(
        [binary, "--config", str(ROOT / "collector-config" / "otelcol.yaml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        eventually(lambda: urllib.request.urlopen(f"http://127.0.0.1:{health}/").status == 200,
                   30, "the content-dropping Collector")  # fmt: skip
        yield f"http://127.0.0.1:{http}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_content_is_dropped_centrally(dropping_collector: str, llm: OpenAITestServer) -> None:
    service = f"e2e-drop-{uuid.uuid4().hex[:8]}"
    run_app(f"""
        import openai, llm_otel
        config = llm_otel.configure(service_name={service!r}, endpoint={dropping_collector!r},
                                    capture_content="SPAN_ONLY", gpu=False)
        client = openai.OpenAI(base_url={llm.base_url!r}, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-test",
            messages=[{{"role": "user", "content": "my secret prompt"}}])
        config.shutdown()
    """)
    traces = eventually(lambda: jaeger_traces(service), 60, "the span in Jaeger")
    (span,) = [s for t in traces for s in t["spans"]]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["gen_ai.request.model"] == "gpt-test"  # the span arrived, with its metadata
    assert tags["gen_ai.usage.input_tokens"] == 12
    assert "gen_ai.input.messages" not in tags  # ... and without the captured content
    assert "gen_ai.output.messages" not in tags
