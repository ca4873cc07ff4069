"""Reading client-library objects that may be SDK models, dicts or omitted-value sentinels."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

__all__ = [
    "as_index",
    "as_int",
    "as_number",
    "as_text",
    "client_endpoint",
    "endpoint",
    "field",
    "finish_reason",
    "given",
    "items",
    "parameter_names",
    "parameters",
    "parse_arguments",
    "reader",
    "stop_sequences",
]

Parameter = tuple[str | tuple[str, ...], str, Callable[[Any], Any]]
"""(argument name, or names tried in order; semconv attribute; converter returning None to skip)"""


_SENTINELS = frozenset({"Omit", "NotGiven", "Unset"})


def given(value: Any) -> bool:
    """False for None and the SDKs' omitted-value sentinels (Omit, NOT_GIVEN, UNSET)."""
    return value is not None and type(value).__name__ not in _SENTINELS


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` for an SDK model; ``default`` when absent."""
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    # given(), inlined: adapters read a dozen fields per call
    if value is None or type(value).__name__ in _SENTINELS:
        return default
    return value


def reader(obj: Any, probe: str) -> Callable[[str], Any]:
    """``get(name)`` for the fields of one response object, for adapters that read several:
    a dict's own ``get``, or an SDK model's ``__dict__.get`` (pydantic keeps declared fields
    there) when that holds ``probe``, a field the model always declares, and the model holds no
    undeclared fields (pydantic keeps those in ``__pydantic_extra__``); :func:`field` for any
    other object. A name absent (or None) reads None; values are as sent (check their type)."""
    if type(obj) is dict:
        return obj.get
    data = getattr(obj, "__dict__", None)
    if type(data) is dict and probe in data and not getattr(obj, "__pydantic_extra__", None):
        return data.get
    return partial(field, obj)


def as_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def as_index(value: Any) -> int:
    """A position (choice, content block, tool call) as a server sent it; 0 when absent or of
    the wrong type, so it can always key a dict and be sorted."""
    return as_int(value) or 0


def items(value: Any) -> list[Any] | tuple[Any, ...]:
    """A JSON array field; ``()`` for anything else (absent, a number, a string, an object)."""
    return value if isinstance(value, (list, tuple)) else ()


def as_text(value: Any) -> str | None:
    """A string field; None for anything else."""
    return value if isinstance(value, str) else None


def finish_reason(reason: Any, names: Mapping[str, str]) -> str | None:
    """A provider's finish reason in the conventions' words (``names`` maps those that differ:
    ``end_turn`` → ``stop``); one without a mapping as it is; None for no reason."""
    if not isinstance(reason, str) or not reason:
        return None
    return names.get(reason, reason)


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


_ENDPOINTS: dict[int, tuple[Any, str | None, int | None]] = {}
_MAX_ENDPOINTS = 256


def client_endpoint(client: Any) -> tuple[str | None, int | None]:
    """``server.address`` and ``server.port`` of a Stainless-made client (openai, anthropic,
    groq, ...), from the URL its ``base_url`` property returns, worked out once per URL object
    the client holds (a client whose base URL is set anew holds a new one). (None, None)
    without one.

    The held object (``_configured_base_url`` in openai 3.6x, ``_base_url`` before and in the
    other Stainless SDKs) is read from the client's ``__dict__``: openai 3.6x's ``_base_url``
    and ``base_url`` are properties, one calling the other, that import a module on every read
    (~12k instructions a call)."""
    held = getattr(client, "__dict__", None)
    key = None
    if type(held) is dict:
        key = held.get("_configured_base_url")
        if key is None:
            key = held.get("_base_url")
    url = None
    if key is None:  # no such attribute: the URL the property returns is the key
        key = url = _base_url(client)
        if key is None:
            return None, None
    cached = _ENDPOINTS.get(id(key))
    if cached is not None and cached[0] is key:  # the entry holds it: its id is not reused
        return cached[1], cached[2]
    if url is None:
        url = _base_url(client)
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None:
        scheme = getattr(url, "scheme", "")
        port = 443 if scheme == "https" else 80 if scheme == "http" else None
    if len(_ENDPOINTS) >= _MAX_ENDPOINTS:  # bounded: clients are few; a churn of them is not
        _ENDPOINTS.clear()
    _ENDPOINTS[id(key)] = (key, host, port)
    return host, port


def _base_url(client: Any) -> Any:
    """The client's base URL as its properties (or plain attributes) give it; None without."""
    url = getattr(client, "_base_url", None)
    return url if url is not None else getattr(client, "base_url", None)


def stop_sequences(value: Any) -> list[str] | None:
    """``gen_ai.request.stop_sequences`` from a non-empty list (or tuple) of stop strings."""
    if isinstance(value, (list, tuple)) and value:
        return [str(s) for s in value]
    return None


_TABLE_NAMES: dict[int, tuple[Iterable[Parameter], frozenset[str]]] = {}


def parameter_names(table: Iterable[Parameter]) -> frozenset[str]:
    """Every argument name ``table`` reads (tables are module constants: kept per table)."""
    cached = _TABLE_NAMES.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    names = frozenset(
        name for names, _, _ in table for name in ((names,) if isinstance(names, str) else names)
    )
    if isinstance(table, tuple):  # a list could change under us: not kept
        if len(_TABLE_NAMES) >= 256:
            _TABLE_NAMES.clear()
        _TABLE_NAMES[id(table)] = (table, names)
    return names


def parameters(
    source: Any, table: Iterable[Parameter], stop: str | None = None
) -> dict[str, AttributeValue]:
    """Request attributes read from ``source`` (keyword arguments, a config dict or SDK object):
    each row's first argument its converter accepts, and the stop sequences under ``stop``."""
    attrs: dict[str, AttributeValue] = {}
    keyword = isinstance(source, dict)  # keyword arguments: most rows name one not passed
    if keyword and source.keys().isdisjoint(parameter_names(table)):
        table = ()  # none passed (the common call: model and messages): no row to try
    for names, key, convert in table:
        for name in (names,) if isinstance(names, str) else names:
            if keyword and name not in source:
                continue
            value = convert(field(source, name))
            if value is not None:
                attrs[key] = value
                break
    sequences = stop_sequences(field(source, stop)) if stop is not None else None
    if sequences:
        attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = sequences
    return attrs
