"""Cost names from ``semconv/model/cost.yaml``."""

from typing import Final

__all__ = ["LLM_OTEL_CLIENT_COST", "LLM_OTEL_USAGE_COST"]

LLM_OTEL_USAGE_COST: Final = "llm_otel.usage.cost"
"""Estimated cost of the call in USD, from the price table (span attribute)."""
LLM_OTEL_CLIENT_COST: Final = "llm_otel.client.cost"
"""Estimated cost of LLM calls in USD (counter, unit {USD})."""
