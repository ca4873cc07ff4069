"""``llm-otel alert-relay``: an Alertmanager webhook receiver that logs and forwards.

Alertmanager speaks one webhook JSON; the chat robots LLM teams use (WeCom group bots, DingTalk,
Feishu/Lark, Slack incoming webhooks) each want their own. The relay receives Alertmanager's
notifications, appends each to a JSON-lines log (bounded: rotated at ``max_log_bytes``), prints
one line per notification, and forwards a readable message to every target in that target's
format. It answers 502 when a target refused or could not be reached, so Alertmanager retries
the notification (and counts the failure in ``alertmanager_notifications_failed_total``).

Secrets for signed robots come from the environment, never from the command line:
``LLM_OTEL_RELAY_DINGTALK_SECRET`` and ``LLM_OTEL_RELAY_FEISHU_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "Relay", "Target", "format_message", "parse_target", "serve"]

_log = logging.getLogger("llm_otel.alert_relay")

KINDS = ("webhook", "slack", "wecom", "dingtalk", "feishu")
_MAX_BODY = 4 * 1024 * 1024  # Alertmanager's payloads are far smaller; refuse anything bigger
_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    kind: str
    url: str


def parse_target(text: str) -> Target:
    """``KIND=URL`` (e.g. ``feishu=https://open.feishu.cn/...``) into a Target, or ValueError."""
    kind, sep, url = text.partition("=")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise ValueError(f"expected KIND=URL with KIND one of {', '.join(KINDS)}, not {text!r}")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"the URL of {kind} must start with http:// or https://, not {url!r}")
    return Target(kind, url)


def _labels(group: Mapping[str, Any], name: str) -> str:
    value = group.get("commonLabels", {}).get(name) or group.get("groupLabels", {}).get(name)
    return str(value) if value else ""


def format_message(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(title, markdown text) of one Alertmanager notification, for people to read."""
    alerts = list(payload.get("alerts") or [])
    status = str(payload.get("status") or "firing")
    name = _labels(payload, "alertname") or "alert"
    severity = _labels(payload, "severity")
    firing = sum(1 for a in alerts if a.get("status") == "firing")
    count = firing if status == "firing" else len(alerts)
    title = f"[{status.upper()}:{count}] {name}" + (f" ({severity})" if severity else "")
    scope = [f"{key}: {value}" for key, value in (
        ("service", _labels(payload, "service_name")),
        ("model", _labels(payload, "gen_ai_request_model")),
        ("provider", _labels(payload, "gen_ai_provider_name")),
        ("host", _labels(payload, "host_name")),
        ("gpu", _labels(payload, "hw_id")),
    ) if value]  # fmt: skip
    lines = [f"**{title}**"]
    if scope:
        lines.append(" · ".join(scope))
    runbooks: list[str] = []
    for alert in alerts[:20]:
        notes = alert.get("annotations") or {}
        text = notes.get("description") or notes.get("summary") or ""
        mark = "resolved" if alert.get("status") == "resolved" else "firing"
        lines.append(f"- {mark}: {text}")
        url = notes.get("runbook_url")
        if url and url not in runbooks:
            runbooks.append(url)
    if len(alerts) > 20:
        lines.append(f"- and {len(alerts) - 20} more")
    lines += [f"runbook: {url}" for url in runbooks]
    if payload.get("externalURL"):
        lines.append(f"alertmanager: {payload['externalURL']}")
    return title, "\n".join(lines)


def _signed_url(url: str, secret: str, now: float) -> str:
    # DingTalk: timestamp (ms) and base64(HMAC-SHA256(secret, "timestamp\nsecret")) as query.
    stamp = str(int(now * 1000))
    digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={sign}"


def _feishu_sign(secret: str, now: float) -> dict[str, str]:
    # Feishu/Lark: timestamp (s) and base64(HMAC-SHA256(key="timestamp\nsecret", msg="")).
    stamp = str(int(now))
    digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return {"timestamp": stamp, "sign": base64.b64encode(digest).decode()}


def request_for(
    target: Target, payload: Mapping[str, Any], env: Mapping[str, str], now: float
) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) that delivers ``payload`` to ``target`` in that target's format."""
    if target.kind == "webhook":
        return target.url, dict(payload)
    title, text = format_message(payload)
    if target.kind == "slack":
        return target.url, {"text": text.replace("**", "*")}
    if target.kind == "wecom":
        return target.url, {"msgtype": "markdown", "markdown": {"content": text}}
    if target.kind == "dingtalk":
        secret = env.get("LLM_OTEL_RELAY_DINGTALK_SECRET")
        url = _signed_url(target.url, secret, now) if secret else target.url
        return url, {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    body: dict[str, Any] = {"msg_type": "text", "content": {"text": text.replace("**", "")}}
    secret = env.get("LLM_OTEL_RELAY_FEISHU_SECRET")
    if secret:
        body.update(_feishu_sign(secret, now))
    return target.url, body


def _refusal(kind: str, answer: bytes) -> str | None:
    """The robot's own error in a 200 answer (WeCom/DingTalk errcode, Feishu code), or None."""
    if kind in ("webhook", "slack"):
        return None
    try:
        data = json.loads(answer or b"{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
    if code in (0, None):
        return None
    return f"{kind} answered code {code}: {data.get('errmsg') or data.get('msg') or ''}".strip()


class _Log:
    """Append-only JSON lines, rotated to ``PATH.1`` once ``max_bytes`` is reached."""

    def __init__(self, path: Path | None, max_bytes: int) -> None:
        self.path, self.max_bytes, self.lock = path, max_bytes, threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        with self.lock:
            try:
                if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(line)
            except OSError as exc:
                _log.warning("alert relay: cannot write %s: %s", self.path, exc)


class Relay:
    """Receives, logs and forwards notifications; the HTTP server calls :meth:`handle`."""

    def __init__(
        self,
        targets: Sequence[Target] = (),
        log_path: str | os.PathLike[str] | None = None,
        max_log_bytes: int = 10 * 1024 * 1024,
        env: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self.log = _Log(Path(log_path) if log_path else None, max_log_bytes)
        self.env = os.environ if env is None else env
        self.echo = echo or (lambda line: print(line, flush=True))

    def handle(self, payload: Mapping[str, Any]) -> list[str]:
        """Log and forward one notification; returns the failures (empty: all delivered)."""
        now = time.time()
        title, _ = format_message(payload)
        failures: list[str] = []
        delivered: list[str] = []
        for target in self.targets:
            url, body = request_for(target, payload, self.env, now)
            error = self._post(target.kind, url, body)
            (failures if error else delivered).append(error or target.kind)
        received = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
        self.log.write({"received_at": received, "title": title, "delivered": delivered,
                        "failed": failures, "notification": payload})  # fmt: skip
        scope = " ".join(
            f"{k}={v}"
            for k, v in (payload.get("commonLabels") or {}).items()
            if k in ("service_name", "gen_ai_request_model", "host_name", "hw_id")
        )
        self.echo(f"{received} {title} {scope}".rstrip() + ("" if not failures else
                  f" (failed: {'; '.join(failures)})"))  # fmt: skip
        return failures

    @staticmethod
    def _post(kind: str, url: str, body: Mapping[str, Any]) -> str | None:
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, headers={"content-type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:
                return _refusal(kind, answer.read(65536))
        except urllib.error.HTTPError as exc:
            return f"{kind} answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return f"{kind} unreachable: {exc}"


def _handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/healthz":
                self._reply(200, {"status": "ok", "targets": [t.kind for t in relay.targets]})
            else:
                self._reply(404, {"error": "POST Alertmanager notifications; GET /healthz"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if not 0 < length <= _MAX_BODY:
                self._reply(400, {"error": f"body of {length} bytes"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
                if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
                    raise ValueError("not an Alertmanager notification (no 'alerts' list)")
            except ValueError as exc:
                _log.warning("alert relay: refused a notification: %s", exc)
                self._reply(400, {"error": str(exc)})
                return
            failures = relay.handle(payload)
            self._reply(502 if failures else 200, {"failed": failures})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per notification is printed by Relay.handle

    return Handler


def serve(relay: Relay, host: str, port: int) -> ThreadingHTTPServer:
    """A started-in-the-caller's-hands server; call ``serve_forever()`` or run it in a thread."""
    server = ThreadingHTTPServer((host, port), _handler(relay))
    server.daemon_threads = True
    return server


def run(listen: str, targets: Sequence[Target], log_path: str | None, max_log_bytes: int) -> int:
    host, _, port = listen.rpartition(":")
    server = serve(Relay(targets, log_path, max_log_bytes), host or "127.0.0.1", int(port))
    kinds = ", ".join(t.kind for t in targets) or "none (log only)"
    print(f"llm-otel alert-relay on http://{listen}/ forwarding to: {kinds}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
