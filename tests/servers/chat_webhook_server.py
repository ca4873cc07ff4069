"""Chat-robot webhooks on loopback (WeCom group bots, DingTalk, Feishu/Lark, Slack, any webhook)
as the alert relay meets them: every POST is recorded as (path, query, JSON body); the path says
how to answer: ``/ok`` 200 with errcode 0, ``/refuse`` 200 with a robot's own error code (DingTalk
and WeCom answer 200 to a message they drop), ``/down`` HTTP 503."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.servers.loopback import Handler, LoopbackServer

__all__ = ["ChatWebhookServer"]


class _ChatHandler(Handler):
    def do_POST(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        query = dict(urllib.parse.parse_qsl(parts.query))
        self.server.requests.append({"path": parts.path, "query": query, "body": body})
        if parts.path.endswith("/down"):
            self.send_json(503, {"error": "unavailable"})
        elif parts.path.endswith("/refuse"):
            self.send_json(200, {"errcode": 310000, "errmsg": "keywords not in content"})
        else:
            self.send_json(200, {"errcode": 0, "errmsg": "ok"})


class ChatWebhookServer(LoopbackServer):
    handler = _ChatHandler

    def bodies(self, path: str) -> list[Any]:
        return [r["body"] for r in self.requests if r["path"] == path]
