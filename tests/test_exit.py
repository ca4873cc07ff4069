"""Exit is bounded: an app whose Collector is down, or accepts and never answers, exits within
the shutdown budget (``LLM_OTEL_SHUTDOWN_TIMEOUT``, default 3 s) instead of the SDK's 14-20 s
(30 s more for a silent Collector); with a Collector up, what is left is still exported at exit.

The apps run in subprocesses; the time measured is from the app's last line ("app done") to the
process's end, i.e. the time spent at exit. The bounds have seconds of slack: the failure they
catch is the SDK's 10 s+ retry-and-timeout wait, not a slow machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_otel._exit import DEFAULT_TIMEOUT
from tests.conftest import installed_command
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
SLACK = 3.0  # seconds on top of the budget: interpreter teardown on a loaded machine

APP = textwrap.dedent(
    """
    import sys
    import llm_otel

    if sys.argv[1] == "configure":
        llm_otel.configure(service_name="exit-test", instrument=False, gpu=False)
    for _ in range(3):
        with llm_otel.llm_call(provider="in-house", model="m") as call:
            call.set_response(output_tokens=3)
    print("app done", flush=True)
    """
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exit") / "app.py"
    path.write_text(APP)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


@pytest.fixture
def silent_collector() -> Iterator[str]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()
    for conn in accepted:
        conn.close()


def _run(app: Path, mode: str, endpoint: str, **env: str) -> tuple[float, str]:
    """Run the app; returns the seconds from its last line to its exit, and its stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="exit-test", **env)
    command = [sys.executable, str(app), mode]
    if mode == "zero-code":
        command = [installed_command("opentelemetry-instrument"), *command]
    process = subprocess.Popen(
        command, env=environ, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    done = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    at_exit = time.monotonic() - done
    assert line == "app done\n", stderr
    assert process.returncode == 0, stderr
    return at_exit, stderr


@pytest.mark.parametrize("mode", ["configure", "zero-code"])
def test_exit_is_bounded_when_no_collector_listens(app: Path, mode: str) -> None:
    at_exit, stderr = _run(app, mode, f"http://127.0.0.1:{_closed_port()}")
    assert at_exit < DEFAULT_TIMEOUT + SLACK, stderr
    assert stderr.count("telemetry shutdown did not finish within 3 s") == 1, stderr


@pytest.mark.parametrize("mode", ["configure", "zero-code"])
def test_exit_is_bounded_when_the_collector_never_answers(
    app: Path, mode: str, silent_collector: str
) -> None:
    at_exit, stderr = _run(app, mode, silent_collector, LLM_OTEL_SHUTDOWN_TIMEOUT="1")
    assert at_exit < 1 + SLACK, stderr
    assert "did not finish within 1 s" in stderr


@pytest.mark.parametrize("mode", ["configure", "zero-code"])
def test_what_is_left_is_still_exported_at_exit(app: Path, mode: str) -> None:
    receiver = OTLPReceiver().start()
    try:
        # The batch processors' schedule (5 s, 60 s for metrics) has not come: only the exit
        # shutdown can have sent these.
        _, stderr = _run(app, mode, receiver.endpoint)
        assert [s["name"] for s in receiver.spans] == ["chat m"] * 3, stderr
        assert "gen_ai.client.operation.duration" in receiver.metrics
        assert "did not finish" not in stderr
    finally:
        receiver.stop()


def test_a_bad_budget_warns_once_and_the_default_holds(app: Path) -> None:
    at_exit, stderr = _run(
        app, "configure", f"http://127.0.0.1:{_closed_port()}", LLM_OTEL_SHUTDOWN_TIMEOUT="soon"
    )
    assert stderr.count("LLM_OTEL_SHUTDOWN_TIMEOUT='soon' is not a non-negative number") == 1
    assert at_exit < DEFAULT_TIMEOUT + SLACK, stderr


def test_explicit_shutdown_is_bounded_and_says_whether_it_finished(silent_collector: str) -> None:
    code = textwrap.dedent(
        f"""
        import time, llm_otel
        llm_otel.configure(endpoint={silent_collector!r}, instrument=False, gpu=False)
        with llm_otel.llm_call(provider="in-house", model="m"):
            pass
        start = time.monotonic()
        finished = llm_otel.shutdown(timeout=0.5)
        print(finished, round(time.monotonic() - start, 1), flush=True)
        """
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished, seconds = result.stdout.split()
    assert finished == "False"
    assert float(seconds) < 0.5 + SLACK
