"""The alerting path's configuration, checked by the real binaries: anomaly and burn-rate rules
against days of synthetic series (promtool), every alert's annotations and runbook, Alertmanager's
config and routes (amtool), and a real Alertmanager grouping, inhibiting and silencing alerts on
their way to the alert relay."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_otel._alert_relay import Relay, parse_target, serve
from tests.e2e.conftest import (
    RULE_FILES,
    STACK,
    alert_rules,
    eventually,
    free_port,
    http_json,
    stack_paths,
)
from tests.servers.chat_webhook_server import ChatWebhookServer

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "collector-config" / "prometheus"
AM = ROOT / "collector-config" / "alertmanager"
pytestmark = pytest.mark.e2e

STEP = 300  # seconds between synthetic samples: 5 minutes
DAY = 86400


@pytest.fixture(scope="module")
def paths() -> dict[str, str]:
    subprocess.run([STACK, "build"], check=True, timeout=3600)
    return stack_paths()


# ---------------------------------------------------------------- annotations and runbooks


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(anchor)
    return out


def test_every_alert_has_summary_description_and_a_runbook_that_exists() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = _anchors(runbooks)
    alerts = [rule for rule in alert_rules() if "alert" in rule]
    assert len(alerts) >= 30
    for rule in alerts:
        name, notes, labels = rule["alert"], rule.get("annotations", {}), rule.get("labels", {})
        assert set(notes) >= {"summary", "description", "runbook_url"}, name
        assert labels.get("severity") in ("page", "ticket"), name
        assert labels.get("component") in ("llm", "gpu", "pipeline", "training"), name
        assert "{{" in notes["description"] or name == "LLMTelemetryAbsent", name  # values
        assert notes["runbook_url"] == f"docs/runbooks.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbooks.md has no section for {name}"
    # and every runbook section belongs to an alert that exists
    sections = set(re.findall(r"^## (\w+)$", runbooks, re.M))
    assert sections == {rule["alert"] for rule in alerts}


def test_each_runbook_says_what_to_check_and_what_to_do() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    for name, body in re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", runbooks, re.M | re.S):
        for part in ("**Means**", "**Check first**", "**Example trace**", "**Dashboard**",
                     "**Fix**"):  # fmt: skip
            assert part in body, f"runbook {name} lacks {part}"


# ---------------------------------------------------------------- promtool, synthetic series


def _values(fn: Callable[[float], float | None], seconds: float) -> str:
    out = []
    for i in range(int(seconds // STEP) + 1):
        v = fn(i * STEP)
        out.append("_" if v is None else f"{v:.6g}")
    return " ".join(out)


def _cycle(t: float) -> float:
    """2 s p95 with a ±30 % daily cycle and a little fast wobble (never flat: stddev > 0)."""
    return 2.0 * (1 + 0.3 * math.sin(2 * math.pi * t / DAY)) + 0.04 * math.sin(t / 353.0)


SPIKE = 7 * DAY + 12 * 3600  # day 7, 12:00, for 45 minutes, three times slower


def _spike(t: float) -> float:
    return _cycle(t) * (3.0 if SPIKE <= t < SPIKE + 2700 else 1.0)


def _trend(t: float) -> float:
    """The daily cycle, then from day 7 slower by 80 % more each day."""
    return _cycle(t) * (1 + 0.8 * max(0.0, t - 7 * DAY) / DAY)


Check = tuple[float, str, list[dict[str, Any]]]  # (eval time, alert, expected alerts)


def _latency_test(
    name: str, fn: Callable[[float], float], rate: float, checks: list[Check]
) -> dict[str, Any]:
    labels = f'service_name="{name}",gen_ai_request_model="m"'
    span = 8 * DAY + 6 * 3600
    return {
        "name": f"latency: {name}",
        "interval": f"{STEP}s",
        "input_series": [
            {
                "series": f"llm:operation_duration_seconds:p95_5m{{{labels}}}",
                "values": _values(fn, span),
            },
            {
                "series": f"llm:requests_by_model:rate5m{{{labels}}}",
                "values": _values(lambda _: rate, span),
            },
        ],
        "alert_rule_test": [
            {"eval_time": f"{int(t)}s", "alertname": alert, "exp_alerts": exp}
            for t, alert, exp in checks
        ],
    }


def _firing(alert: str, service: str, annotations: dict[str, str]) -> list[dict[str, Any]]:
    labels = {"severity": "ticket", "component": "llm", "service_name": service,
              "gen_ai_request_model": "m"}  # fmt: skip
    notes = {"runbook_url": f"docs/runbooks.md#{alert.lower()}", **annotations}
    return [{"exp_labels": labels, "exp_annotations": notes}]


def _promtool_tests() -> list[dict[str, Any]]:
    quiet_times = [DAY + i * 6 * 3600 for i in range(29)]  # every 6 h from day 1 to day 8 06:00
    cycle = [(t, a, []) for t in quiet_times for a in ("LLMLatencyAnomaly", "LLMLatencyDegrading")]
    spike_fired = _firing("LLMLatencyAnomaly", "spike", {
        "summary": "spike: p95 m call duration 5.744s is far above its baseline",
        "description": "The p95 duration of spike's m calls is 5.744s, more than 3 standard "
        "deviations above its 1-day mean of 2.095s, for 15 minutes.",
    })  # fmt: skip
    trend_fired = _firing("LLMLatencyDegrading", "trend", {
        "summary": "trend: m calls have grown slower over the last day (3.204s p95, 1-day mean)",
        "description": "The 1-day mean of the p95 duration of trend's m calls is 3.204s, more "
        "than 20% and 3 standard deviations above its 7-day mean of 2.174s, for an hour.",
    })  # fmt: skip
    return [
        _latency_test("cycle", _cycle, 1.0, cycle),
        _latency_test(
            "spike",
            _spike,
            1.0,
            [
                (SPIKE - 600, "LLMLatencyAnomaly", []),
                (SPIKE + 600, "LLMLatencyAnomaly", []),  # pending: not yet 15 minutes
                (SPIKE + 1800, "LLMLatencyAnomaly", spike_fired),
                (SPIKE + 2700 + 1800, "LLMLatencyAnomaly", []),  # over
                (SPIKE + 1800, "LLMLatencyDegrading", []),  # a spike is no trend
            ],
        ),
        _latency_test(
            "trend",
            _trend,
            1.0,
            [
                (7 * DAY + 6 * 3600, "LLMLatencyDegrading", []),
                (8 * DAY + 6 * 3600, "LLMLatencyDegrading", trend_fired),
            ],
        ),
        # The same spike on 0.01 calls/s (3 calls in 5 minutes): a p95 of noise.
        _latency_test(
            "lowtraffic",
            _spike,
            0.01,
            [
                (SPIKE + 1800, "LLMLatencyAnomaly", []),
            ],
        ),
    ]


def test_anomaly_rules_on_days_of_synthetic_series(tmp_path: Path) -> None:
    for name in RULE_FILES:
        (tmp_path / name).write_text((PROM / name).read_text())
    tests = {"rule_files": list(RULE_FILES), "evaluation_interval": f"{STEP}s",
             "tests": _promtool_tests()}  # fmt: skip
    (tmp_path / "anomaly_test.yml").write_text(yaml.safe_dump(tests, width=1 << 20))
    result = subprocess.run(["promtool", "test", "rules", "anomaly_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# ---------------------------------------------------------------- Alertmanager (amtool, real)


@pytest.fixture(scope="module")
def rendered(paths: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack's configs as stack.sh renders them, with the webhook URL set."""
    out = tmp_path_factory.mktemp("rendered")
    env = {**os.environ, "LLM_OTEL_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    subprocess.run([STACK, "render", str(out)], check=True, env=env, capture_output=True)
    return out


def _amtool(paths: dict[str, str], *args: str) -> str:
    result = subprocess.run([paths["AMTOOL_BIN"], *args], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_amtool_checks_the_configs(paths: dict[str, str], rendered: Path) -> None:
    out = _amtool(paths, "check-config", str(rendered / "alertmanager.yml"))
    assert " - 10 inhibit rules" in out and " - 3 receivers" in out
    out = _amtool(paths, "check-config", str(AM / "receivers.example.yml"))
    assert " - 5 receivers" in out
    # The raw file is not a valid config (the URL is a placeholder): only the rendered one is.
    raw = subprocess.run([paths["AMTOOL_BIN"], "check-config", str(AM / "alertmanager.yml")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert raw.returncode != 0


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=LLMHighErrorRate", "severity=page", "service_name=chat"], "page"),
        (["alertname=LLMLatencyAnomaly", "severity=ticket", "service_name=chat"], "ticket"),
        (["alertname=Whatever"], "default"),
    ],
)
def test_routes_by_severity(
    paths: dict[str, str], rendered: Path, labels: list[str], receiver: str
) -> None:
    config = f"--config.file={rendered / 'alertmanager.yml'}"
    out = _amtool(paths, "config", "routes", "test", config, f"--verify.receivers={receiver}",
                  *labels)  # fmt: skip
    assert out.strip() == receiver


def test_example_receivers_route_pages_to_pagerduty_and_chat(paths: dict[str, str]) -> None:
    config = f"--config.file={AM / 'receivers.example.yml'}"
    out = _amtool(paths, "config", "routes", "test", config, "severity=page", "component=gpu")
    assert out.strip() == "oncall-pagerduty,team-chat"
    out = _amtool(paths, "config", "routes", "test", config, "severity=ticket")
    assert out.strip() == "team-email,team-slack"


class _Alertmanager:
    """A real Alertmanager on free loopback ports with the stack's rendered config."""

    def __init__(self, binary: str, config: Path, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (data / "alertmanager.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        eventually(lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2), 30, "ready")

    def post(self, *alerts: dict[str, Any]) -> None:
        body = json.dumps([
            {"labels": a["labels"], "annotations": a.get("annotations", {}),
             "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} for a in alerts
        ]).encode()  # fmt: skip
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=body,
                                         headers={"content-type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def state(self) -> dict[str, dict[str, Any]]:
        """alertname/severity/service -> the alert's status as Alertmanager reports it."""
        out = {}
        for alert in http_json(f"{self.url}/api/v2/alerts"):
            labels = alert["labels"]
            key = "/".join(labels.get(k, "") for k in ("alertname", "severity", "service_name"))
            out[key] = alert["status"]
        return out

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def _alert(name: str, severity: str, component: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, "component": component, **labels},
        "annotations": {"summary": f"{name} {labels}", "description": f"{name} fires",
                        "runbook_url": f"docs/runbooks.md#{name.lower()}"},
    }  # fmt: skip


@pytest.fixture
def delivered(paths: dict[str, str], tmp_path: Path) -> Iterator[tuple[_Alertmanager, Any]]:
    """Alertmanager -> llm-otel alert-relay -> a loopback webhook; yields (am, webhook)."""
    robots = ChatWebhookServer().start()
    relay = serve(Relay([parse_target(f"webhook={robots.url}/hook")], tmp_path / "relay.jsonl",
                        echo=lambda _: None), "127.0.0.1", 0)  # fmt: skip
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    out = tmp_path / "config"
    env = {
        **os.environ,
        "LLM_OTEL_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{relay.server_address[1]}/alerts",
    }
    subprocess.run([STACK, "render", str(out)], check=True, env=env, capture_output=True)
    am = _Alertmanager(paths["ALERTMANAGER_BIN"], out / "alertmanager.yml", tmp_path)
    try:
        yield am, robots
    finally:
        am.stop()
        relay.shutdown()
        relay.server_close()
        robots.stop()


def test_alertmanager_groups_inhibits_and_silences(
    paths: dict[str, str], delivered: tuple[_Alertmanager, ChatWebhookServer]
) -> None:
    am, robots = delivered
    llm = {"service_name": "chat", "gen_ai_request_model": "gpt-4o",
           "gen_ai_provider_name": "openai"}  # fmt: skip
    # The same failing model seen by two instances, and the ticket twin of the page.
    am.post(_alert("LLMHighErrorRate", "page", "llm", instance="a", **llm),
            _alert("LLMHighErrorRate", "page", "llm", instance="b", **llm),
            _alert("LLMHighErrorRate", "ticket", "llm", instance="a", **llm))  # fmt: skip
    first = eventually(lambda: robots.bodies("/hook"), 60, "the page's notification")
    time.sleep(2)
    assert len(robots.bodies("/hook")) == 1  # one notification for the group
    (note,) = first
    assert note["receiver"] == "page" and note["status"] == "firing"
    assert note["groupLabels"] == {"alertname": "LLMHighErrorRate", "service_name": "chat",
                                   "gen_ai_request_model": "gpt-4o"}  # fmt: skip
    assert sorted(a["labels"]["instance"] for a in note["alerts"]) == ["a", "b"]
    assert note["commonAnnotations"]["runbook_url"] == "docs/runbooks.md#llmhigherrorrate"
    state = am.state()
    assert state["LLMHighErrorRate/ticket/chat"]["state"] == "suppressed"  # its page hides it
    assert state["LLMHighErrorRate/ticket/chat"]["inhibitedBy"]

    # The Collector dies: every LLM alert is now a symptom; a GPU alert is not.
    am.post(_alert("OTelCollectorDown", "page", "pipeline", instance="127.0.0.1:8888"),
            _alert("LLMLatencyAnomaly", "ticket", "llm", **llm),
            _alert("GPUTooHot", "page", "gpu", host_name="gpu-7", hw_id="GPU-a"))  # fmt: skip

    def inhibited() -> bool:
        s = am.state()
        return bool(s["LLMLatencyAnomaly/ticket/chat"]["inhibitedBy"]) and bool(
            s["LLMHighErrorRate/page/chat"]["inhibitedBy"]
        )

    eventually(inhibited, 30, "the LLM alerts inhibited by OTelCollectorDown")
    assert am.state()["GPUTooHot/page/"]["state"] == "active"

    # A silence, as a person adds it with amtool, hides the GPU alert.
    url = f"--alertmanager.url={am.url}"
    add = ["silence", "add", url, "--comment=maintenance", "--author=test", "--duration=1h"]
    silence = _amtool(paths, *add, "alertname=GPUTooHot", "host_name=gpu-7").strip()
    assert silence in _amtool(paths, "silence", "query", url)
    eventually(lambda: am.state()["GPUTooHot/page/"]["silencedBy"] == [silence], 30, "silenced")
    names = {b["groupLabels"]["alertname"] for b in robots.bodies("/hook")}
    assert "LLMLatencyAnomaly" not in names  # inhibited alerts are never delivered


def test_docker_compose_renders_the_alertmanager_config_as_the_stack_does(
    paths: dict[str, str], tmp_path: Path
) -> None:
    compose = yaml.safe_load((ROOT / "collector-config" / "docker-compose.yaml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / "collector-config" / source).exists(), volume
    am = compose["services"]["alertmanager"]
    script = am["command"][0].replace("$$", "$")  # what compose hands the container's shell
    render = script.split(" && exec ")[0]
    render = render.replace("/etc/llm-otel/alertmanager.yml", str(AM / "alertmanager.yml"))
    render = render.replace("/tmp/alertmanager.yml", str(tmp_path / "am.yml"))
    env = {**os.environ, "LLM_OTEL_ALERT_WEBHOOK_URL": "http://relay.example:9095/alerts"}
    subprocess.run(["/bin/sh", "-c", render], check=True, env=env)
    assert "url: http://relay.example:9095/alerts" in (tmp_path / "am.yml").read_text()
    _amtool(paths, "check-config", str(tmp_path / "am.yml"))
    prometheus = compose["services"]["prometheus"]["volumes"]
    assert {v.split(":")[1].rsplit("/", 1)[1] for v in prometheus} >= {"prometheus.yml",
                                                                      *RULE_FILES}  # fmt: skip
