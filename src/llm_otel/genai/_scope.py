"""Attributes set once for a block (conversation, user, session) and put on every span in it.

``llm_otel.context(conversation_id=..., user_id=...)`` stores them in a contextvar, so they
follow threads' and asyncio tasks' own contexts. llm-otel's spans read them when they start;
:class:`ScopeSpanProcessor` (added by ``configure()``) puts them on every other span too, such as
the HTTP server span.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import session_attributes, user_attributes
from opentelemetry.util.types import AttributeValue

__all__ = ["SCOPE", "ScopeSpanProcessor", "context", "scope_attributes"]

#: The innermost :func:`context` block's attributes (what :func:`scope_attributes` returns; the
#: model-call span reads it directly, a frame less per call).
SCOPE: contextvars.ContextVar[Mapping[str, AttributeValue]] = contextvars.ContextVar(
    "llm_otel_scope", default=MappingProxyType({})
)


def scope_attributes() -> Mapping[str, AttributeValue]:
    """The attributes of the innermost :func:`context` block (empty outside any)."""
    return SCOPE.get()


@contextmanager
def context(
    *,
    conversation_id: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    attributes: dict[str, AttributeValue] | None = None,
) -> Iterator[Mapping[str, AttributeValue]]:
    """Apply ``gen_ai.conversation.id``, ``user.id``, ``session.id`` (and any other
    ``attributes``) to every span started inside the block; blocks nest, inner values win.
    The ids are strings in the conventions: an int or a UUID is recorded as its text."""
    merged = dict(SCOPE.get())
    for key, value in (
        (ga.GEN_AI_CONVERSATION_ID, conversation_id),
        (user_attributes.USER_ID, user_id),
        (session_attributes.SESSION_ID, session_id),
    ):
        if value is not None:
            merged[key] = value if isinstance(value, str) else str(value)
    merged.update(attributes or {})
    frozen = MappingProxyType(merged)
    token = SCOPE.set(frozen)
    try:
        yield frozen
    finally:
        SCOPE.reset(token)


class ScopeSpanProcessor(SpanProcessor):
    """Copies the :func:`context` attributes onto every span when it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = SCOPE.get()
        if attributes:
            span.set_attributes(attributes)

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
