"""Provider-neutral description of one LLM request and its outcome.

Adapters fill these from a client library's arguments and responses; the invocation turns them
into span attributes, metric points and content. Message content is already in the semantic
conventions' message schema (``{"role": ..., "parts": [...]}``) and is only built when content
capture is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.util.types import AttributeValue

__all__ = ["LLMRequest", "LLMResponse", "Message"]

Message = dict[str, Any]
"""One message (or part list) in the semantic conventions' JSON schema."""


@dataclass(slots=True)
class LLMRequest:
    """What the application asked for: identity, request parameters and, optionally, content."""

    operation: str
    provider: str
    model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    stream: bool = False
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    """Request parameters as semconv attributes (temperature, max_tokens, seed, ...)."""
    input_messages: list[Message] | None = None
    system_instructions: list[Message] | None = None
    """A list of parts, as the conventions define ``gen_ai.system_instructions``."""
    tool_definitions: list[Any] | None = None
    output_schema: Any = None
    """The JSON schema the output was asked to follow (a dict), filled with the content: for
    online evaluation, never recorded."""


@dataclass(slots=True)
class LLMResponse:
    """What came back: identity, usage, finish reasons and, optionally, output content."""

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    output_messages: list[Message] | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    """Extra response attributes (provider specific, e.g. ``openai.response.service_tier``)."""
