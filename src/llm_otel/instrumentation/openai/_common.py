"""Helpers every OpenAI adapter uses: reading SDK objects or dicts, the client's address."""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues

from llm_otel.genai import text_part
from llm_otel.instrumentation._fields import (
    as_int,
    as_number,
    client_endpoint,
    field,
    given,
    parse_arguments,
)

__all__ = [
    "as_int",
    "as_number",
    "client_identity",
    "field",
    "given",
    "output_schema",
    "parse_arguments",
    "text_parts",
]


def text_parts(content: Any) -> list[dict[str, Any]]:
    """Map OpenAI message content (a string or a list of typed parts) to semconv parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, (list, tuple)) else [content]:
        kind = field(part, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(field(part, "text", "")))
        elif kind == "refusal":
            parts.append(text_part(field(part, "refusal", "")))
        elif kind in ("image_url", "input_image"):
            url = field(part, "image_url")
            url = field(url, "url") if not isinstance(url, str) else url
            parts.append(_media_part("image", url, field(part, "file_id")))
        elif kind == "input_audio":
            audio = field(part, "input_audio")
            parts.append(
                {
                    "type": "blob",
                    "modality": "audio",
                    "mime_type": f"audio/{field(audio, 'format', 'wav')}",
                    "content": field(audio, "data", ""),
                }
            )
        elif kind in ("file", "input_file"):
            file = field(part, "file", part)
            parts.append({"type": "file", "file_id": field(file, "file_id")})
        else:
            parts.append({"type": str(kind), "content": part})
    return parts


def _media_part(modality: str, url: str | None, file_id: str | None) -> dict[str, Any]:
    if file_id:
        return {"type": "file", "modality": modality, "file_id": file_id}
    if url and url.startswith("data:") and ";base64," in url:
        header, data = url.split(",", 1)
        return {
            "type": "blob",
            "modality": modality,
            "mime_type": header[5:].split(";", 1)[0],
            "content": data,
        }
    return {"type": "uri", "modality": modality, "uri": url}


# An enum member's ``value`` is a Python-level property (two frames a read): read once here.
_OPENAI = GenAiProviderNameValues.OPENAI.value
_AZURE_OPENAI = GenAiProviderNameValues.AZURE_AI_OPENAI.value


def client_identity(resource: Any) -> tuple[str, str | None, int | None]:
    """Provider name and server address/port of the client a resource belongs to."""
    client = getattr(resource, "_client", None)
    provider = _OPENAI
    if client is not None and "Azure" in type(client).__name__:
        provider = _AZURE_OPENAI
    return provider, *client_endpoint(client)


def output_schema(response_format: Any) -> Any:
    """The JSON schema of a ``json_schema`` response format (or a pydantic model's), else None."""
    if field(response_format, "type") == "json_schema":
        schema = field(field(response_format, "json_schema"), "schema")
        return schema if isinstance(schema, dict) else None
    if isinstance(response_format, type) and hasattr(response_format, "model_json_schema"):
        return response_format.model_json_schema()
    return None
