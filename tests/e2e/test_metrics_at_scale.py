"""Metrics beyond one Prometheus, and label cardinality.

- remote_write: a Prometheus rendered by ``scripts/stack.sh render`` with
  LLM_OTEL_REMOTE_WRITE_URL scrapes the stack's Collector, evaluates our recording rules and
  writes raw series and rule output, with its ``cluster`` external label, to a long-term store
  (here a second Prometheus with --web.enable-remote-write-receiver, standing in for Mimir,
  Thanos Receive or VictoriaMetrics).
- cardinality: after calls with distinct prompts, ids and users, no label of our series carries
  a per-call value; the number of series does not grow with the number of calls.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    STACK,
    eventually,
    finished,
    free_port,
    http_json,
    prom_query,
    start_app,
)
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e


class Prometheus:
    def __init__(self, config: Path, data: Path, *flags: str) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.log = open(data.parent / f"{data.name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address={self.address}", *flags],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        eventually(self._ready, 30, f"{data} ready")

    def _ready(self) -> bool:
        assert self.process.poll() is None, f"prometheus exited: {self.log.name}"
        with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=2) as response:
            return response.status == 200

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return list(http_json(url)["data"]["result"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def long_term_store(tmp_path: Path) -> Iterator[Prometheus]:
    config = tmp_path / "store.yml"
    config.write_text("global: {}\n")  # scrapes nothing: it only receives
    store = Prometheus(config, tmp_path / "store", "--web.enable-remote-write-receiver")
    yield store
    store.stop()


def test_the_cluster_prometheus_writes_raw_series_and_rule_output_to_a_long_term_store(
    stack: None, llm: OpenAITestServer, long_term_store: Prometheus, tmp_path: Path
) -> None:
    service = f"e2e-remote-write-{uuid.uuid4().hex[:8]}"
    rendered = tmp_path / "cluster"
    env = {**os.environ, "LLM_OTEL_REMOTE_WRITE_URL":
           f"http://{long_term_store.address}/api/v1/write",
           "LLM_OTEL_PROMETHEUS_CLUSTER": "e2e-eu-1"}  # fmt: skip
    subprocess.run([STACK, "render", str(rendered)], check=True, env=env, capture_output=True)
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert config["global"]["external_labels"] == {"cluster": "e2e-eu-1"}
    # As rendered, but not alerting (the stack's own Prometheus does that here) and scraping
    # only the Collector's exporter: a second cluster Prometheus beside the stack's.
    config.pop("alerting")
    config["scrape_configs"] = [c for c in config["scrape_configs"]
                                if c["job_name"] in ("llm-otel-apps", "prometheus")]  # fmt: skip
    (rendered / "prometheus.yml").write_text(yaml.safe_dump(config))
    cluster = Prometheus(rendered / "prometheus.yml", tmp_path / "cluster-data")
    try:
        finished(start_app("127.0.0.1:4318", llm, service, traces=20))
        svc = f'service_name="{service}", cluster="e2e-eu-1"'
        count = f"gen_ai_client_operation_duration_seconds_count{{{svc}}}"

        def total() -> float:
            return sum(float(r["value"][1]) for r in long_term_store.query(count))

        # The cluster Prometheus may scrape the Collector between two of the app's exports, so
        # the first sample written can be a partial count: wait for the final one.
        eventually(lambda: total() == 40, 60, "all 40 calls in the store")  # 2 per trace
        rule = eventually(
            lambda: long_term_store.query(f"llm:requests:rate5m{{{svc}}}"),
            60, "a recording rule's output in the long-term store",
        )  # fmt: skip
    finally:
        cluster.stop()
    assert {r["metric"]["cluster"] for r in rule} == {"e2e-eu-1"}
    # Prometheus' own series stay in the cluster (write_relabel_configs).
    assert not long_term_store.query('up{job="prometheus"}')


# A label value that is a per-call value: a trace/span/response id, a UUID, a long hex or
# base64 run, or the prompt text the test sends.
PER_CALL = re.compile(
    r"[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-|chatcmpl|resp_|ticket \d|[A-Za-z0-9+/]{32,}", re.I
)
# Labels that name a process, not a call: one value per process start (the instance id the SDK
# gives every app process, which the Collector's exporter also puts in `instance`, and the
# span-metrics connector's Collector instance id).
PER_PROCESS = {"service_instance_id", "instance", "collector_instance_id"}
PER_SERVICE = {"service_name", "job"}  # the exporter puts service.name in `job` too


def test_no_label_carries_per_call_values(stack: None, llm: OpenAITestServer) -> None:
    """Two services, one making 4 traces and one 40 (half with a failing call, every prompt
    different): the same series, and no label value that belongs to one call."""
    services = {f"e2e-cardinality-{n}-{uuid.uuid4().hex[:6]}": n for n in (4, 40)}
    apps = [start_app("127.0.0.1:4318", llm, service, traces=n, kinds=("error", "normal"))
            for service, n in services.items()]  # fmt: skip
    for app in apps:
        finished(app)

    def series(service: str) -> list[dict[str, str]]:
        return [r["metric"] for r in prom_query(f'{{service_name="{service}"}}')]

    def total(metric: str, service: str) -> float:
        return sum(
            float(r["value"][1]) for r in prom_query(f'{metric}{{service_name="{service}"}}')
        )

    for service, n in services.items():  # every call and every span counted
        eventually(lambda s=service, n=n: total("gen_ai_client_operation_duration_seconds_count", s)
                   == 2 * n and total("traces_span_metrics_calls_total", s) == 4 * n,
                   60, f"{service}'s calls and spans")  # fmt: skip
    few, many = (series(service) for service in services)

    def shape(all_series: list[dict[str, str]]) -> list[list[tuple[str, str]]]:
        """The GenAI and span-metrics series, without the labels naming the service/process.
        (The SDK's self-metrics are left out here: which of them exist depends on timing.)"""
        return sorted(
            sorted((k, v) for k, v in labels.items() if k not in PER_PROCESS | PER_SERVICE)
            for labels in all_series
            if re.match(r"(gen_ai|llm_otel|traces_span_metrics)_", labels["__name__"])
        )

    assert shape(many) == shape(few)
    assert len(shape(few)) > 50
    values: dict[str, set[str]] = {}
    for labels in many:
        for name, value in labels.items():
            values.setdefault(name, set()).add(value)
    for name, seen in values.items():
        if name in PER_PROCESS:
            assert len(seen) == 1, (name, seen)
        else:
            assert not [v for v in seen if PER_CALL.search(v)], (name, seen)
    print(f"\n{len(shape(few))} GenAI and span-metrics series for 8 calls and for 80; "
          f"labels: {sorted(values)}")  # fmt: skip
