"""Names llm-otel emits that the official semantic conventions lack.

Each constant is defined in the repository's ``semconv/`` registry (OTel Weaver format); a test
keeps this package and the registry in step.
"""

__all__: list[str] = []
