"""The contract between an instrumentation and the GenAI core: one adapter per SDK operation.

An adapter maps; the core records. ``request()`` describes the call from the SDK method's
arguments, ``response()`` what came back; the other hooks are optional and
:class:`BaseAdapter` gives them their defaults. Adapters never start spans, record metrics or
handle their own failures: the wrapper does, and a hook that raises costs only what that hook
would have described (the call itself is never affected).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from llm_otel.genai._streams import StreamAccumulator
from llm_otel.genai._types import LLMRequest, LLMResponse

__all__ = ["Adapter", "BaseAdapter", "ProxyFactory"]

ProxyFactory = Callable[[Any, type], Any]
"""``proxy(stream, proxy_class)``: the proxy that records ``stream`` as it is consumed."""


class Adapter(Protocol):
    """How one client-library operation maps onto the GenAI core."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        """The request, from the wrapped method's ``self`` and arguments. ``capture``: content
        capture is on (build message content only then)."""
        ...

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        """What a non-streamed call returned."""
        ...

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        """An accumulator when ``result`` is a stream to record as it is consumed, else None."""
        ...

    def embed_stream(self, result: Any, proxy: ProxyFactory) -> Any:
        """For a stream that sits inside the result (botocore's response dict): the result with
        the stream replaced by ``proxy(stream, proxy_class)``. None: the result is the stream."""
        ...

    def body_unread(self, result: Any) -> bool:
        """Whether ``result`` is a raw HTTP response whose body the app reads later (the call
        then ends when it does: ``genai._deferred``, with the SDK's ``parse``/``close`` patched
        to tell the core)."""
        ...

    def error_response(self, exc: BaseException) -> LLMResponse | None:
        """What a failed call's exception says about the response (a request id, ...)."""
        ...

    def error_type(self, exc: BaseException) -> str | None:
        """The ``error.type`` for this SDK's exception (a failed call's, or one raised while a
        stream is read). None: the core's default, the HTTP status an exception carries as
        ``status_code``/``code``, else its class name."""
        ...


class BaseAdapter:
    """Defaults for an adapter's optional hooks: no streams, nothing read from errors."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        raise NotImplementedError

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        raise NotImplementedError

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        return None

    def embed_stream(self, result: Any, proxy: ProxyFactory) -> Any:
        return None

    def body_unread(self, result: Any) -> bool:
        return False

    def error_response(self, exc: BaseException) -> LLMResponse | None:
        return None

    def error_type(self, exc: BaseException) -> str | None:
        return None
