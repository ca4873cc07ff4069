"""Reading client-library objects that may be SDK models, dicts or omitted-value sentinels."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

__all__ = ["as_int", "as_number", "endpoint", "field", "given", "parse_arguments"]


def given(value: Any) -> bool:
    """False for None and the SDKs' omitted-value sentinels (Omit, NOT_GIVEN, UNSET)."""
    if value is None:
        return False
    return type(value).__name__ not in ("Omit", "NotGiven", "Unset")


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` for an SDK model; ``default`` when absent."""
    if obj is None:
        return default
    value = obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)
    return value if given(value) else default


def as_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as a JSON value when they parse, else the raw string."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def endpoint(url: Any) -> tuple[str | None, int | None]:
    """``server.address`` and ``server.port`` of a base URL string, the scheme's default port
    when it names none; ``host:port`` without a scheme is read too. (None, None) for no URL."""
    if not isinstance(url, str) or not url:
        return None, None
    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None, None
    try:
        port = parts.port
    except ValueError:  # not a number: the host is still worth having
        return parts.hostname, None
    if port is None and parts.scheme:
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port
