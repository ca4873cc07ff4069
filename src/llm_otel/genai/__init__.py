"""The provider-neutral GenAI core: invocations, content rules and stream proxies, and the
adapter API instrumentations are written against.

Provider instrumentations are thin adapters onto this package: an :class:`Adapter` (most
subclass :class:`BaseAdapter`) describes a request as an :class:`LLMRequest` and the response
(or the stream's items, through a :class:`StreamAccumulator`) as an :class:`LLMResponse`;
:func:`sync_wrapper` / :func:`async_wrapper` turn an adapter into the wrapt wrapper that records
the call. Adapters import from here and from ``llm_otel.instrumentation``, nothing private.
"""

from llm_otel._guard import guarded
from llm_otel.genai._abandoned import drain_abandoned
from llm_otel.genai._adapter import Adapter, BaseAdapter, ProxyFactory
from llm_otel.genai._content import (
    ContentMode,
    ContentPolicy,
    Redactor,
    default_policy,
    policy_from_env,
    set_default_policy,
)
from llm_otel.genai._gauges import gauge_callback, set_gauge_source
from llm_otel.genai._incall import in_instrumented_call
from llm_otel.genai._invocation import OPERATION_DETAILS_EVENT, Invocation, error_type_of
from llm_otel.genai._observe import (
    CallObserver,
    CompletedCall,
    call_observer,
    close_call_observer,
    current_call_observer,
    set_call_observer,
)
from llm_otel.genai._parts import (
    blob_part,
    file_part,
    message,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_call_response_part,
    uri_part,
)
from llm_otel.genai._streams import (
    AsyncStreamProxy,
    IterableStreamProxy,
    StreamAccumulator,
    SyncStreamProxy,
)
from llm_otel.genai._telemetry import DURATION_BUCKETS, TOKEN_BUCKETS, GenAITelemetry
from llm_otel.genai._types import LLMRequest, LLMResponse, Message
from llm_otel.genai._wrapper import async_wrapper, sync_wrapper

__all__ = [
    "DURATION_BUCKETS",
    "OPERATION_DETAILS_EVENT",
    "TOKEN_BUCKETS",
    "Adapter",
    "AsyncStreamProxy",
    "BaseAdapter",
    "CallObserver",
    "CompletedCall",
    "ContentMode",
    "ContentPolicy",
    "GenAITelemetry",
    "Invocation",
    "IterableStreamProxy",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "ProxyFactory",
    "Redactor",
    "StreamAccumulator",
    "SyncStreamProxy",
    "async_wrapper",
    "blob_part",
    "call_observer",
    "close_call_observer",
    "current_call_observer",
    "default_policy",
    "drain_abandoned",
    "error_type_of",
    "file_part",
    "gauge_callback",
    "guarded",
    "in_instrumented_call",
    "message",
    "policy_from_env",
    "reasoning_part",
    "set_call_observer",
    "set_default_policy",
    "set_gauge_source",
    "sync_wrapper",
    "text_part",
    "tool_call_part",
    "tool_call_response_part",
    "uri_part",
]
