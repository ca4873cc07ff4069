"""The Anthropic Messages mapping, for instrumentations of other ways to reach Claude models
with the Messages API body (Bedrock's InvokeModel). This module is the supported way to reuse
it (the ``_``-prefixed modules may change without notice)."""

from llm_otel.instrumentation.anthropic._messages import (
    MessagesAdapter,
    MessagesStreamAccumulator,
    block_parts,
    input_messages,
    request_attributes,
)

__all__ = [
    "MessagesAdapter",
    "MessagesStreamAccumulator",
    "block_parts",
    "input_messages",
    "request_attributes",
]
