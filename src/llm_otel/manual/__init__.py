"""Manual tracing: spans for workflows, tasks, agents, tools and retrieval, LLM calls made with
clients llm-otel does not patch, and ids that apply to every span of a block."""

from llm_otel.genai._scope import ScopeSpanProcessor, context
from llm_otel.manual._llm import LLMCall, llm_call
from llm_otel.manual._spans import OperationSpan, agent, retrieval, task, tool, workflow

__all__ = [
    "LLMCall",
    "OperationSpan",
    "ScopeSpanProcessor",
    "agent",
    "context",
    "llm_call",
    "retrieval",
    "task",
    "tool",
    "workflow",
]
