"""The real stack (our Collector, Jaeger v2, Prometheus, Alertmanager, the alert relay) and an
instrumented FastAPI LLM service.

The stack is started with scripts/stack.sh (built and cached on first use) and stopped again
if this session started it. The service runs under ``opentelemetry-instrument uvicorn`` with a
unique service name, against the OpenAI-compatible test server, with the fake NVML on its path
so the GPU series exist on a machine without a GPU.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import installed_command
from tests.servers.openai_server import OpenAITestServer

ROOT = Path(__file__).resolve().parents[2]
STACK = str(ROOT / "scripts" / "stack.sh")
JAEGER = "http://127.0.0.1:16686"
PROMETHEUS = "http://127.0.0.1:9090"
ALERTMANAGER = "http://127.0.0.1:9093"

pytestmark = pytest.mark.e2e


def http_json(url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (or raise with the last error)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # the backends answer 5xx/empty while warming up
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what or check}: last={last!r}")


RULE_FILES = ("alerts.yml", "baselines.yml")  # in collector-config/prometheus/


def alert_rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule of our rule files, in file and group order."""
    prometheus = ROOT / "collector-config" / "prometheus"
    return [
        rule
        for name in RULE_FILES
        for group in yaml.safe_load((prometheus / name).read_text())["groups"]
        for rule in group["rules"]
    ]


def run_app(code: str) -> None:
    """Run an instrumented app (a Python snippet, dedented) in a fresh process, without this
    process' OTEL_* settings; it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def prom_query(expr: str) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = http_json(url)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def prom_samples(selector: str, seconds: int) -> list[tuple[float, float]]:
    """The raw (time, value) samples Prometheus stored for the one series ``selector`` picks,
    over the last ``seconds``."""
    result = prom_query(f"{selector}[{seconds}s]")
    assert len(result) == 1, result
    return [(float(t), float(v)) for t, v in result[0]["values"]]


def jaeger_traces(service: str) -> list[dict[str, Any]]:
    """The traces of ``service`` in Jaeger (up to 5000)."""
    url = f"{JAEGER}/api/traces?" + urllib.parse.urlencode({"service": service, "limit": 5000})
    return list(http_json(url, timeout=30).get("data") or [])


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    status = subprocess.run([STACK, "status"], capture_output=True, text=True, check=True)
    was_running = "collector running" in status.stdout
    # Every alert's `for:` shortened to 10 s (stack.sh renders the rules; the expressions,
    # labels, routes and inhibitions stay as shipped) so an alert reaches the relay in a test.
    env = {**os.environ, "LLM_OTEL_ALERT_FOR": os.environ.get("LLM_OTEL_ALERT_FOR", "10s")}
    subprocess.run([STACK, "start"], check=True, timeout=3600, env=env)
    yield
    if not was_running:
        subprocess.run([STACK, "stop"], check=False, timeout=120)


@functools.cache
def stack_paths() -> dict[str, str]:
    """What ``scripts/stack.sh paths`` prints: the binaries' and run directory's paths."""
    out = subprocess.run([STACK, "paths"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SPANS_PER_TRACE = 4  # of a start_app trace: invoke_workflow, chat, execute_tool, chat
SLOW_SLEEP = 1.3  # s: a start_app trace of kind "slow" sleeps this long in its workflow

APP = """
    import json, sys, time, openai, llm_otel
    from opentelemetry import trace
    config = llm_otel.configure(service_name={service!r}, endpoint="http://{agent}", gpu=False)
    client = openai.OpenAI(base_url={base_url!r}, api_key="k", max_retries=0)
    sent = []
    deadline = time.monotonic() + {seconds}
    i = 0
    while i < {traces} or time.monotonic() < deadline:
        kind = {kinds}[i % len({kinds})]
        with llm_otel.workflow("ticket", **{{"test.kind": kind, "test.index": i}}):
            ask = lambda model: client.chat.completions.create(
                model=model, messages=[{{"role": "user", "content": f"ticket {{i}}"}}])
            ask("gpt-test")
            with llm_otel.tool("lookup"):
                pass
            try:
                ask("error-500" if kind == "error" else "gpt-test")
            except openai.InternalServerError:
                pass
            if kind == "slow":
                time.sleep({slow})
            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        sent.append((trace_id, kind, time.time()))
        i += 1
        time.sleep({pause})
    config.shutdown()
    json.dump(sent, sys.stdout)
"""


def start_app(endpoint: str, llm: OpenAITestServer, service: str, *, traces: int = 0,
              seconds: float = 0, kinds: tuple[str, ...] = ("normal",), pause: float = 0,
              ) -> subprocess.Popen[str]:  # fmt: skip
    """An instrumented app sending OTLP/HTTP to ``endpoint`` (host:port): ``traces`` traces,
    or more until ``seconds`` have passed, ``pause`` s apart. Each is a workflow span with a
    chat call, a tool span and another chat call; ``kinds`` cycles per trace: "error" makes
    the second call fail (HTTP 500), "slow" sleeps SLOW_SLEEP s in the workflow. ``finished``
    returns what it sent."""
    code = APP.format(service=service, agent=endpoint, base_url=llm.base_url,
                      traces=traces, seconds=seconds, kinds=list(kinds), slow=SLOW_SLEEP,
                      pause=pause)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_BSP_SCHEDULE_DELAY="200", OTEL_METRIC_EXPORT_INTERVAL="1000")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def finished(app: subprocess.Popen[str]) -> list[tuple[str, str, float]]:
    """What a ``start_app`` app sent: (trace id, kind, time.time() at its end) per trace."""
    out, err = app.communicate(timeout=180)
    assert app.returncode == 0, err
    return [tuple(row) for row in json.loads(out)]  # type: ignore[misc]


class Service:
    """The FastAPI LLM service under opentelemetry-instrument."""

    def __init__(self, llm: OpenAITestServer) -> None:
        self.name = f"e2e-support-bot-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="test-key",
            OTEL_SERVICE_NAME=self.name,
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e",
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_EXPORTER_OTLP_TIMEOUT="2",
            PYTHONPATH=os.pathsep.join(
                [str(ROOT / "tests" / "fakes" / "fakenvml"), str(ROOT / "src"), str(ROOT)]
            ),
        )
        command = [installed_command("opentelemetry-instrument"),
                   installed_command("uvicorn"), "examples.fastapi_service:app",
                   "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)  # a fresh checkout has none yet
        self.log = open(ROOT / ".pytest_cache" / f"{self.name}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        eventually(lambda: http_json(f"{self.url}/healthz"), 30, "the service to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ask(self, question: str, model: str = "gpt-4o-mini", stream: bool = False) -> Any:
        return http_json(f"{self.url}/ask", {"question": question, "model": model,
                                              "stream": stream})  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def llm() -> Iterator[OpenAITestServer]:
    server = OpenAITestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service(stack: None, llm: OpenAITestServer) -> Iterator[Service]:
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    svc = Service(llm)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def traffic(service: Service) -> Service:
    """Streaming and non-streaming calls, and a few that fail, as the demo sends."""
    for i in range(4):
        assert service.ask(f"question {i}")["answer"] == "Hello from the test server"
        assert service.ask(f"streamed {i}", stream=True)["answer"] == "Hello from the test server"
    for model in ("error-429", "error-500"):
        try:
            service.ask("fail", model=model)
        except urllib.error.HTTPError as exc:
            assert exc.code == 502
        else:
            raise AssertionError("the service should answer 502 for an LLM error")
    return service
