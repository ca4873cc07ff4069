"""Names for manual tracing from ``semconv/model/manual.yaml``."""

from typing import Final

__all__ = ["LLM_OTEL_TASK_NAME"]

LLM_OTEL_TASK_NAME: Final = "llm_otel.task.name"
"""Name of a task span (a step inside a workflow; the conventions have no operation for it)."""
