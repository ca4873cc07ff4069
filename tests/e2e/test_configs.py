"""The configuration files, checked by the real binaries: every Collector config validates
against our Collector build, Prometheus' config and rules pass promtool, alert unit tests pass."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import STACK, stack_paths

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector-config"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def collector_bin() -> str:
    subprocess.run([STACK, "build"], check=True, timeout=3600)
    return stack_paths()["COLLECTOR_BIN"]


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
    rule_tests = sorted(path.name for path in prom.glob("*_test.yml"))
    assert {"alerts_test.yml", "long_range_test.yml"} <= set(rule_tests)
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                 *(["test", "rules", name] for name in rule_tests)):  # fmt: skip
        result = subprocess.run(["promtool", *args], cwd=prom, capture_output=True, text=True,
                                timeout=180, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


# The Compose Specification's JSON schema, from the module docker compose itself validates with
# (served by the Go module proxy; no container engine runs here to try the file for real).
COMPOSE_SPEC = "github.com/compose-spec/compose-go/v2@v2.9.0"
COMPOSE = CONFIGS / "docker-compose.yaml"


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off"}
    out = subprocess.run(["go", "mod", "download", "-json", COMPOSE_SPEC], capture_output=True,
                         text=True, env=env, timeout=300, check=True, cwd="/")  # fmt: skip
    schema = Path(json.loads(out.stdout)["Dir"]) / "schema" / "compose-spec.json"
    return dict(json.loads(schema.read_text()))


def test_docker_compose_follows_the_compose_specification(compose_schema: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(compose_schema)  # the draft its $schema names
    compose = yaml.safe_load(COMPOSE.read_text())
    validator.validate(compose)
    assert set(compose["services"]) == {"collector", "jaeger", "prometheus", "alertmanager",
                                        "victorialogs", "grafana"}  # fmt: skip
    broken = copy.deepcopy(compose)
    broken["services"]["grafana"]["volume"] = broken["services"]["grafana"].pop("volumes")
    with pytest.raises(jsonschema.ValidationError, match="volume"):
        validator.validate(broken)  # the schema does catch a wrong key


def test_compose_grafana_gets_our_dashboards_and_data_sources(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    assert mounts == {"./grafana": "/etc/llm-otel/dashboards",
                      "./grafana/provisioning": "/etc/grafana/provisioning"}  # fmt: skip
    # Run the entrypoint's rendering, with compose's $$ escapes undone and the paths local.
    script = grafana["command"][0].replace("$$", "$").split(" && exec ")[0]
    script = script.replace("/etc/llm-otel/dashboards", str(CONFIGS / "grafana"))
    script = script.replace("/tmp/llm-otel-dashboards", str(tmp_path))
    subprocess.run(["/bin/sh", "-c", script], check=True)
    rendered = sorted(p.name for p in tmp_path.glob("*.json"))
    assert rendered == sorted(p.name for p in (CONFIGS / "grafana").glob("*.json"))
    provisioning = CONFIGS / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "llm-otel.yaml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    for path in tmp_path.glob("*.json"):
        text = path.read_text()
        assert "${DS_PROMETHEUS}" not in text
        used = set(re.findall(r'"uid": "([^"]+)"', text)) - {json.loads(text)["uid"]}
        assert used and used <= uids, (path.name, used)
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "llm-otel.yaml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == "/tmp/llm-otel-dashboards"


def _jaeger_validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [stack_paths()["JAEGER_BIN"], "validate", "--config", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_jaeger_takes_the_documented_production_stores(collector_bin: str, tmp_path: Path) -> None:
    """Every storage block docs/jaeger.md offers in place of Badger passes `jaeger validate`."""
    doc = (ROOT / "docs" / "jaeger.md").read_text().split("## Production storage", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) == 3
    config = (CONFIGS / "jaeger.yaml").read_text()
    badger = re.search(r"\n        badger:\n(?:          .*\n)+", config)
    assert badger, "the Badger block of jaeger.yaml"
    path = tmp_path / "jaeger.yaml"
    for block in [*blocks, blocks[0].replace("elasticsearch:", "opensearch:", 1)]:
        path.write_text(config.replace(badger.group(0), "\n" + block))
        result = _jaeger_validate(path)
        assert result.returncode == 0, block + result.stderr[-1000:]
    wrong = "\n        elasticsearch:\n          nope: 1\n"
    path.write_text(config.replace(badger.group(0), wrong))
    bad = _jaeger_validate(path)
    assert bad.returncode != 0 and "invalid keys: nope" in bad.stderr  # validate does check
