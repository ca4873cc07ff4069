"""Nothing is lost while Jaeger is away, even across a Collector restart: the Collector's
exporters keep their sending queues on disk (file_storage) and retry until Jaeger is back."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from tests.e2e.conftest import (
    SPANS_PER_TRACE,
    STACK,
    eventually,
    finished,
    jaeger_traces,
    prom_query,
    prom_samples,
    run_app,
    start_app,
)
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e

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


PROMETHEUS_DOWN = 15.0  # s: three scrape intervals


def test_counters_add_up_after_prometheus_misses_scrapes(
    stack: None, llm: OpenAITestServer
) -> None:
    """The metrics are cumulative: what happened while Prometheus was not scraping is in the
    first value it scrapes afterwards, so rates and totals are right across the gap."""
    service = f"e2e-scrape-gap-{uuid.uuid4().hex[:8]}"
    svc = f'service_name="{service}"'
    chat = f'{svc}, gen_ai_operation_name="chat"'
    calls = f"sum(gen_ai_client_operation_duration_seconds_count{{{chat}}})"
    app = start_app("127.0.0.1:4318", llm, service, seconds=PROMETHEUS_DOWN + 20, pause=0.1)
    eventually(lambda: prom_query(calls), 60, "the first calls in Prometheus")
    try:
        subprocess.run([STACK, "stop-prometheus"], check=True, timeout=60)
        down = time.time()
        time.sleep(PROMETHEUS_DOWN)
    finally:
        subprocess.run([STACK, "start-prometheus"], check=True, timeout=120)
    up = time.time()
    sent = finished(app)
    chats, tokens = 2 * len(sent), 2 * len(sent) * (12 + 5)  # two calls per trace

    def total(expr: str) -> float:
        return sum(float(r["value"][1]) for r in prom_query(expr))

    eventually(lambda: total(calls) == chats, 60, f"{chats} calls in Prometheus")
    assert total(f"sum(gen_ai_client_token_usage_sum{{{svc}}})") == tokens
    # Prometheus has a hole where it was down ...
    values = prom_samples(f"gen_ai_client_operation_duration_seconds_count{{{chat}}}", 90)
    before = [(t, v) for t, v in values if t <= down]
    after = [(t, v) for t, v in values if t >= up]
    assert len(before) + len(after) == len(values), "a sample while Prometheus was down"
    # ... and the first value after it counts every call made in between: the jump equals the
    # calls that ended between those two scrapes (give or take the 1 s export interval and the
    # Collector's 2 s batch).
    (t0, v0), (t1, v1) = before[-1], after[0]

    def ended(start: float, end: float) -> int:
        return 2 * sum(1 for _, _, at in sent if start <= at <= end)

    assert ended(t0, t1 - 4) <= v1 - v0 <= ended(t0 - 4, t1), (v1 - v0, ended(t0, t1))
    print(f"\n{chats} chat calls, Prometheus down {up - down:.0f} s: no sample for "
          f"{t1 - t0:.0f} s, the counter jumped by {v1 - v0:.0f} across the gap ({ended(t0, t1)} "
          f"calls made in it) and ends at {total(calls):.0f}")  # fmt: skip
