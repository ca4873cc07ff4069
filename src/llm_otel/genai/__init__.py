"""The provider-neutral GenAI core: invocations, content rules and stream proxies.

Provider instrumentations are thin adapters onto this package: they describe a request as an
:class:`LLMRequest`, start an :class:`Invocation`, and describe the response (or the stream's
items, through a :class:`StreamAccumulator`) as an :class:`LLMResponse`.
"""

from llm_otel.genai._abandoned import drain_abandoned
from llm_otel.genai._content import (
    ContentMode,
    ContentPolicy,
    Redactor,
    default_policy,
    policy_from_env,
    set_default_policy,
)
from llm_otel.genai._invocation import OPERATION_DETAILS_EVENT, Invocation, error_type_of
from llm_otel.genai._streams import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy
from llm_otel.genai._telemetry import DURATION_BUCKETS, TOKEN_BUCKETS, GenAITelemetry
from llm_otel.genai._types import LLMRequest, LLMResponse, Message

__all__ = [
    "DURATION_BUCKETS",
    "OPERATION_DETAILS_EVENT",
    "TOKEN_BUCKETS",
    "AsyncStreamProxy",
    "ContentMode",
    "ContentPolicy",
    "GenAITelemetry",
    "Invocation",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "Redactor",
    "StreamAccumulator",
    "SyncStreamProxy",
    "default_policy",
    "drain_abandoned",
    "error_type_of",
    "policy_from_env",
    "set_default_policy",
]
