"""Message parts in the conventions' schema (``gen_ai.input.messages``, ``.output.messages``,
``.system_instructions``), built by typed constructors rather than dict literals: a misspelt key
or a missing field is a type error (and a test failure), not a silently wrong attribute.

    message("assistant", [text_part("Hi"), tool_call_part("c1", "add", {"a": 1})], "tool_call")
"""

from __future__ import annotations

from typing import Any, Literal

from llm_otel.genai._types import Message

__all__ = [
    "Modality",
    "blob_part",
    "file_part",
    "message",
    "reasoning_part",
    "text_part",
    "tool_call_part",
    "tool_call_response_part",
    "uri_part",
]

Modality = Literal["image", "video", "audio"]


def text_part(content: Any) -> Message:
    return {"type": "text", "content": content}


def reasoning_part(content: Any) -> Message:
    return {"type": "reasoning", "content": content}


def tool_call_part(call_id: Any, name: Any, arguments: Any = None) -> Message:
    """A tool call the model asked for; ``arguments`` parsed from JSON where they were text."""
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def tool_call_response_part(call_id: Any, response: Any) -> Message:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def blob_part(modality: Modality | str, content: Any, mime_type: str | None = None) -> Message:
    """Inline data (base64 text)."""
    part: Message = {"type": "blob", "modality": modality, "content": content}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def uri_part(modality: Modality | str, uri: Any, mime_type: str | None = None) -> Message:
    part: Message = {"type": "uri", "modality": modality, "uri": uri}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def file_part(file_id: Any, modality: Modality | str | None = None) -> Message:
    """A file uploaded to the provider, by id."""
    part: Message = {"type": "file", "file_id": file_id}
    if modality:
        part["modality"] = modality
    return part


def message(role: Any, parts: list[Message], finish_reason: Any = None) -> Message:
    """One message; ``finish_reason`` for output messages (the conventions require it there)."""
    out: Message = {"role": role, "parts": parts}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out
