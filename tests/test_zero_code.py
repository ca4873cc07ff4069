"""``opentelemetry-instrument python app.py``: our distro, configurator and instrumentor found
through entry points, exporting OTLP/HTTP to a local receiver, one span per OpenAI call."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from llm_otel.genai import CompletedCall, LLMRequest, LLMResponse, text_part
from llm_otel.quality import Drift, DriftMonitor, EvaluatedCall
from tests.conftest import installed_command
from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent


def _env(server: OpenAITestServer, receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="test-key",
        OTEL_SERVICE_NAME="chat-app",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **extra,
    )
    return env


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)


def test_opentelemetry_instrument_exports_one_span_per_call(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    instrument = installed_command("opentelemetry-instrument")
    result = subprocess.run(
        [instrument, sys.executable, str(ROOT / "examples" / "chat_app.py")],
        env=_env(server, receiver),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rate limited: 429" in result.stdout
    _wait_for(lambda: len(receiver.spans) >= 6)
    genai = [s for s in receiver.spans if "gen_ai.operation.name" in s["attributes"]]
    assert sorted(s["name"] for s in genai) == [
        "chat error-429",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "chat tool-model",
        "embeddings text-embedding-3-small",
    ]
    assert len(receiver.spans) == len(genai)  # nothing else, no duplicates
    for span in genai:
        assert span["kind"] == "SPAN_KIND_CLIENT"
        assert span["scope"] == "llm_otel"
        attrs = span["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == server.port
        assert "gen_ai.system" not in attrs  # deprecated name never emitted
    streamed = [s for s in genai if s["attributes"].get("gen_ai.request.stream")]
    assert len(streamed) == 1
    assert streamed[0]["attributes"]["gen_ai.usage.output_tokens"] == 5
    failed = next(s for s in genai if s["name"] == "chat error-429")
    assert failed["attributes"]["error.type"] == "429"
    assert failed["status"].get("code") == "STATUS_CODE_ERROR"
    assert receiver.resources[0]["service.name"] == "chat-app"
    assert receiver.resources[0]["host.name"] == socket.gethostname()  # our distro's default

    _wait_for(lambda: "gen_ai.client.token.usage" in receiver.metrics)
    for name in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
    ):
        assert name in receiver.metrics, sorted(receiver.metrics)


def test_disabled_instrumentation_is_honoured(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    instrument = installed_command("opentelemetry-instrument")
    result = subprocess.run(
        [instrument, sys.executable, str(ROOT / "examples" / "chat_app.py")],
        env=_env(server, receiver, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="llm_otel_openai"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    time.sleep(0.5)
    assert receiver.spans == []


def test_online_evaluation_from_the_environment(
    server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    """LLM_OTEL_EVALUATORS / LLM_OTEL_EVALUATION_SAMPLE_RATE under opentelemetry-instrument:
    every call of the example app evaluated by the built-ins, results exported as log records
    on the calls' spans before the process exits."""
    instrument = installed_command("opentelemetry-instrument")
    env = _env(server, receiver, LLM_OTEL_EVALUATORS="default",
               LLM_OTEL_EVALUATION_SAMPLE_RATE="1")  # fmt: skip
    result = subprocess.run(
        [instrument, sys.executable, str(ROOT / "examples" / "chat_app.py")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _wait_for(lambda: len(receiver.spans) >= 6)
    results = [r for r in receiver.logs if r.get("eventName") == "gen_ai.evaluation.result"]
    names = {r["attributes"]["gen_ai.evaluation.name"] for r in results}
    assert {"sensitive_data", "prompt_injection", "refusal", "output_complete"} <= names
    # Each result sits on the span of the call it judged.
    assert {r["spanId"] for r in results} <= {s["span_id"] for s in receiver.spans}
    assert "llm_otel.evaluation.results" in receiver.metrics


def test_drift_from_the_environment(
    server: OpenAITestServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """LLM_OTEL_DRIFT_BASELINE under opentelemetry-instrument: the example app's calls are
    compared with a pinned baseline file, and the gauge is exported before the process exits."""
    baseline = tmp_path / "drift.json"
    monitor = DriftMonitor(Drift(min_samples=1))
    request = LLMRequest(operation="chat", provider="openai", model="gpt-4o-mini")
    response = LLMResponse(finish_reasons=["stop"], input_tokens=3, output_tokens=3000,
                           output_messages=[{"role": "assistant",
                                             "parts": [text_part("Привет")]}])  # fmt: skip
    monitor.observe(EvaluatedCall(CompletedCall(request, response, None, INVALID_SPAN_CONTEXT)))
    assert monitor.pin(baseline) == 5
    pinned = baseline.read_text()
    instrument = installed_command("opentelemetry-instrument")
    env = _env(server, receiver, LLM_OTEL_DRIFT_BASELINE=str(baseline),
               LLM_OTEL_DRIFT_MIN_SAMPLES="1", LLM_OTEL_EVALUATION_SAMPLE_RATE="1")  # fmt: skip
    result = subprocess.run(
        [instrument, sys.executable, str(ROOT / "examples" / "chat_app.py")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _wait_for(lambda: "llm_otel.drift.divergence" in receiver.metrics)
    points = {
        (p["attributes"]["llm_otel.drift.feature"], p["attributes"]["llm_otel.drift.measure"]):
        p["asDouble"] for p in receiver.metrics["llm_otel.drift.divergence"]
        if p["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    }  # fmt: skip
    # The test server's answers are short and in Latin script: as far as can be from those.
    assert points[("output_script", "js")] == pytest.approx(math.log(2))
    assert points[("output_tokens", "js")] == pytest.approx(math.log(2))
    assert baseline.read_text() == pinned  # a pinned file is read, not rewritten
