"""What the manual API accepts, turned into the conventions' types.

Users write token counts as ``"12"``, a finish reason as ``"stop"``, ids as ints or UUIDs and
messages in the chat-completions shape (``{"role": ..., "content": ...}``); these become what the
conventions define (integers, string arrays, strings, the parts schema). A value that would
record something false (a negative count, a message of unknown shape) is dropped with one
warning naming the argument and the value's type, never the content itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from llm_otel.genai import Message, message, text_part, tool_call_response_part

__all__ = ["as_count", "as_finish_reasons", "as_identifier", "as_messages", "as_parts"]

_logger = logging.getLogger("llm_otel")


def as_count(argument: str, value: Any) -> int | None:
    """A non-negative integer: an int, its digits as text or a whole float; else None, warned."""
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str):
        try:
            count = int(value.strip())
        except ValueError:
            count = None
    if count is None or count < 0:
        _logger.warning("%s=%r is not a non-negative integer; not recorded", argument, value)
        return None
    return count


def as_finish_reasons(value: Any) -> list[str] | None:
    """A string array: one string becomes a one-element array; else None, warned."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    _logger.warning("finish_reasons=%r is not a string or a list of strings; not recorded", value)
    return None


def as_identifier(value: Any) -> str:
    """Ids are strings in the conventions; an int or a UUID is written as its text."""
    return value if isinstance(value, str) else str(value)


def as_messages(argument: str, value: Any) -> list[Message] | None:
    """Messages in the conventions' parts schema. Accepted: a string (one user message), one
    message or a list of them, each either already ``{"role", "parts"}`` or chat-completions
    style ``{"role", "content", "tool_calls", "tool_call_id"}``."""
    items = _items(argument, value)
    if items is None:
        return None
    out: list[Message] = []
    for item in items:
        converted = _message(item)
        if converted is None:
            _refuse(argument, item)
        else:
            out.append(converted)
    return out


def as_parts(argument: str, value: Any) -> list[Message] | None:
    """A list of parts (``gen_ai.system_instructions``): a string, parts, or messages whose
    parts are taken."""
    items = _items(argument, value)
    if items is None:
        return None
    out: list[Message] = []
    for item in items:
        if isinstance(item, Mapping) and "role" in item:
            converted = _message(item)
            parts = converted["parts"] if converted else None
        else:
            parts = _parts(item)
        if parts is None:
            _refuse(argument, item)
        else:
            out.extend(parts)
    return out


def _items(argument: str, value: Any) -> list[Any] | tuple[Any, ...] | None:
    """One value (a string or a mapping) as a list of one; a list or tuple as it is; None for
    None, and for anything else with a warning."""
    if value is None:
        return None
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, (list, tuple)):
        return value
    _refuse(argument, value)
    return None


def _refuse(argument: str, value: Any) -> None:
    # The value's type only: a message's text is content and must not reach the app's logs.
    _logger.warning(
        "%s: a %s is not a message or part this API understands (see docs/manual-tracing.md); "
        "left out",
        argument,
        type(value).__name__,
    )


def _message(item: Any) -> Message | None:
    if isinstance(item, str):
        return message("user", [text_part(item)])
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("parts"), list):
        return dict(item)
    out: Message = {"role": item.get("role", "user")}
    content = item.get("content")
    if out["role"] == "tool" and item.get("tool_call_id") is not None:
        parts: list[Message] = [tool_call_response_part(item["tool_call_id"], content)]
    else:
        converted = _parts(content)
        if converted is None:
            return None
        parts = converted
    for call in item.get("tool_calls") or ():
        part = _tool_call(call)
        if part is None:
            return None
        parts.append(part)
    out["parts"] = parts
    for key in ("name", "finish_reason"):
        if key in item:
            out[key] = item[key]
    return out


def _parts(content: Any) -> list[Message] | None:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, (list, tuple)):
        return None
    parts: list[Message] = []
    for part in content:
        if isinstance(part, str):
            parts.append(text_part(part))
        elif isinstance(part, Mapping) and isinstance(part.get("type"), str):
            if part["type"] == "text" and "content" not in part and "text" in part:
                parts.append(text_part(part["text"]))
            else:
                parts.append(dict(part))
        else:
            return None
    return parts


def _tool_call(call: Any) -> Message | None:
    if not isinstance(call, Mapping):
        return None
    function = call.get("function")
    source = function if isinstance(function, Mapping) else call
    arguments = source.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # not JSON: recorded as the text it is
            arguments = json.loads(arguments)
    part: Message = {"type": "tool_call", "id": call.get("id"), "name": source.get("name")}
    if arguments is not None:
        part["arguments"] = arguments
    return part
