"""``llm-otel traces`` against the real Jaeger of the stack: an app's LLM traces listed, filtered,
shown as a tree with a transcript, read by a script (--json), seen in a real terminal (tmux), and
reached through an authenticating proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.e2e.conftest import JAEGER, ROOT, eventually, jaeger_traces, run_app
from tests.servers.loopback import LoopbackServer
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e

# One process: a support conversation (a tool call and its result, a streamed answer), and a
# second request whose LLM call fails; each request its own trace under a workflow span.
APP = """
import json, openai, llm_otel
config = llm_otel.configure(service_name={service!r}, endpoint="http://127.0.0.1:4318",
                            capture_content="SPAN_ONLY", gpu=False)
client = openai.OpenAI(base_url={base_url!r}, api_key="k", max_retries=0)
with llm_otel.context(conversation_id="conv-42", user_id="user-7"):
    with llm_otel.workflow("support-request"):
        messages = [{{"role": "system", "content": "You are the parcel bot."}},
                    {{"role": "user", "content": "Weather in Paris for my delivery?"}}]
        first = client.chat.completions.create(model="tool-model", messages=messages,
            tools=[{{"type": "function", "function": {{"name": "get_weather",
                     "parameters": {{"type": "object", "properties": {{}}}}}}}}])
        call = first.choices[0].message.tool_calls[0]
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {{"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}}]
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                stream=True,
                                                stream_options={{"include_usage": True}})
        print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
with llm_otel.workflow("failing-request"):
    try:
        client.chat.completions.create(model="error-500",
                                       messages=[{{"role": "user", "content": "hi"}}])
    except openai.InternalServerError:
        pass
config.shutdown()
"""


def traces_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "llm_otel", "traces", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def app_service(stack: None, llm: OpenAITestServer) -> str:
    service = f"e2e-traces-{uuid.uuid4().hex[:8]}"
    run_app(APP.format(service=service, base_url=llm.base_url))
    eventually(lambda: len(jaeger_traces(service)) == 2, 60, "both traces in Jaeger")
    return service


def _list(service: str, *args: str) -> list[dict[str, Any]]:
    result = traces_cli("--service", service, "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return list(json.loads(result.stdout)["traces"])


def test_list_summarizes_each_trace(app_service: str) -> None:
    traces = {t["root"]: t for t in _list(app_service)}
    ok_root, failed_root = (f"{app_service}: invoke_workflow {name}"
                            for name in ("support-request", "failing-request"))  # fmt: skip
    assert set(traces) == {ok_root, failed_root}
    ok = traces[ok_root]
    assert ok["llm_calls"] == 2 and ok["errors"] == 0
    assert len(ok["models"]) == 2  # the models that answered (gen_ai.response.model)
    assert ok["input_tokens"] == 24 and ok["output_tokens"] == 10  # 12/5 per call (server usage)
    assert ok["cost_usd"] and ok["cost_usd"] > 0  # gpt-4o-mini is priced
    failed = traces[failed_root]
    assert failed["llm_calls"] == 1 and failed["errors"] >= 1
    assert failed["slowest_call"] == "chat error-500"
    # The ids are Jaeger's: each one opens in Jaeger's API.
    for trace in traces.values():
        with urllib.request.urlopen(f"{JAEGER}/api/traces/{trace['trace_id']}") as answer:
            assert json.loads(answer.read())["data"][0]["traceID"] == trace["trace_id"]


@pytest.mark.parametrize(
    ("args", "roots"),
    [
        (["--errors"], {"failing-request"}),
        (["--model", "tool-model"], {"support-request"}),
        (["--provider", "openai"], {"support-request", "failing-request"}),
        (["--conversation", "conv-42"], {"support-request"}),
        (["--user", "user-7"], {"support-request"}),
        (["--since", "1h"], {"support-request", "failing-request"}),
        (["--start", "1h", "--end", "0s"], {"support-request", "failing-request"}),
        (["--end", "2h"], set()),  # until two hours ago: before the app ran
        (["--min-duration", "1h"], set()),
    ],
)
def test_filters(app_service: str, args: list[str], roots: set[str]) -> None:
    found = {t["root"].rsplit(" ", 1)[1] for t in _list(app_service, *args)}
    assert found == roots


def test_show_one_trace_as_tree_totals_and_transcript(app_service: str) -> None:
    (trace,) = _list(app_service, "--conversation", "conv-42")
    result = traces_cli(trace["trace_id"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"trace {trace['trace_id']}" in out
    assert "support-request" in out and "chat tool-model" in out and "chat gpt-4o-mini" in out
    assert "finish=tool_calls" in out and "finish=stop" in out
    assert "tokens=12/5" in out and "ttfc=" in out  # the streamed call's time to first chunk
    assert "LLM calls" in out and "24 / 10" in out
    # The conversation, as captured: system, user, the tool call, its result, the answer.
    for line in ("You are the parcel bot.", "Weather in Paris for my delivery?",
                 "→ call get_weather", "← result sunny, 21C",
                 "Hello from the test server"):  # fmt: skip
        assert line in out, line
    data = json.loads(traces_cli(trace["trace_id"], "--json").stdout)
    calls = [s for s in data["spans"] if s.get("gen_ai.operation.name") == "chat"]
    assert len(calls) == 2 and all(c["input_tokens"] == 12 for c in calls)
    assert data["totals"]["llm_calls"] == 2
    roles = [m["role"] for m in calls[-1]["messages"]]
    assert roles[:2] == ["system", "user"] and roles[-1] == "assistant"
    no_content = traces_cli(trace["trace_id"], "--json", "--no-content").stdout
    assert "parcel bot" not in no_content


def test_exit_codes_and_errors_a_person_can_act_on(app_service: str) -> None:
    missing = traces_cli("0123456789abcdef0123456789abcdef")
    assert missing.returncode == 1 and "no trace 0123456789abcdef" in missing.stderr
    unknown = traces_cli("--service", "no-such-service")
    assert unknown.returncode == 1
    assert "Jaeger knows no service 'no-such-service'" in unknown.stderr
    assert app_service in unknown.stderr
    down = traces_cli("--service", app_service, "--jaeger", "http://127.0.0.1:9")
    assert down.returncode == 3 and "cannot reach Jaeger at http://127.0.0.1:9" in down.stderr
    usage = traces_cli()
    assert usage.returncode == 2 and "give a TRACE_ID to show, or --service NAME" in usage.stderr
    bad = traces_cli("--service", app_service, "--since", "yesterday")
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
    both = traces_cli("--service", app_service, "--since", "1h", "--start", "2h")
    assert both.returncode == 2 and "--since and --start both say" in both.stderr


class _AuthProxy(LoopbackServer):
    """Jaeger behind a proxy that wants ``Authorization: Bearer s3cret``."""

    class handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("authorization") != "Bearer s3cret":
                self.send_response(401)
                self.end_headers()
                self.wfile.write(b"missing or wrong token")
                return
            with urllib.request.urlopen(JAEGER + self.path, timeout=10) as answer:
                body = answer.read()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass


@pytest.fixture
def auth_proxy() -> Iterator[str]:
    proxy = _AuthProxy().start()
    yield proxy.url
    proxy.stop()


def test_a_jaeger_behind_auth(app_service: str, auth_proxy: str) -> None:
    refused = traces_cli("--service", app_service, "--jaeger", auth_proxy)
    assert refused.returncode == 3
    assert "answered HTTP 401" in refused.stderr and "missing or wrong token" in refused.stderr
    allowed = traces_cli("--service", app_service, "--jaeger", auth_proxy, "--json",
                         "--header", "Authorization: Bearer s3cret")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert len(json.loads(allowed.stdout)["traces"]) == 2


def test_as_a_person_sees_it_in_a_terminal(app_service: str, tmp_path: Any) -> None:
    assert shutil.which("tmux"), "no tmux on PATH: scripts/test.sh installs it from Debian"
    (trace,) = _list(app_service, "--errors")
    session = f"llm-otel-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    command = (f"cd {ROOT} && {sys.executable} -m llm_otel traces --service {app_service}; "
               f"{sys.executable} -m llm_otel traces {trace['trace_id']}; sleep 30")  # fmt: skip
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "60",
                    command], check=True, env=env)  # fmt: skip
    try:

        def screen() -> str:
            out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            return out if "totals" in out and "errors" in out else ""

        text = eventually(screen, 30, "the tmux screen")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    (tmp_path / "screen.txt").write_text(text)
    lines = text.splitlines()
    assert any("┃ trace id" in line for line in lines)  # the list's table, in a 150-column tty
    (row,) = [i for i, line in enumerate(lines) if line.startswith(f"│ {trace['trace_id']} ")]
    assert "failing-request" in lines[row] + lines[row + 1]  # a long root wraps in its cell
    assert any("chat error-500" in line and "error=500" in line for line in lines)
    assert max(len(line) for line in lines) <= 150
