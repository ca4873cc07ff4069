"""The OpenAI Batch API: ``batches.create/retrieve/cancel`` (sync and async) as ``batch ...``
spans, and ``files.content`` of a batch's output or error file as a ``batch results`` span that
counts the batch's requests by outcome, with their tokens and cost at the batch rate."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from llm_otel._guard import guarded
from llm_otel.genai import GenAITelemetry
from llm_otel.genai._batches import (
    BatchInfo,
    BatchRequest,
    Wrapper,
    batch_span,
    client_of,
    known_file,
    lifecycle_wrapper,
    record_results,
)
from llm_otel.instrumentation.openai._common import client_identity

__all__ = ["batch_info", "parse_results", "present_targets"]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def batch_info(batch: Any) -> BatchInfo:
    """A ``Batch`` object as the core describes it (attributes missing in older SDKs: None)."""
    counts = getattr(batch, "request_counts", None)
    files = (getattr(batch, "output_file_id", None), getattr(batch, "error_file_id", None))
    return BatchInfo(
        batch_id=_str(getattr(batch, "id", None)),
        status=_str(getattr(batch, "status", None)),
        endpoint=_str(getattr(batch, "endpoint", None)),
        model=_str(getattr(batch, "model", None)),
        total=_int(getattr(counts, "total", None)),
        completed=_int(getattr(counts, "completed", None)),
        failed=_int(getattr(counts, "failed", None)),
        result_files=tuple(f for f in files if isinstance(f, str) and f),
    )


def parse_results(content: bytes) -> Iterator[BatchRequest]:
    """The requests of an output or error file (JSON lines: ``custom_id``, ``response``
    with ``status_code`` and ``body``, ``error``); lines that are not such objects are skipped."""
    for line in io.BytesIO(content):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        response = entry.get("response")
        response = response if isinstance(response, dict) else {}
        body = response.get("body")
        body = body if isinstance(body, dict) else {}
        error, status = entry.get("error"), response.get("status_code")
        succeeded = not error and status == 200
        error_type = None
        if not succeeded:
            code = error.get("code") if isinstance(error, dict) else None
            error_type = _str(code) or (str(status) if _int(status) else None)
        usage = body.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
        yield BatchRequest(
            model=_str(body.get("model")),
            succeeded=succeeded,
            error_type=error_type,
            input_tokens=_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
            output_tokens=_int(usage.get("completion_tokens", usage.get("output_tokens"))),
            cached_input_tokens=_int(details.get("cached_tokens"))
            if isinstance(details, dict) else None,
        )  # fmt: skip


def _read(result: Any) -> bytes | None:
    """The bytes of a ``files.content`` result, only when already read (never a stream)."""
    if type(result).__name__ != "HttpxBinaryResponseContent":
        return None
    try:
        content = result.content  # a response not read yet raises instead of reading
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    return args[0] if args else kwargs.get(name)


def _results(telemetry: GenAITelemetry, is_async: bool) -> Wrapper:
    def count(handle: Any, file_id: str, batch: Any, result: Any) -> None:
        with guarded("openai batch results"):
            content = _read(result)
            if content is not None:
                record_results(telemetry, handle, file_id, batch, parse_results(content))

    def start(instance: Any, batch: Any) -> Any:
        _, address, port = client_of(client_identity, instance, "openai")
        return batch_span(telemetry, batch.provider, "results", (address, port))

    if is_async:

        async def async_wrapper(wrapped: Callable[..., Any], instance: Any,
                                args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # fmt: skip
            file_id = _argument(args, kwargs, "file_id")
            batch = known_file(file_id)
            if batch is None or not telemetry.active:  # not a batch's results: no span
                return await wrapped(*args, **kwargs)
            with start(instance, batch) as handle:
                result = await wrapped(*args, **kwargs)
                count(handle, file_id, batch, result)
                return result

        return async_wrapper

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:  # fmt: skip
        file_id = _argument(args, kwargs, "file_id")
        batch = known_file(file_id)
        if batch is None or not telemetry.active:
            return wrapped(*args, **kwargs)
        with start(instance, batch) as handle:
            result = wrapped(*args, **kwargs)
            count(handle, file_id, batch, result)
            return result

    return sync_wrapper


def present_targets(telemetry: GenAITelemetry) -> list[tuple[Any, str, Wrapper]]:
    """(class, method, wrapper) for the batch and file methods this SDK has."""
    targets: list[tuple[Any, str, Wrapper]] = []
    try:
        from openai.resources import batches, files
    except ImportError:  # pragma: no cover - every supported SDK has both
        return targets
    for cls, is_async in ((getattr(batches, "Batches", None), False),
                          (getattr(batches, "AsyncBatches", None), True)):  # fmt: skip
        for operation in ("create", "retrieve", "cancel"):
            if cls is not None and callable(getattr(cls, operation, None)):
                wrapper = lifecycle_wrapper(telemetry, operation, is_async, provider="openai",
                                            identity=client_identity, id_argument="batch_id",
                                            describe=batch_info)  # fmt: skip
                targets.append((cls, operation, wrapper))
    for cls, is_async in ((getattr(files, "Files", None), False),
                          (getattr(files, "AsyncFiles", None), True)):  # fmt: skip
        if cls is not None and callable(getattr(cls, "content", None)):
            targets.append((cls, "content", _results(telemetry, is_async)))
    return targets
