"""``with_raw_response`` / ``with_streaming_response`` results: find the parsed body if it is ours
to read without changing what the application sees."""

from __future__ import annotations

from typing import Any

__all__ = ["unwrap_response"]


def unwrap_response(result: Any) -> Any:
    """The parsed response object, or None when reading it would consume the user's body.

    ``LegacyAPIResponse.parse()`` caches its result, so parsing a non-streamed raw response here
    hands the application the very same object later. A raw stream, or a
    ``with_streaming_response`` body that has not been read yet, is left alone: the span then
    carries the request attributes only.
    """
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        if getattr(result, "_stream", False):
            return None
        return result.parse()
    if name.endswith("APIResponse"):
        return None
    return result
