"""An app that sets up llm_otel one way or another, then sends personal data to the model.

    python -m tests.apps.redaction_app configure|configure-twice|instrumentor|plain

``plain`` sets nothing up itself (run it under ``opentelemetry-instrument``); the others call
``configure()`` (once, or twice with the redactor only the second time) or instrument OpenAI
with their own providers. Every way asks for content capture with the built-in redactor.
"""

from __future__ import annotations

import os
import sys

import openai

import llm_otel
from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.redaction import PatternRedactor

PROMPT = "My card is 4111 1111 1111 1111 and my mail is jane.doe@example.com"


def _own_providers() -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"))
    )
    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        content_policy=ContentPolicy(ContentMode.SPAN_AND_EVENT, redactor=PatternRedactor()),
    )


def main() -> None:
    way = sys.argv[1]
    settings = {"capture_content": "SPAN_AND_EVENT", "content_redactor": PatternRedactor()}
    configuration = None
    if way == "configure":
        configuration = llm_otel.configure(service_name="redacted-app", **settings)
    elif way == "configure-twice":
        llm_otel.configure(service_name="redacted-app")
        configuration = llm_otel.configure(**settings)
    elif way == "instrumentor":
        _own_providers()
    client = openai.OpenAI(max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
        pass
    if configuration is not None:
        configuration.force_flush()


if __name__ == "__main__":
    main()
