"""The configuration files, checked by the real binaries: every Collector config validates
against our Collector build, Prometheus' config and rules pass promtool, alert unit tests pass."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import STACK

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector-config"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def collector_bin() -> str:
    subprocess.run([STACK, "build"], check=True, timeout=3600)
    paths = subprocess.run([STACK, "paths"], check=True, capture_output=True, text=True).stdout
    return paths.split("COLLECTOR_BIN=")[1].splitlines()[0]


@pytest.mark.parametrize(
    "config", ["otelcol.yaml", "agent-gateway/agent.yaml", "agent-gateway/gateway.yaml"]
)
@pytest.mark.parametrize("drop_content", ["false", "true"])
def test_collector_configs_validate(collector_bin: str, config: str, drop_content: str) -> None:
    env = {**os.environ, "LLM_OTEL_DROP_CONTENT": drop_content}
    result = subprocess.run(
        [collector_bin, "validate", "--config", str(CONFIGS / config)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_collector_has_the_components_the_docs_promise(collector_bin: str) -> None:
    out = subprocess.run(
        [collector_bin, "components"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for name in (
        "otlp_grpc",
        "prometheus",
        "span_metrics",
        "tail_sampling",
        "load_balancing",
        "transform",
        "attributes",
        "memory_limiter",
        "batch",
        "health_check",
        "debug",
    ):
        assert f"name: {name}" in out, name  # fmt: skip


def test_prometheus_config_and_rules(collector_bin: str) -> None:
    prom = CONFIGS / "prometheus"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                 ["test", "rules", "alerts_test.yml"]):  # fmt: skip
        result = subprocess.run(["promtool", *args], cwd=prom, capture_output=True, text=True,
                                timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
