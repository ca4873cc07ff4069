"""One package per instrumented client library; each is a thin adapter onto ``llm_otel.genai``."""

__all__: list[str] = []
