"""Nothing is lost while Jaeger is away, even across a Collector restart: the Collector's
exporters keep their sending queues on disk (file_storage) and retry until Jaeger is back."""

from __future__ import annotations

import subprocess
import time
import uuid

from tests.e2e.conftest import (
    SPANS_PER_TRACE,
    STACK,
    eventually,
    finished,
    jaeger_traces,
    run_app,
    start_app,
)
from tests.servers.openai_server import OpenAITestServer

CALLS = 40


def test_spans_sent_while_jaeger_is_down_survive_a_collector_restart(
    stack: None, llm: OpenAITestServer
) -> None:
    service = f"e2e-queue-{uuid.uuid4().hex[:8]}"
    subprocess.run([STACK, "stop-jaeger"], check=True, timeout=60)
    try:
        run_app(f"""
            import openai, llm_otel
            config = llm_otel.configure(service_name={service!r},
                                        endpoint="http://127.0.0.1:4318", gpu=False)
            client = openai.OpenAI(base_url={llm.base_url!r}, api_key="k", max_retries=0)
            for i in range({CALLS}):
                client.chat.completions.create(model="gpt-test",
                    messages=[{{"role": "user", "content": f"call {{i}}"}}])
            config.shutdown()
        """)
        time.sleep(3)  # past the batch processor's 2 s: the spans sit in the exporter's queue
        # A graceful restart (SIGTERM), as an upgrade or a config change does it.
        subprocess.run([STACK, "restart-collector"], check=True, timeout=120)
    finally:
        subprocess.run([STACK, "restart-jaeger"], check=True, timeout=120)
    started = time.monotonic()
    traces = eventually(
        lambda: (t := jaeger_traces(service)) and len(t) == CALLS and t,
        90,
        f"all {CALLS} traces in Jaeger",
    )
    assert sorted(len(t["spans"]) for t in traces) == [1] * CALLS
    print(f"{CALLS} traces delivered {time.monotonic() - started:.1f} s after Jaeger came back")


JAEGER_DOWN = 35.0  # s


def test_every_span_sent_while_jaeger_is_down_arrives_when_it_is_back(
    stack: None, llm: OpenAITestServer
) -> None:
    service = f"e2e-outage-{uuid.uuid4().hex[:8]}"
    # Traffic before, during and after the outage: 50 s of traces, about 10 a second.
    app = start_app("127.0.0.1:4318", llm, service, seconds=JAEGER_DOWN + 15, pause=0.1)
    time.sleep(5)
    try:
        subprocess.run([STACK, "stop-jaeger"], check=True, timeout=60)
        down_at = time.monotonic()
        time.sleep(JAEGER_DOWN)
    finally:
        subprocess.run([STACK, "start-jaeger"], check=True, timeout=120)
    back_at = time.monotonic()
    sent = {trace_id for trace_id, _, _ in finished(app)}

    def arrived() -> dict[str, int]:
        return {t["traceID"].rjust(32, "0"): len(t["spans"]) for t in jaeger_traces(service)}

    traces = eventually(lambda: (t := arrived()) and len(t) >= len(sent) and t, 90,
                        f"all {len(sent)} traces in Jaeger")  # fmt: skip
    recovered = time.monotonic() - back_at
    time.sleep(3)  # nothing more (no duplicates) arrives
    traces = arrived()
    assert traces.keys() == sent
    assert set(traces.values()) == {SPANS_PER_TRACE}
    print(
        f"\n{len(sent)} traces ({len(sent) * SPANS_PER_TRACE} spans) sent, Jaeger down "
        f"{back_at - down_at:.0f} s: all in Jaeger {recovered:.1f} s after it was back"
    )
