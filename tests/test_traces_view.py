"""``llm-otel traces`` without a Jaeger: the trace model, summaries and rendering over a trace in
Jaeger's JSON (as its /api/traces answers), and the client's errors against loopback servers.
The same command against the real Jaeger: tests/e2e/test_traces_cli.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rich.console import Console

from llm_otel._traces import (
    Jaeger,
    JaegerError,
    parse_duration,
    parse_time,
    parse_trace,
    summarize,
    time_range,
    transcript,
    walk,
)
from llm_otel._traces_view import print_list, print_trace
from tests.servers.loopback import Handler, LoopbackServer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _span(span_id: str, parent: str | None, name: str, start: int, duration: int,
          tags: dict[str, Any], process: str = "p1") -> dict[str, Any]:  # fmt: skip
    return {
        "traceID": TRACE, "spanID": span_id, "operationName": name, "startTime": start,
        "duration": duration, "processID": process,
        "references": ([{"refType": "CHILD_OF", "traceID": TRACE, "spanID": parent}]
                       if parent else []),
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
    }  # fmt: skip


MESSAGES_IN = json.dumps([
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather",
                                     "arguments": {"city": "Paris"}}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
])  # fmt: skip
ANSWER = {"type": "text", "content": "It is [bold]sunny[/]."}
MESSAGES_OUT = json.dumps([{"role": "assistant", "finish_reason": "stop", "parts": [ANSWER]}])

DATA: dict[str, Any] = {
    "traceID": TRACE,
    "processes": {"p1": {"serviceName": "bot"}, "p2": {"serviceName": "search"}},
    "spans": [
        _span("a1", None, "POST /ask", 1_000_000, 2_500_000, {}),
        _span("b2", "a1", "chat gpt-4o", 1_100_000, 1_200_000, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30, "llm_otel.usage.cost": 0.0006,
            "gen_ai.response.finish_reasons": '["tool_calls"]',
            "gen_ai.system_instructions": "Be brief.",
        }),
        _span("c3", "a1", "execute_tool get_weather", 2_300_000, 100_000,
              {"gen_ai.operation.name": "execute_tool"}, "p2"),
        _span("d4", "a1", "chat gpt-4o", 2_400_000, 1_000_000, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 160, "gen_ai.usage.output_tokens": 12,
            "llm_otel.usage.cost": 0.0005, "gen_ai.response.time_to_first_chunk": 0.35,
            "gen_ai.response.finish_reasons": '["stop"]',
            "gen_ai.input.messages": MESSAGES_IN, "gen_ai.output.messages": MESSAGES_OUT,
        }),
        _span("e5", "a1", "chat claude", 3_400_000, 50_000, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude",
            "error.type": "529", "error": True,
        }),
    ],
}  # fmt: skip


def test_the_tree_and_summary_of_a_trace() -> None:
    trace_id, roots = parse_trace(DATA)
    assert trace_id == TRACE
    (root,) = roots
    assert [c.span_id for c in root.children] == ["b2", "c3", "d4", "e5"]  # by start time
    assert [s.service for s in walk(roots)] == ["bot", "bot", "search", "bot", "bot"]
    summary = summarize(trace_id, roots)
    assert summary.llm_calls == 3  # execute_tool is no LLM call
    assert (summary.input_tokens, summary.output_tokens) == (280, 42)
    assert summary.cost_usd == pytest.approx(0.0011)
    assert (summary.slowest_call, summary.slowest_call_ms) == ("chat gpt-4o", 1200.0)
    assert summary.errors == 1 and summary.models == ["claude", "gpt-4o"]
    assert summary.root == "bot: POST /ask" and summary.duration_ms == 2500.0
    assert summary.services == ["bot", "search"]


def test_the_transcript_keeps_the_order_and_the_parts() -> None:
    _, roots = parse_trace(DATA)
    first, _, second, _ = roots[0].children
    assert transcript(first) == [{"role": "system",
                                  "parts": [{"type": "text", "content": "Be brief."}]}]  # fmt: skip
    assert [m["role"] for m in transcript(second)] == ["user", "assistant", "tool", "assistant"]


def _render(draw: Any, width: int = 140) -> str:
    console = Console(record=True, width=width, color_system=None)
    draw(console)
    return console.export_text()


def test_a_trace_as_a_person_reads_it() -> None:
    trace_id, roots = parse_trace(DATA)
    out = _render(lambda c: print_trace(c, trace_id, roots, content=True))
    assert f"trace {TRACE}" in out and "services: bot, search" in out
    assert (
        "chat gpt-4o  1.20 s  model=gpt-4o  tokens=120/30  cost=$0.000600  finish=tool_calls" in out
    )
    assert "ttfc=350.0 ms" in out
    assert "[search] execute_tool get_weather" in out  # another service's span says so
    assert "chat claude  50.0 ms  model=claude  error=529" in out
    assert '→ call get_weather({"city": "Paris"})' in out and "← result sunny" in out
    assert "It is [bold]sunny[/]." in out  # content is text, never rich markup
    assert "assistant (finish: stop)" in out
    quiet = _render(lambda c: print_trace(c, trace_id, roots, content=False))
    assert "Weather in Paris?" not in quiet and "Be brief." not in quiet


def test_the_list_wide_and_narrow() -> None:
    summary = summarize(*parse_trace(DATA))
    wide = _render(lambda c: print_list(c, "bot", [summary]), width=160)
    assert "┃ trace id" in wide and TRACE in wide and "280 / 42" in wide
    narrow = _render(lambda c: print_list(c, "bot", [summary]), width=80)
    lines = narrow.splitlines()
    assert lines[1].startswith(TRACE) and "POST /ask" in lines[1]
    assert "3 LLM calls · tokens 280/42 · cost $0.001100 · 1 error" in lines[2]
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1.5m", 90.0), ("1h", 3600.0), ("2d", 172800.0),
     ("250us", 0.00025)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "soon", "-1s", "nans"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


class _NotJaeger(Handler):
    def do_GET(self) -> None:
        if self.path.startswith("/api/traces/"):
            self.send_json(404, {"errors": [{"code": 404, "msg": "trace not found"}]})
            return
        body = b"<html>a web page</html>"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(LoopbackServer):
    handler = _NotJaeger


def test_client_errors_say_what_to_do() -> None:
    server = _Server().start()
    try:
        jaeger = Jaeger(server.url)
        assert jaeger.trace("ffff") is None  # unknown trace: not an error, nothing found
        with pytest.raises(JaegerError, match=r"did not answer JSON: is .* query endpoint"):
            jaeger.services()
    finally:
        server.stop()
    with pytest.raises(JaegerError, match=re.escape("cannot reach Jaeger at http://127.0.0.1:9")):
        Jaeger("http://127.0.0.1:9", timeout=2).services()


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2027-01-15T07:00:00", NOW - 3600),  # no zone: UTC
        ("2027-01-15T08:00+01:00", NOW - 3600),
        ("2027-01-15 07:30:00Z", NOW - 1800),
        ("90m", NOW - 5400),  # a duration ago
    ],
)
def test_times(text: str, seconds: float) -> None:
    assert parse_time(text, now=NOW) == pytest.approx(seconds)


def test_bad_time() -> None:
    with pytest.raises(ValueError, match="expected a time such as 2026-12-02T14:00"):
        parse_time("yesterday noon")


def test_time_ranges() -> None:
    assert time_range(None, None, None, now=NOW) == (None, None)
    assert time_range(3600.0, None, None, now=NOW) == (NOW - 3600, NOW)
    assert time_range(None, NOW - 7200, None, now=NOW) == (NOW - 7200, NOW)
    assert time_range(None, NOW - 7200, NOW - 3600, now=NOW) == (NOW - 7200, NOW - 3600)
    assert time_range(None, None, NOW - 3600, now=NOW) == (None, NOW - 3600)
    with pytest.raises(ValueError, match="both say where the range starts"):
        time_range(3600.0, NOW - 60, None, now=NOW)
    with pytest.raises(ValueError, match="ends before it starts"):
        time_range(None, NOW - 60, NOW - 120, now=NOW)
