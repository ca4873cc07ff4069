"""OpenTelemetry instrumentation for Amazon Bedrock Runtime through ``boto3`` / ``botocore``.

``converse``, ``converse_stream``, ``invoke_model`` and ``invoke_model_with_response_stream`` on
any ``bedrock-runtime`` client, with ``gen_ai.provider.name = aws.bedrock``. The one place all
botocore calls pass, ``BaseClient._make_api_call``, is wrapped, so clients created before
``instrument()`` are covered too; every other service and operation passes straight through.

    from llm_otel.instrumentation.bedrock import BedrockInstrumentor
    BedrockInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any

from llm_otel.genai import GenAITelemetry, sync_wrapper
from llm_otel.instrumentation._base import LLMInstrumentor
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.bedrock.package import _instruments

__all__ = ["BedrockInstrumentor"]

SERVICE = "bedrock-runtime"


def _service(client: Any) -> str | None:
    try:
        return str(client.meta.service_model.service_name)
    except Exception:
        return None


class BedrockInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Bedrock model call."""

    library = "botocore"
    requirements = _instruments
    transports = ("botocore",)

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # One dispatch wrapper on the method every botocore call passes: a target table cannot
        # say "this operation of this service".
        from botocore.client import BaseClient

        from llm_otel.instrumentation.bedrock._converse import ConverseAdapter
        from llm_otel.instrumentation.bedrock._invoke import InvokeAdapter

        handlers = {
            "Converse": sync_wrapper(telemetry, ConverseAdapter()),
            "ConverseStream": sync_wrapper(telemetry, ConverseAdapter(streaming=True)),
            "InvokeModel": sync_wrapper(telemetry, InvokeAdapter()),
            "InvokeModelWithResponseStream": sync_wrapper(telemetry, InvokeAdapter(streaming=True)),
        }

        def make_api_call(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            handler = handlers.get(args[0]) if args else None
            if handler is None or _service(instance) != SERVICE:
                return wrapped(*args, **kwargs)
            return handler(wrapped, instance, args, kwargs)

        patches.wrap(BaseClient, "_make_api_call", make_api_call)
