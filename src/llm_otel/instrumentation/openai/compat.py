"""The OpenAI Chat Completions and Embeddings mapping, for instrumentations of SDKs that speak
the same API (Groq, Mistral, LiteLLM, Bedrock's OpenAI-format models). Subclass the adapters
to change the provider name or read provider-specific fields; this module is the supported
way to reuse them (the ``_``-prefixed modules may change without notice)."""

from llm_otel.instrumentation.openai._chat import (
    ChatAdapter,
    ChatStreamAccumulator,
    input_messages,
    request_attributes,
    tool_call_parts,
    usage_into,
)
from llm_otel.instrumentation.openai._embeddings import EmbeddingsAdapter

__all__ = [
    "ChatAdapter",
    "ChatStreamAccumulator",
    "EmbeddingsAdapter",
    "input_messages",
    "request_attributes",
    "tool_call_parts",
    "usage_into",
]
