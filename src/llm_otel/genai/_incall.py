"""Whether an llm_otel-recorded model call is in progress in this context.

Set by the wrappers for the duration of the client call, and by the stream proxies while they pull
their first item (a library may send its request lazily, on the first pull: LiteLLM's async
streams do; later pulls read a response already under way). A call made meanwhile (a wrapper
library calling an instrumented client) is part of the recorded one and passes through without a
span of its own.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["IN_CALL", "IN_OTHER_CALL", "in_instrumented_call"]

IN_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("llm_otel_in_call", default=None)
"""The :class:`Invocation` of the call in progress in this context (None: none is): the HTTP
attempt watcher reports retries and rate-limit headers to it."""


IN_OTHER_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "llm_otel_in_other_call", default=False
)
"""True while llm_otel records a client call that is not a model call (a provider batch's
lifecycle call): the SDK's own tracing is muted then too."""


def in_instrumented_call() -> bool:
    """True while an llm_otel-instrumented client call is running in this context (for an SDK
    whose own tracing is to be muted meanwhile: one span per call, ours)."""
    return IN_CALL.get() is not None or IN_OTHER_CALL.get()
