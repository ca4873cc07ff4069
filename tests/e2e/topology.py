"""The agent -> gateways topology of collector-config/agent-gateway/ as local processes: one
agent Collector load-balancing traces by trace ID over two gateway Collectors (our configs, on
free ports), which export to the stack's Jaeger. Used by tests/e2e/test_scale_out.py and
bench/topology.py.

Each gateway runs our gateway.yaml plus an overlay (a second ``--config``) that stamps its name
on the spans it exports (``test.gateway``), so a test sees which gateway a span went through.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import ROOT, eventually, free_port, stack_paths

AGENT_GATEWAY = ROOT / "collector-config" / "agent-gateway"
SLOW_TRACE_MS = 1000


class Collector:
    """One Collector process of the topology, on its own ports and queue directory."""

    def __init__(self, name: str, configs: list[Path], env: dict[str, str], health: str,
                 workdir: Path) -> None:  # fmt: skip
        self.name, self.configs, self.env, self.health = name, configs, env, health
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Collector:
        command = [stack_paths()["COLLECTOR_BIN"]]
        for config in self.configs:
            command += ["--config", str(config)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process writes to it until it stops
        self.process = subprocess.Popen(command, env={**os.environ, **self.env},
                                        stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        log.close()
        eventually(self._healthy, 30, f"{self.name} healthy ({self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
        with urllib.request.urlopen(f"http://{self.health}/", timeout=2) as response:
            return response.status == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Topology:
    """An agent and two gateways (sampling ``sampling_percent`` of the ordinary traces)."""

    def __init__(self, workdir: Path, sampling_percent: int,
                 agent_env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.gateways: dict[str, Collector] = {}
        self.gateway_metrics: dict[str, str] = {}  # their prometheus exporters
        self.gateway_telemetry: dict[str, str] = {}  # their own metrics
        gateway_otlp = []
        for name in ("gw1", "gw2"):
            otlp, health, prom, telemetry = (f"127.0.0.1:{free_port()}" for _ in range(4))
            gateway_otlp.append(otlp)
            self.gateway_metrics[name] = prom
            self.gateway_telemetry[name] = telemetry
            overlay = workdir / f"{name}-overlay.yaml"
            overlay.write_text(yaml.safe_dump(self._stamp(name)))
            self.gateways[name] = Collector(name, [AGENT_GATEWAY / "gateway.yaml", overlay], {
                "LLM_OTEL_GATEWAY_OTLP_GRPC": otlp,
                "LLM_OTEL_GATEWAY_HEALTH": health,
                "LLM_OTEL_GATEWAY_PROMETHEUS": prom,
                "LLM_OTEL_GATEWAY_TELEMETRY_PORT": telemetry.rsplit(":", 1)[1],
                "LLM_OTEL_COLLECTOR_QUEUE_DIR": str(workdir / f"{name}-queue"),
                "LLM_OTEL_SLOW_TRACE_MS": str(SLOW_TRACE_MS),
                "LLM_OTEL_SAMPLING_PERCENT": str(sampling_percent),
            }, health, workdir)  # fmt: skip
        self.agent_http, self.agent_grpc = (f"127.0.0.1:{free_port()}" for _ in range(2))
        self.agent_telemetry = f"127.0.0.1:{free_port()}"
        health = f"127.0.0.1:{free_port()}"
        self.agent = Collector("agent", [AGENT_GATEWAY / "agent.yaml"], {
            "LLM_OTEL_AGENT_OTLP_GRPC": self.agent_grpc,
            "LLM_OTEL_AGENT_OTLP_HTTP": self.agent_http,
            "LLM_OTEL_AGENT_HEALTH": health,
            "LLM_OTEL_AGENT_TELEMETRY_PORT": self.agent_telemetry.rsplit(":", 1)[1],
            "LLM_OTEL_GATEWAY_1": gateway_otlp[0],
            "LLM_OTEL_GATEWAY_2": gateway_otlp[1],
            **(agent_env or {}),
        }, health, workdir)  # fmt: skip

    @staticmethod
    def _stamp(name: str) -> dict[str, Any]:
        """A config overlay: the gateway's sampled-traces pipeline, with an attributes processor
        that writes the gateway's name on every span before the batch processor."""
        gateway = yaml.safe_load((AGENT_GATEWAY / "gateway.yaml").read_text())
        processors = list(gateway["service"]["pipelines"]["traces/sampled"]["processors"])
        processors.insert(processors.index("batch"), "attributes/gateway")
        action = {"key": "test.gateway", "value": name, "action": "upsert"}
        return {
            "processors": {"attributes/gateway": {"actions": [action]}},
            "service": {"pipelines": {"traces/sampled": {"processors": processors}}},
        }

    def start(self) -> Topology:
        for gateway in self.gateways.values():
            gateway.start()
        self.agent.start()
        return self

    def stop(self) -> None:
        for collector in (self.agent, *self.gateways.values()):
            collector.stop()

    def span_metric_calls(self, service: str) -> Counter[tuple[str, str]]:
        """traces_span_metrics_calls_total of ``service`` summed over both gateways, by
        (gen_ai.operation.name, error.type)."""
        calls: Counter[tuple[str, str]] = Counter()
        for address in self.gateway_metrics.values():
            for labels, value in scrape(address, "traces_span_metrics_calls_total"):
                if labels.get("service_name") == service:
                    key = (labels.get("gen_ai_operation_name", ""), labels.get("error_type", ""))
                    calls[key] += int(float(value))
        return calls


def scrape(address: str, metric: str, timeout: float = 5) -> list[tuple[dict[str, str], str]]:
    """The samples of ``metric`` on the Prometheus endpoint at ``address``."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as response:
        return list(samples(response.read().decode(), metric))


def samples(text: str, metric: str) -> Iterator[tuple[dict[str, str], str]]:
    """The samples of ``metric`` in a Prometheus text exposition: (labels, value)."""
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, value = line[len(metric) + 1 :].rsplit("} ", 1)
            yield dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)), value.split()[0]
        elif line.startswith(metric + " "):
            yield {}, line.split()[1]
