"""Anthropic's Message Batches API, for the Anthropic test server: create a batch of Messages
requests (``POST /v1/messages/batches``), poll it (``GET /v1/messages/batches/{id}``: in
progress when created, ended at the first poll, with a ``results_url``), cancel it (``POST
.../cancel``) and stream its results (``GET .../results``, JSON lines). A request whose
``custom_id`` starts with ``errored`` fails with an invalid-request error, one starting with
``expired`` expires; the others are answered as the Messages endpoint answers them."""

from __future__ import annotations

import json
import threading
from typing import Any

__all__ = ["MessageBatchStore"]


class MessageBatchStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: dict[str, dict[str, Any]] = {}
        self._next = 0

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            error = {"type": "invalid_request_error", "message": "requests: a non-empty list"}
            return 400, {"type": "error", "error": error}
        with self._lock:
            self._next += 1
            batch_id = f"msgbatch_{self._next:04d}"
            batch = {
                "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0,
                                   "canceled": 0, "expired": 0},
                "created_at": "2026-12-03T00:00:00Z", "expires_at": "2026-12-04T00:00:00Z",
                "ended_at": None, "archived_at": None, "cancel_initiated_at": None,
                "results_url": None, "_requests": requests, "_results": [],
            }  # fmt: skip
            self.batches[batch_id] = batch
            return 200, _public(batch)

    def retrieve(self, batch_id: str, base_url: str) -> tuple[int, dict[str, Any]]:
        from tests.servers.anthropic_server import message

        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _NOT_FOUND
            if batch["processing_status"] == "in_progress":
                counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0,
                          "expired": 0}  # fmt: skip
                for request in batch["_requests"]:
                    custom_id = str(request.get("custom_id"))
                    if custom_id.startswith("errored"):
                        result: dict[str, Any] = {"type": "errored", "error": {
                            "type": "error", "error": {"type": "invalid_request_error",
                                                       "message": "bad request"}}}  # fmt: skip
                    elif custom_id.startswith("expired"):
                        result = {"type": "expired"}
                    else:
                        result = {"type": "succeeded",
                                  "message": message(request.get("params") or {})}  # fmt: skip
                    counts[result["type"]] += 1
                    batch["_results"].append({"custom_id": custom_id, "result": result})
                url = f"{base_url}/v1/messages/batches/{batch_id}/results"
                batch.update(processing_status="ended", request_counts=counts,
                             ended_at="2026-12-03T00:10:00Z", results_url=url)  # fmt: skip
            return 200, _public(batch)

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _NOT_FOUND
            if batch["processing_status"] == "in_progress":
                batch.update(processing_status="canceling",
                             cancel_initiated_at="2026-12-03T00:01:00Z")  # fmt: skip
            return 200, _public(batch)

    def delete(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """An ended batch is deleted (``message_batch_deleted``); one in progress is refused."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _NOT_FOUND
            if batch["processing_status"] != "ended":
                error = {"type": "invalid_request_error", "message": "batch not ended"}
                return 400, {"type": "error", "error": error}
            del self.batches[batch_id]
            return 200, {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes | None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch["processing_status"] != "ended":
                return None
            return "".join(json.dumps(r) + "\n" for r in batch["_results"]).encode()


_NOT_FOUND = 404, {"type": "error", "error": {"type": "not_found_error",
                                              "message": "no such batch"}}  # fmt: skip


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
