"""Anthropic's Message Batches (``messages.batches`` and ``beta.messages.batches``):
``create/retrieve/cancel/delete`` (sync and async) as ``batch ...`` spans, and ``results`` as a
``batch results`` span whose stream of results is counted as the app iterates it (outcome,
tokens, cost at the batch rate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_otel.genai import GenAITelemetry
from llm_otel.genai._batches import (
    BatchInfo,
    BatchRequest,
    Wrapper,
    batch_span,
    client_of,
    counting_results,
    lifecycle_wrapper,
)
from llm_otel.instrumentation.anthropic._messages import client_identity

__all__ = ["batch_info", "batch_request", "present_targets"]

PROVIDER = "anthropic"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def batch_info(batch: Any) -> BatchInfo:
    """A ``MessageBatch`` as the core describes it: failed = errored + canceled + expired."""
    counts = getattr(batch, "request_counts", None)
    names = ("processing", "succeeded", "errored", "canceled", "expired")
    values = {name: _int(getattr(counts, name, None)) for name in names}
    known = [v for v in values.values() if v is not None]
    failed = [values[n] for n in ("errored", "canceled", "expired") if values[n] is not None]
    batch_id, status = getattr(batch, "id", None), getattr(batch, "processing_status", None)
    return BatchInfo(
        batch_id=batch_id if isinstance(batch_id, str) else None,
        status=status if isinstance(status, str) else None,
        endpoint="/v1/messages",
        total=sum(known) if known else None,
        completed=values["succeeded"],
        failed=sum(v for v in failed if v is not None) if failed else None,
    )


def batch_request(item: Any) -> BatchRequest | None:
    """One ``MessageBatchIndividualResponse``: succeeded (with the message's usage), errored
    (``error.type`` the API error's type), canceled or expired (``error.type`` that word)."""
    result = getattr(item, "result", None)
    kind = getattr(result, "type", None)
    if not isinstance(kind, str):
        return None
    if kind != "succeeded":
        error_type = kind
        if kind == "errored":
            inner = getattr(getattr(result, "error", None), "error", None)
            error_type = getattr(inner, "type", None) or kind
        return BatchRequest(model=None, succeeded=False, error_type=str(error_type))
    message = getattr(result, "message", None)
    usage = getattr(message, "usage", None)
    fresh = _int(getattr(usage, "input_tokens", None))
    read = _int(getattr(usage, "cache_read_input_tokens", None))
    created = _int(getattr(usage, "cache_creation_input_tokens", None))
    model = getattr(message, "model", None)
    return BatchRequest(
        model=model if isinstance(model, str) else None,
        succeeded=True,
        input_tokens=None if fresh is None else fresh + (read or 0) + (created or 0),
        output_tokens=_int(getattr(usage, "output_tokens", None)),
        cached_input_tokens=read,
        cache_creation_input_tokens=created,
    )


def _results(telemetry: GenAITelemetry, is_async: bool) -> Wrapper:
    def start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        _, address, port = client_of(client_identity, instance, PROVIDER)
        batch_id = args[0] if args else kwargs.get("message_batch_id")
        return batch_id, batch_span(telemetry, PROVIDER, "results", (address, port),
                                    batch_id if isinstance(batch_id, str) else None)  # fmt: skip

    def wrap(handle: Any, batch_id: Any, results: Any) -> Any:
        if not isinstance(batch_id, str):
            return results
        return counting_results(telemetry, handle, batch_id, results, batch_request)

    if is_async:

        async def async_wrapper(wrapped: Callable[..., Any], instance: Any,
                                args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # fmt: skip
            if not telemetry.active:
                return await wrapped(*args, **kwargs)
            batch_id, span = start(instance, args, kwargs)
            with span as handle:
                return wrap(handle, batch_id, await wrapped(*args, **kwargs))

        return async_wrapper

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:  # fmt: skip
        if not telemetry.active:
            return wrapped(*args, **kwargs)
        batch_id, span = start(instance, args, kwargs)
        with span as handle:
            return wrap(handle, batch_id, wrapped(*args, **kwargs))

    return sync_wrapper


def present_targets(telemetry: GenAITelemetry) -> list[tuple[Any, str, Wrapper]]:
    """(class, method, wrapper) for the Message Batches methods this SDK has, on the GA API
    (``messages.batches``) and the beta one (``beta.messages.batches``, the same calls with beta
    headers). ``list`` is not a batch's lifecycle and gets no span."""
    import importlib

    targets: list[tuple[Any, str, Wrapper]] = []
    for module_name in ("anthropic.resources.messages.batches",
                        "anthropic.resources.beta.messages.batches"):  # fmt: skip
        try:
            batches = importlib.import_module(module_name)
        except ImportError:  # an SDK before Message Batches (or before they left beta)
            continue
        for cls, is_async in ((getattr(batches, "Batches", None), False),
                              (getattr(batches, "AsyncBatches", None), True)):  # fmt: skip
            if cls is None:
                continue
            for operation in ("create", "retrieve", "cancel", "delete"):
                if callable(getattr(cls, operation, None)):
                    wrapper = lifecycle_wrapper(telemetry, operation, is_async,
                                                provider=PROVIDER, identity=client_identity,
                                                id_argument="message_batch_id",
                                                describe=batch_info)  # fmt: skip
                    targets.append((cls, operation, wrapper))
            if callable(getattr(cls, "results", None)):
                targets.append((cls, "results", _results(telemetry, is_async)))
    return targets
