"""Provider batch APIs (work submitted now and answered later at a discount), provider-neutral:
a span per lifecycle call (``batch create``, ``batch retrieve``, ``batch cancel``, ``batch
results``) with the batch's id, status and request counts, and, when a batch's results are
fetched, its requests counted by outcome with their tokens and cost at the batch rate.

Adapters (``instrumentation/openai/_batches.py``) turn the SDK's objects into :class:`BatchInfo`
and :class:`BatchRequest`; this module records them. A result file is known as a batch's when a
lifecycle call reported it (its id remembered, bounded), and is counted once per process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import guarded
from llm_otel.cost import prices
from llm_otel.genai._failure import end_span, record_failure, start_span
from llm_otel.genai._incall import IN_OTHER_CALL
from llm_otel.genai._streams import _Proxy
from llm_otel.genai._telemetry import GenAITelemetry
from llm_otel.semconv import batch as names

__all__ = [
    "BatchFile",
    "BatchInfo",
    "BatchRequest",
    "batch_span",
    "client_of",
    "counting_results",
    "known_file",
    "lifecycle_wrapper",
    "record_results",
]

MAX_FILES = 4096  # result files remembered (and files counted)


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch as one lifecycle call reported it."""

    batch_id: str | None
    status: str | None = None
    endpoint: str | None = None
    model: str | None = None
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    result_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchFile:
    """A result file of a batch: which batch, which provider, the batch's model if known."""

    batch_id: str | None
    provider: str
    model: str | None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of a batch, from its results."""

    model: str | None
    succeeded: bool
    error_type: str | None = None
    input_tokens: int | None = None
    """All input tokens, cached ones included (as the conventions count them)."""
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Files:
    """Result files reported by lifecycle calls, and those already counted (both bounded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: OrderedDict[str, BatchFile] = OrderedDict()
        self._counted: OrderedDict[str, None] = OrderedDict()

    def remember(self, provider: str, info: BatchInfo) -> None:
        with self._lock:
            for file_id in info.result_files:
                self._known[file_id] = BatchFile(info.batch_id, provider, info.model)
                self._known.move_to_end(file_id)
            while len(self._known) > MAX_FILES:
                self._known.popitem(last=False)

    def get(self, file_id: str) -> BatchFile | None:
        with self._lock:
            return self._known.get(file_id)

    def first_count(self, file_id: str) -> bool:
        """True the first time a file is counted in this process."""
        with self._lock:
            if file_id in self._counted:
                return False
            self._counted[file_id] = None
            while len(self._counted) > MAX_FILES:
                self._counted.popitem(last=False)
            return True


_files = _Files()


def known_file(file_id: object) -> BatchFile | None:
    """The batch a file holds the results of, if a lifecycle call in this process said so."""
    return _files.get(file_id) if isinstance(file_id, str) else None


class BatchSpan:
    """The handle of a lifecycle call's span."""

    def __init__(self, span: Span, provider: str) -> None:
        self.span = span
        self.provider = provider

    def describe(self, info: BatchInfo) -> None:
        """What the call reported of the batch (on the span; its result files remembered)."""
        with guarded("batch span"):
            _files.remember(self.provider, info)
            span = self.span
            for key, value in (
                (names.LLM_OTEL_BATCH_ID, info.batch_id),
                (names.LLM_OTEL_BATCH_STATUS, info.status),
                (names.LLM_OTEL_BATCH_ENDPOINT, info.endpoint),
                (ga.GEN_AI_REQUEST_MODEL, info.model),
                (names.LLM_OTEL_BATCH_REQUESTS_TOTAL, info.total),
                (names.LLM_OTEL_BATCH_REQUESTS_COMPLETED, info.completed),
                (names.LLM_OTEL_BATCH_REQUESTS_FAILED, info.failed),
            ):
                if value is not None:
                    span.set_attribute(key, value)


@contextmanager
def batch_span(telemetry: GenAITelemetry, provider: str, operation: str,
               server: tuple[str | None, int | None] = (None, None),
               batch_id: str | None = None) -> Iterator[BatchSpan]:  # fmt: skip
    """The span of one lifecycle call; an exception marks it failed and is re-raised."""
    attributes: dict[str, AttributeValue] = {
        ga.GEN_AI_PROVIDER_NAME: provider,
        names.LLM_OTEL_BATCH_OPERATION: operation,
    }
    if batch_id is not None:
        attributes[names.LLM_OTEL_BATCH_ID] = batch_id
    address, port = server
    if address:
        attributes[server_attributes.SERVER_ADDRESS] = address
    if port:
        attributes[server_attributes.SERVER_PORT] = port
    span = start_span(telemetry.tracer, f"batch {operation}", SpanKind.CLIENT, attributes)
    token = otel_context.attach(trace.set_span_in_context(span))  # what the call does nests
    muted = IN_OTHER_CALL.set(True)  # an SDK's own span for this call: not made (anthropic)
    try:
        yield BatchSpan(span, provider)
    except BaseException as exc:
        with guarded("batch span failure"):
            error_type = type(exc).__qualname__
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                error_type = str(status)
            span.set_attribute(error_attributes.ERROR_TYPE, error_type)
            record_failure(span, exc, error_type, telemetry.content)
        raise
    finally:
        IN_OTHER_CALL.reset(muted)
        otel_context.detach(token)
        end_span(span)


class _Counter:
    """Counts a batch's requests: outcome, tokens and cost at the provider's batch rate, added
    up per model and outcome and recorded by :meth:`flush` (one metric point per distinct
    model and outcome, not per request: a 50,000-request file is a few records)."""

    def __init__(self, telemetry: GenAITelemetry, provider: str, model: str | None) -> None:
        self._telemetry, self._provider, self._model = telemetry, provider, model
        self._table = prices()
        self._rate = self._table.batch_rate(provider) if self._table is not None else 1.0
        self._requests: dict[tuple[str | None, bool, str | None], int] = {}
        self._tokens: dict[tuple[str | None, str], int] = {}
        self._cost: dict[str | None, float] = {}
        self.succeeded = self.failed = 0

    def count(self, request: BatchRequest) -> None:
        model = self._model or request.model
        error_type = None if request.succeeded else request.error_type or "_OTHER"
        key = (model, request.succeeded, error_type)
        self._requests[key] = self._requests.get(key, 0) + 1
        if request.succeeded:
            self.succeeded += 1
        else:
            self.failed += 1
        for kind, tokens in (("input", request.input_tokens), ("output", request.output_tokens)):
            if tokens:
                self._tokens[(model, kind)] = self._tokens.get((model, kind), 0) + tokens
        table = self._table
        price = table.lookup(self._provider, model) if table is not None else None
        if price is not None and (request.input_tokens or request.output_tokens):
            cost = price.cost(
                request.input_tokens, request.output_tokens,
                request.cached_input_tokens, request.cache_creation_input_tokens,
            )  # fmt: skip
            self._cost[model] = self._cost.get(model, 0.0) + cost * self._rate

    def _base(self, model: str | None) -> dict[str, AttributeValue]:
        base: dict[str, AttributeValue] = {ga.GEN_AI_PROVIDER_NAME: self._provider}
        if model:
            base[ga.GEN_AI_REQUEST_MODEL] = model
        return base

    def flush(self) -> None:
        telemetry = self._telemetry
        for (model, succeeded, error_type), n in self._requests.items():
            attributes = self._base(model)
            attributes[names.LLM_OTEL_BATCH_REQUEST_OUTCOME] = (
                "succeeded" if succeeded else "errored"
            )
            if error_type is not None:
                attributes[error_attributes.ERROR_TYPE] = error_type
            telemetry.batch_requests.add(n, attributes)
        for (model, kind), tokens in self._tokens.items():
            telemetry.batch_tokens.add(tokens, {**self._base(model), ga.GEN_AI_TOKEN_TYPE: kind})
        for model, cost in self._cost.items():
            telemetry.batch_cost.add(cost, self._base(model))
        self._requests.clear()
        self._tokens.clear()
        self._cost.clear()


def record_results(telemetry: GenAITelemetry, handle: BatchSpan, file_id: str,
                   batch: BatchFile, requests: Iterable[BatchRequest]) -> None:  # fmt: skip
    """Count a result file's requests (once per file and process): outcomes, tokens, cost."""
    span = handle.span
    if batch.batch_id is not None:
        span.set_attribute(names.LLM_OTEL_BATCH_ID, batch.batch_id)
    counted = _files.first_count(file_id)
    span.set_attribute(names.LLM_OTEL_BATCH_RESULTS_COUNTED, counted)
    if not counted:
        return
    counter = _Counter(telemetry, batch.provider, batch.model)
    for request in requests:
        counter.count(request)
    counter.flush()
    span.set_attribute(names.LLM_OTEL_BATCH_REQUESTS_COMPLETED, counter.succeeded)
    span.set_attribute(names.LLM_OTEL_BATCH_REQUESTS_FAILED, counter.failed)


def counting_results(
    telemetry: GenAITelemetry,
    handle: BatchSpan,
    batch_id: str,
    results: Any,
    convert: Callable[[Any], BatchRequest | None],
) -> Any:
    """``results`` (a stream of a batch's results the app will iterate, sync or async) proxied
    so that each result is counted as the app takes it, once per batch and process; the app
    gets the same items. Anything that is not such a stream is returned as it is."""
    counted = _files.first_count(f"{handle.provider}:{batch_id}")
    handle.span.set_attribute(names.LLM_OTEL_BATCH_RESULTS_COUNTED, counted)
    if not counted:
        return results
    counter = _Counter(telemetry, handle.provider, None)

    def count(item: Any) -> None:
        with guarded("batch result"):
            request = convert(item)
            if request is not None:
                counter.count(request)
                counter.flush()  # as the app takes it: a stream left half-read is counted so far

    if hasattr(results, "__anext__"):
        return _AsyncCounting(results, count)
    if hasattr(results, "__next__"):
        return _Counting(results, count)
    return results


class _Counting(_Proxy):
    """A sync stream of results, each counted as it is taken."""

    def __init__(self, wrapped: Any, count: Callable[[Any], None]) -> None:
        super().__init__(wrapped)
        self._self_count = count

    def __iter__(self) -> Iterator[Any]:
        for item in self.__wrapped__:
            self._self_count(item)
            yield item

    def __next__(self) -> Any:
        item = next(self.__wrapped__)
        self._self_count(item)
        return item


class _AsyncCounting(_Proxy):
    """An async stream of results, each counted as it is taken."""

    def __init__(self, wrapped: Any, count: Callable[[Any], None]) -> None:
        super().__init__(wrapped)
        self._self_count = count

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for item in self.__wrapped__:
            self._self_count(item)
            yield item

    async def __anext__(self) -> Any:
        item = await self.__wrapped__.__anext__()
        self._self_count(item)
        return item


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Identity = Callable[[Any], tuple[str, str | None, int | None]]


def client_of(
    identity: Identity, instance: Any, provider: str
) -> tuple[str, str | None, int | None]:
    """``identity(instance)``; if it fails (reported), ``provider`` and no server."""
    with guarded("batch client"):
        return identity(instance)
    return provider, None, None


def lifecycle_wrapper(telemetry: GenAITelemetry, operation: str, is_async: bool, *,
                      provider: str, identity: Identity, id_argument: str,
                      describe: Callable[[Any], BatchInfo]) -> Wrapper:  # fmt: skip
    """A wrapt wrapper for one lifecycle method of a batch resource (``create``, ``retrieve``,
    ``cancel``), sync or async: its span, and what the returned batch says on it.
    ``identity`` gives the provider name and server of the resource's client; ``id_argument``
    is the method's batch-id parameter (the first positional argument); ``describe`` turns the
    returned batch into a :class:`BatchInfo`."""

    def start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name, address, port = client_of(identity, instance, provider)
        batch_id = None
        if operation != "create":
            value = args[0] if args else kwargs.get(id_argument)
            batch_id = value if isinstance(value, str) else None
        return batch_span(telemetry, name, operation, (address, port), batch_id)

    def finish(handle: BatchSpan, result: Any) -> None:
        with guarded("batch lifecycle"):
            handle.describe(describe(result))

    if is_async:

        async def async_wrapper(wrapped: Callable[..., Any], instance: Any,
                                args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # fmt: skip
            if not telemetry.active:
                return await wrapped(*args, **kwargs)
            with start(instance, args, kwargs) as handle:
                result = await wrapped(*args, **kwargs)
                finish(handle, result)
                return result

        return async_wrapper

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:  # fmt: skip
        if not telemetry.active:
            return wrapped(*args, **kwargs)
        with start(instance, args, kwargs) as handle:
            result = wrapped(*args, **kwargs)
            finish(handle, result)
            return result

    return sync_wrapper
