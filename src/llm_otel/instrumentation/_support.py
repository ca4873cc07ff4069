"""Whether the installed client library is one an instrumentation supports."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from llm_otel.genai import GenAITelemetry

__all__ = ["GenAIInstrumentor", "Patches", "retire", "supported", "telemetry_for"]

_logger = logging.getLogger("llm_otel")


def supported(requirements: Collection[str], library: str) -> bool:
    """True when ``requirements`` are met; a missing library is skipped silently, an
    unsupported version with one warning naming the supported range."""
    conflict = get_dependency_conflicts(requirements)
    if conflict is None:
        return True
    if conflict.found is None:
        _logger.debug("%s is not installed; not instrumenting it", library)
    else:
        _logger.warning(
            "%s is installed as %s but llm_otel supports %s; not instrumenting it",
            library,
            conflict.found,
            conflict.required,
        )
    return False


_LIVE: dict[str, list[GenAITelemetry]] = {}


def telemetry_for(library: str, kwargs: dict[str, Any]) -> GenAITelemetry:
    """The telemetry an ``instrument(**kwargs)`` call records to (providers, content policy),
    remembered so that :func:`retire` can switch it off."""
    telemetry = GenAITelemetry(
        tracer_provider=kwargs.get("tracer_provider"),
        meter_provider=kwargs.get("meter_provider"),
        logger_provider=kwargs.get("logger_provider"),
        content=kwargs.get("content_policy"),  # None: the process default, read per call
    )
    _LIVE.setdefault(library, []).append(telemetry)
    return telemetry


def retire(library: str) -> None:
    """On uninstrument: wrappers that outlive it (bound into objects the SDK cached) stop
    recording and pass calls through."""
    for telemetry in _LIVE.pop(library, ()):
        telemetry.active = False


_ABSENT = object()


class Patches:
    """What an instrumentor changed in a client library, undone in reverse order by
    :meth:`restore`. BaseInstrumentor is a singleton whose ``__init__`` runs on every
    construction, so an instrumentor keeps its ``Patches`` as a class attribute."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, Any]] = []  # owner, name, installed, original

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        """``owner.name`` (a class or module attribute) wrapped by a wrapt ``wrapper``."""
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        installed = owner.__dict__[name]
        self._undo.append((owner, name, installed, installed.__wrapped__))

    def replace(self, owner: Any, name: str, value: Any) -> None:
        """``owner.name`` set to ``value``."""
        self._undo.append((owner, name, value, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, value)

    def __bool__(self) -> bool:
        """True while something is patched."""
        return bool(self._undo)

    def restore(self) -> None:
        while self._undo:
            owner, name, installed, original = self._undo.pop()
            # Only our own change is undone: one someone else installed later stays on top.
            if owner.__dict__.get(name) is not installed:
                continue
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


# One lock for every instrumentor: BaseInstrumentor checks "already instrumented" and then
# patches without a lock, so threads racing into instrument() each wrapped the same methods.
_toggle_lock = threading.RLock()


class GenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """BaseInstrumentor whose instrument() and uninstrument() are atomic: any number of threads
    may call them at once and each method is still wrapped once."""

    def instrument(self, **kwargs: Any) -> Any:
        with _toggle_lock:
            return super().instrument(**kwargs)

    def uninstrument(self, **kwargs: Any) -> Any:
        with _toggle_lock:
            return super().uninstrument(**kwargs)
