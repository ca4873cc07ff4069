"""``llm-otel alert-relay``: Alertmanager's webhook in, each chat robot's own format out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_otel._alert_relay import Relay, format_message, parse_target, serve
from llm_otel._cli import main
from tests.servers.chat_webhook_server import ChatWebhookServer

# What Alertmanager 0.28 posts for one group (webhook_configs, version 4), trimmed.
NOTIFICATION: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="page"}:{alertname="LLMHighErrorRate", service_name="chat"}',
    "status": "firing",
    "receiver": "page",
    "groupLabels": {"alertname": "LLMHighErrorRate", "service_name": "chat",
                    "gen_ai_request_model": "gpt-4o"},
    "commonLabels": {"alertname": "LLMHighErrorRate", "service_name": "chat", "severity": "page",
                     "gen_ai_request_model": "gpt-4o", "gen_ai_provider_name": "openai",
                     "component": "llm"},
    "commonAnnotations": {"runbook_url": "https://wiki.example/runbooks.md#llmhigherrorrate"},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "LLMHighErrorRate"},
         "annotations": {"summary": "chat: 9% of gpt-4o calls fail",
                         "description": "9.1% of the calls of chat to openai model gpt-4o failed",
                         "runbook_url": "https://wiki.example/runbooks.md#llmhigherrorrate"},
         "startsAt": "2026-12-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
    ],
}  # fmt: skip


@pytest.fixture
def robots() -> Iterator[ChatWebhookServer]:
    server = ChatWebhookServer().start()
    yield server
    server.stop()


def _relay_server(relay: Relay) -> tuple[str, Any]:
    server = serve(relay, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def _post(url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_each_robot_gets_its_own_format(robots: ChatWebhookServer, tmp_path: Path) -> None:
    kinds = ("webhook", "slack", "wecom", "dingtalk", "feishu")
    targets = [parse_target(f"{k}={robots.url}/{k}/ok") for k in kinds]
    lines: list[str] = []
    relay = Relay(targets, tmp_path / "alerts.jsonl", env={}, echo=lines.append)
    url, server = _relay_server(relay)
    try:
        assert _post(f"{url}/alerts", NOTIFICATION) == (200, {"failed": []})
    finally:
        server.shutdown()
        server.server_close()
    assert robots.bodies("/webhook/ok") == [NOTIFICATION]  # Alertmanager's JSON, untouched
    (slack,) = robots.bodies("/slack/ok")
    assert slack["text"].startswith("*[FIRING:1] LLMHighErrorRate (page)*\n")
    (wecom,) = robots.bodies("/wecom/ok")
    assert wecom["msgtype"] == "markdown"
    text = wecom["markdown"]["content"]
    assert "service: chat · model: gpt-4o · provider: openai" in text
    assert "- firing: 9.1% of the calls of chat to openai model gpt-4o failed" in text
    assert "runbook: https://wiki.example/runbooks.md#llmhigherrorrate" in text
    (ding,) = robots.bodies("/dingtalk/ok")
    assert ding["markdown"] == {"title": "[FIRING:1] LLMHighErrorRate (page)", "text": text}
    (feishu,) = robots.bodies("/feishu/ok")
    assert feishu == {"msg_type": "text", "content": {"text": text.replace("**", "")}}
    # No secret configured: nothing signed.
    assert all(not r["query"] for r in robots.requests)
    (record,) = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert record["notification"] == NOTIFICATION
    assert record["delivered"] == list(kinds) and record["failed"] == []
    assert lines == [f"{record['received_at']} [FIRING:1] LLMHighErrorRate (page) "
                     "service_name=chat gen_ai_request_model=gpt-4o"]  # fmt: skip


def test_signed_robots_carry_a_signature_their_server_accepts(robots: ChatWebhookServer) -> None:
    env = {"LLM_OTEL_RELAY_DINGTALK_SECRET": "SECd1ng", "LLM_OTEL_RELAY_FEISHU_SECRET": "f5ecret"}
    targets = [parse_target(f"dingtalk={robots.url}/d/ok?access_token=t0k"),
               parse_target(f"feishu={robots.url}/f/ok")]  # fmt: skip
    relay = Relay(targets, env=env, echo=lambda _: None)
    assert relay.handle(NOTIFICATION) == []
    (ding,) = [r for r in robots.requests if r["path"] == "/d/ok"]
    stamp = ding["query"]["timestamp"]
    expected = hmac.new(b"SECd1ng", f"{stamp}\nSECd1ng".encode(), hashlib.sha256).digest()
    assert ding["query"]["access_token"] == "t0k"
    assert base64.b64decode(ding["query"]["sign"]) == expected  # parse_qsl undid the quoting
    (feishu,) = robots.bodies("/f/ok")
    key = f"{feishu['timestamp']}\nf5ecret".encode()
    assert base64.b64decode(feishu["sign"]) == hmac.new(key, b"", hashlib.sha256).digest()


def test_a_refusing_or_down_robot_makes_alertmanager_retry(robots: ChatWebhookServer) -> None:
    relay = Relay([parse_target(f"dingtalk={robots.url}/refuse"),
                   parse_target(f"slack={robots.url}/down"),
                   parse_target(f"feishu={robots.url}/ok")], echo=lambda _: None)  # fmt: skip
    url, server = _relay_server(relay)
    try:
        status, body = _post(f"{url}/alerts", NOTIFICATION)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 502  # Alertmanager retries a 5xx and counts the failed notification
    assert body["failed"] == [
        "dingtalk answered code 310000: keywords not in content",
        "slack answered HTTP 503",
    ]
    assert len(robots.bodies("/ok")) == 1  # the others were still delivered


def test_unreachable_robot_is_a_failure_not_a_crash() -> None:
    relay = Relay([parse_target("webhook=http://127.0.0.1:9/nothing")], echo=lambda _: None)
    (failure,) = relay.handle(NOTIFICATION)
    assert failure.startswith("webhook unreachable:")


def test_bad_requests_are_refused_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    url, server = _relay_server(Relay(echo=lambda _: None))
    try:
        with caplog.at_level(logging.WARNING, "llm_otel.alert_relay"):
            assert _post(f"{url}/alerts", b"{not json")[0] == 400
            status, body = _post(f"{url}/alerts", {"hello": "world"})
        assert (status, body) == (
            400,
            {"error": "not an Alertmanager notification (no 'alerts' list)"},
        )
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            assert json.loads(answer.read()) == {"status": "ok", "targets": []}
    finally:
        server.shutdown()
        server.server_close()
    assert len(caplog.records) == 2


def test_the_log_is_bounded_in_bytes(tmp_path: Path) -> None:
    log = tmp_path / "alerts.jsonl"
    relay = Relay(log_path=log, max_log_bytes=4096, echo=lambda _: None)
    for _ in range(40):
        relay.handle(NOTIFICATION)
    assert log.stat().st_size <= 4096
    assert (tmp_path / "alerts.jsonl.1").stat().st_size <= 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "alerts.jsonl.1"]


def test_resolved_and_many_alerts_read_well() -> None:
    many = dict(NOTIFICATION, status="resolved",
                alerts=[dict(NOTIFICATION["alerts"][0], status="resolved")] * 25)  # fmt: skip
    title, text = format_message(many)
    assert title == "[RESOLVED:25] LLMHighErrorRate (page)"
    assert text.count("\n- resolved: ") == 20 and "- and 5 more" in text
    assert text.count("runbook: ") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "teams=https://x"], "KIND one of webhook, slack, wecom, dingtalk, feishu"),
        (["--to", "slack=ftp://x"], "must start with http:// or https://"),
        (["--listen", "9095"], "expected HOST:PORT"),
        (["--max-log-bytes", "10"], "at least 1024"),
    ],
)
def test_cli_rejects_bad_arguments_clearly(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["alert-relay", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
