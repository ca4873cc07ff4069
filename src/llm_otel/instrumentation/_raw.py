"""Raw results of the Stainless SDKs (openai, anthropic, groq): ``with_raw_response`` and
``with_streaming_response``. Find the parsed body if it is ours to read without changing what the
application sees."""

from __future__ import annotations

from typing import Any

__all__ = ["unwrap_response"]


def unwrap_response(result: Any) -> Any:
    """The parsed response object, or None when reading it would consume the user's body.

    ``parse()`` caches its result, so parsing a non-streamed raw response here hands the
    application the very same object later. A raw stream, or a
    ``with_streaming_response`` body that has not been read yet, is left alone: the span then
    carries the request attributes only.
    """
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        if getattr(result, "_stream", False):
            return None
        return result.parse()
    if name.endswith("APIResponse"):
        # ``with_raw_response`` on newer SDKs: the body of a non-streamed call is already read
        # (its HTTP response is closed) and parse() caches, so reading it here is free for the
        # caller. A stream, or a ``with_streaming_response`` body not yet read, is left alone.
        if getattr(result, "_is_sse_stream", True):
            return None
        http_response = getattr(result, "http_response", None)
        if getattr(http_response, "is_closed", False) is not True:
            return None
        return result.parse()
    return result
