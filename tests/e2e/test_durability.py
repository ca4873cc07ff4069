"""Nothing is lost while Jaeger is away, even across a Collector restart: the Collector's
exporters keep their sending queues on disk (file_storage) and retry until Jaeger is back."""

from __future__ import annotations

import subprocess
import time
import uuid

from tests.e2e.conftest import STACK, eventually, jaeger_traces, run_app
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
