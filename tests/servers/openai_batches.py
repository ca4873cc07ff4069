"""The OpenAI Batch API and the file endpoints it uses, for the OpenAI test server: upload a JSONL
file of requests (``POST /v1/files``, multipart), create a batch over it (``POST /v1/batches``),
poll it (``GET /v1/batches/{id}``: validating, then completed with an output file and, when some
requests failed, an error file), cancel it (``POST /v1/batches/{id}/cancel``) and download a
file (``GET /v1/files/{id}/content``). A request whose ``custom_id`` starts with ``error-NNN``
fails with that status; the others are answered as the chat endpoint answers them."""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import default
from typing import Any

__all__ = ["BatchStore"]


class BatchStore:
    """The files and batches one test server holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._next = 0

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}-{self._next:04d}"

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=default).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        data, name = b"", "upload.jsonl"
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                data = part.get_payload(decode=True) or b""
                name = part.get_filename() or name
        with self._lock:
            file_id = self._id("file")
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1,
                "filename": name, "purpose": "batch", "status": "processed"}  # fmt: skip

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            data = self.files.get(str(body.get("input_file_id")))
            if data is None:
                return 404, {"error": {"message": "no such file", "type": "invalid_request_error"}}
            lines = [json.loads(line) for line in data.splitlines() if line.strip()]
            batch_id = self._id("batch")
            models = {str((line.get("body") or {}).get("model")) for line in lines}
            batch = {
                "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"),
                "input_file_id": body.get("input_file_id"), "completion_window": "24h",
                "status": "validating", "created_at": 1, "output_file_id": None,
                "error_file_id": None, "metadata": body.get("metadata"),
                "model": models.pop() if len(models) == 1 else None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_requests": lines,
            }  # fmt: skip
            self.batches[batch_id] = batch
            return 200, _public(batch)

    def retrieve(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """A batch is answered at its first poll: completed, with its output and error files."""
        from tests.servers.openai_server import chat_completion

        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, {"error": {"message": "no such batch", "type": "invalid_request_error"}}
            if batch["status"] == "validating":
                output, errors = [], []
                for n, request in enumerate(batch["_requests"]):
                    body = request.get("body") or {}
                    custom_id = str(request.get("custom_id"))
                    line: dict[str, Any] = {
                        "id": f"batch_req_{n}", "custom_id": request.get("custom_id"),
                        "error": None,
                    }  # fmt: skip
                    if custom_id.startswith("error-"):
                        status = int(custom_id.split("-")[1])
                        line["response"] = {"status_code": status, "request_id": f"req_{n}",
                                            "body": {"error": {"message": "test error",
                                                               "type": "test"}}}  # fmt: skip
                        errors.append(line)
                    else:
                        line["response"] = {"status_code": 200, "request_id": f"req_{n}",
                                            "body": chat_completion(body)}  # fmt: skip
                        output.append(line)
                batch["status"] = "completed"
                counts = {"total": len(batch["_requests"]), "completed": len(output),
                          "failed": len(errors)}  # fmt: skip
                batch["request_counts"] = counts
                for key, lines in (("output_file_id", output), ("error_file_id", errors)):
                    if lines:
                        file_id = self._id("file")
                        self.files[file_id] = "".join(json.dumps(x) + "\n" for x in lines).encode()
                        batch[key] = file_id
            return 200, _public(batch)

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, {"error": {"message": "no such batch", "type": "invalid_request_error"}}
            if batch["status"] == "validating":
                batch["status"] = "cancelling"
            return 200, _public(batch)

    def content(self, file_id: str) -> bytes | None:
        with self._lock:
            return self.files.get(file_id)


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
