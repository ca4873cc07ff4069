"""Whether an llm_otel-recorded model call is in progress in this context.

Set by the wrappers for the duration of the client call, and by the stream proxies while they pull
the next item (a library may send its request lazily, on the first pull: LiteLLM's async
streams do). A call made meanwhile (a wrapper library calling an instrumented client) is part of
the recorded one and passes through without a span of its own.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["IN_CALL", "in_instrumented_call"]

IN_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("llm_otel_in_call", default=None)
"""The :class:`Invocation` of the call in progress in this context (None: none is): the HTTP
attempt watcher reports retries and rate-limit headers to it."""


def in_instrumented_call() -> bool:
    """True while an llm_otel-instrumented client call is running in this context."""
    return IN_CALL.get() is not None
