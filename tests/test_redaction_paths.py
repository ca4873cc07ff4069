"""The redactor applies however llm_otel was set up: configure() alone, opentelemetry-instrument
alone, opentelemetry-instrument and then the app's own configure(), configure() twice, or an
instrumentor with its own policy. Each runs as its own process exporting OTLP to a receiver;
nothing exported (span attributes, events, log records) may hold the raw card or e-mail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import installed_command
from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "configure only": (False, "configure", {}),
    "zero-code": (
        True,
        "plain",
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
            "LLM_OTEL_CONTENT_REDACTION": "default",
        },
    ),
    "zero-code + configure": (True, "configure", {}),
    "configure twice": (False, "configure-twice", {}),
    "instrumentor only": (False, "instrumentor", {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_raw_personal_data_is_exported(
    case: str, server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    zero_code, way, extra = CASES[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "LLM_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="k",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRICS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_BLRP_SCHEDULE_DELAY="50",
        LLM_OTEL_GPU_METRICS="false",
        **extra,
    )
    command = [sys.executable, "-m", "tests.apps.redaction_app", way]
    if zero_code:
        command = [installed_command("opentelemetry-instrument"), *command]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(receiver.spans) < 2 or len(receiver.logs) < 2):
        time.sleep(0.05)
    exported = json.dumps([receiver.spans, receiver.logs])
    assert len(receiver.spans) == 2 and len(receiver.logs) == 2, exported[:2000]
    assert "4111 1111" not in exported and "jane.doe@example.com" not in exported
    assert "[CREDIT_CARD]" in exported and "[EMAIL]" in exported  # captured, and redacted
    if case == "zero-code + configure":
        # The service name cannot reach providers opentelemetry-instrument installed: said once.
        assert done.stderr.count("not applied to it") == 1, done.stderr
