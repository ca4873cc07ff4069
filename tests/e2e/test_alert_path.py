"""From a failing LLM call to a notification in the webhook receiver, with the real stack:
app -> Collector -> Prometheus (rules) -> Alertmanager (route, group, inhibit) -> alert relay.

The stack runs the shipped rules with every ``for:`` shortened to 10 s (tests/e2e/conftest.py);
everything else (expressions, thresholds, labels, routes, group waits, inhibitions) is as shipped.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ALERTMANAGER,
    STACK,
    Service,
    eventually,
    http_json,
    prom_query,
    stack_paths,
)
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def failing(stack: None, llm: OpenAITestServer) -> Iterator[Service]:
    svc = Service(llm)
    yield svc
    svc.stop()


def _fail(service: Service, n: int) -> None:
    for _ in range(n):
        try:
            service.ask("fail", model="error-500")
        except urllib.error.HTTPError as exc:
            assert exc.code == 502
        else:
            raise AssertionError("the service should answer 502 for an LLM error")


def _relay_log() -> Path:
    return Path(stack_paths()["RUN_DIR"]) / "alerts.jsonl"


def _notifications(service: str, alertname: str) -> list[dict[str, Any]]:
    log = _relay_log()
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        labels = record["notification"].get("commonLabels", {})
        if labels.get("service_name") == service and labels.get("alertname") == alertname:
            out.append(record)
    return out


def _am_alerts(alertname: str, **labels: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds with this name and these labels."""
    return [
        alert
        for alert in http_json(f"{ALERTMANAGER}/api/v2/alerts")
        if alert["labels"]["alertname"] == alertname
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def test_failing_calls_page_through_alertmanager_and_a_dead_collector_inhibits_them(
    failing: Service,
) -> None:
    name = failing.name
    errors = (
        f'gen_ai_client_operation_duration_seconds_count{{service_name="{name}", error_type="500"}}'
    )
    _fail(failing, 1)  # the counter's first sample: rate() needs a second one to see increase
    eventually(lambda: prom_query(errors), 60, "the first failure in Prometheus")
    start = time.time()
    _fail(failing, 60)
    (record,) = eventually(lambda: _notifications(name, "LLMHighErrorRate"), 180,
                           "the LLMHighErrorRate notification at the relay")  # fmt: skip
    delivered = datetime.fromisoformat(record["received_at"]).timestamp()
    note = record["notification"]
    assert note["status"] == "firing" and note["receiver"] == "page"
    labels = note["commonLabels"]
    assert labels["severity"] == "page"
    assert labels["gen_ai_request_model"] == "error-500"
    assert labels["gen_ai_provider_name"] == "openai"
    assert note["commonAnnotations"]["runbook_url"].endswith("docs/runbooks.md#llmhigherrorrate")
    assert "100% of the calls of " + name in note["alerts"][0]["annotations"]["description"]
    assert len(note["alerts"]) == 1  # one notification, one alert: grouped by service and model
    print(f"\nfirst failing call -> webhook: {delivered - start:.1f} s (for: 10s)")

    # Its ticket twin (2 %) also fires, and is hidden by the page.
    mine = {"service_name": name, "gen_ai_request_model": "error-500"}
    (ticket,) = eventually(lambda: _am_alerts("LLMHighErrorRate", severity="ticket", **mine),
                           60, "the ticket twin")  # fmt: skip
    (page,) = _am_alerts("LLMHighErrorRate", severity="page", **mine)
    assert ticket["status"]["state"] == "suppressed"
    assert ticket["status"]["inhibitedBy"] == [page["fingerprint"]]

    # The Collector dies: OTelCollectorDown fires; the LLM alert (kept firing by
    # keep_firing_for though its data is gone) is inhibited rather than re-notified.
    subprocess.run([STACK, "stop-collector"], check=True, timeout=120)
    try:
        stopped = time.time()

        (down,) = eventually(lambda: _am_alerts("OTelCollectorDown"), 120, "OTelCollectorDown")

        def inhibited_by_the_dead_collector() -> bool:
            (page,) = _am_alerts("LLMHighErrorRate", severity="page", **mine)
            return down["fingerprint"] in page["status"]["inhibitedBy"]

        eventually(inhibited_by_the_dead_collector, 60, "the page inhibited by OTelCollectorDown")
        assert _am_alerts("OTelCollectorDown")[0]["status"]["state"] == "active"
        print(f"Collector stopped -> LLM alerts inhibited: {time.time() - stopped:.1f} s")
    finally:
        subprocess.run([STACK, "restart-collector"], check=True, timeout=300)
