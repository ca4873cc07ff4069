"""What the stack keeps for later: the GenAI event logs in VictoriaLogs (app -> Collector ->
VictoriaLogs), each record carrying the trace and span ids of the call's span in Jaeger; and the
traces in Jaeger's on-disk store, across a Jaeger restart."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import STACK, eventually, jaeger_traces, run_app
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e
VICTORIALOGS = "http://127.0.0.1:9428"


def logsql(query: str) -> list[dict[str, Any]]:
    """VictoriaLogs' LogsQL query API: one JSON object per line."""
    data = urllib.parse.urlencode({"query": query}).encode()
    with urllib.request.urlopen(f"{VICTORIALOGS}/select/logsql/query", data, timeout=10) as r:
        return [json.loads(line) for line in r.read().decode().splitlines() if line]


def test_event_records_join_the_jaeger_span_of_their_call(
    stack: None, llm: OpenAITestServer
) -> None:
    service = f"e2e-events-{uuid.uuid4().hex[:8]}"
    run_app(f"""
        import openai, llm_otel
        config = llm_otel.configure(service_name={service!r}, endpoint="http://127.0.0.1:4318",
                                    capture_content="SPAN_AND_EVENT", gpu=False)
        client = openai.OpenAI(base_url={llm.base_url!r}, api_key="k", max_retries=0)
        answer = client.chat.completions.create(model="gpt-test",
            messages=[{{"role": "user", "content": "where is my parcel?"}}])
        llm_otel.record_evaluation(answer.id, name="relevance", score=0.75)
        config.shutdown()
    """)
    traces = eventually(lambda: jaeger_traces(service), 60, "the span in Jaeger")
    (span,) = [s for t in traces for s in t["spans"]]
    records = eventually(lambda: logsql(f'service.name:"{service}"'), 60, "the event records")
    by_event = {r["event_name"]: r for r in records}
    assert set(by_event) == {"gen_ai.client.inference.operation.details",
                             "gen_ai.evaluation.result"}  # fmt: skip
    for record in by_event.values():
        assert record["trace_id"] == span["traceID"]
        assert record["span_id"] == span["spanID"]
        assert record["_msg"] == record["event_name"]
    details = by_event["gen_ai.client.inference.operation.details"]
    assert details["gen_ai.request.model"] == "gpt-test"
    assert "where is my parcel?" in details["gen_ai.input.messages"]
    assert by_event["gen_ai.evaluation.result"]["gen_ai.evaluation.score.value"] == "0.75"
    # The trace id finds the call's records, as a person would look them up from Jaeger.
    assert len(logsql(f"trace_id:{span['traceID']}")) == 2


def test_traces_survive_a_jaeger_restart(stack: None, llm: OpenAITestServer) -> None:
    """Jaeger keeps its traces in its embedded Badger store on disk."""
    service = f"e2e-durable-{uuid.uuid4().hex[:8]}"
    run_app(f"""
        import openai, llm_otel
        config = llm_otel.configure(service_name={service!r}, endpoint="http://127.0.0.1:4318",
                                    gpu=False)
        client = openai.OpenAI(base_url={llm.base_url!r}, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-test",
            messages=[{{"role": "user", "content": "hi"}}])
        config.shutdown()
    """)
    (before,) = eventually(lambda: jaeger_traces(service), 60, "the trace in Jaeger")
    subprocess.run([STACK, "restart-jaeger"], check=True, timeout=120)
    (after,) = eventually(lambda: jaeger_traces(service), 60, "the trace after the restart")
    assert after["traceID"] == before["traceID"]
    assert {s["spanID"] for s in after["spans"]} == {s["spanID"] for s in before["spans"]}
