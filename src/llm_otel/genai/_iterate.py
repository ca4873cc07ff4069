"""A generator run with a span current only while the generator's own code runs (each step),
never while its consumer runs between items: what a decorated generator (``llm_otel.task`` on a
generator function) and a framework's lazily generated answer (LlamaIndex's streamed query)
need, so that the calls the generator makes nest under the span and the consumer's do not."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

__all__ = ["aiterate_under", "iterate_under"]


def iterate_under(span: Span, inner: Iterator[Any]) -> Generator[Any, None, Any]:
    """``inner``'s items, each produced with ``span`` current; returns what ``inner`` returned.
    Closing this generator closes ``inner``."""
    context = trace.set_span_in_context(span)
    try:
        while True:
            token = otel_context.attach(context)
            try:
                item = next(inner)
            except StopIteration as stop:
                return stop.value
            finally:
                otel_context.detach(token)
            yield item
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


async def aiterate_under(span: Span, inner: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
    """The async twin of :func:`iterate_under`."""
    context = trace.set_span_in_context(span)
    try:
        while True:
            token = otel_context.attach(context)
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            yield item
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()
