"""The base of every llm-otel instrumentation: a library, its supported versions and a table of
the SDK methods to wrap, each with the adapter that maps it onto the GenAI core.

    class AcmeInstrumentor(LLMInstrumentor):
        library = "acme"
        requirements = ("acme >= 1.2, < 3",)
        targets = (
            *Target.pair("acme.resources.chat", "Chat", "AsyncChat", ("create",),
                         "._adapters:ChatAdapter"),
        )

The base checks the installed version (a missing library is skipped quietly, an unsupported
one with a warning), builds the telemetry from ``instrument()``'s providers, wraps every target
the installed version has (modules, classes and methods it lacks are skipped: older SDKs), runs
:meth:`LLMInstrumentor.patch` for anything a table cannot say, and undoes all of it on
``uninstrument()``. Adapters are named as ``"module:Class"`` (a leading dot: relative to the
instrumentor's package) and imported only when instrumenting, so importing an instrumentor
imports neither the SDK nor its adapters.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import wrapt

from llm_otel._guard import report_internal_error
from llm_otel.genai import Adapter, GenAITelemetry, async_wrapper, sync_wrapper
from llm_otel.genai._attempts import unwatch_http, watch_http
from llm_otel.instrumentation._support import (
    GenAIInstrumentor,
    Patches,
    retire,
    supported,
    telemetry_for,
)

__all__ = ["FrameworkInstrumentor", "LLMInstrumentor", "Target"]

_MAKERS: dict[str, Callable[[GenAITelemetry, Adapter], Callable[..., Any]]] = {
    "sync": sync_wrapper,
    "async": async_wrapper,
}


@dataclass(frozen=True, slots=True)
class Target:
    """SDK methods to wrap: ``methods`` of class ``owner`` in ``module`` (``owner`` None: the
    module's own functions), recorded through ``adapter`` built with ``options``."""

    module: str
    owner: str | None
    methods: tuple[str, ...]
    adapter: str
    """``"module:Class"``; a leading dot is relative to the instrumentor's package."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the adapter's constructor (``{"streaming": True}``)."""
    kind: Literal["sync", "async"] = "sync"
    """``async``: the methods are coroutine functions. A method that returns an async stream
    without being awaited (an async generator function) is ``sync``: its plain-call wrapper
    proxies the async stream it returns."""
    skip_wrapped: bool = False
    """Leave a function that is already a wrapt wrapper alone (a re-export of one wrapped)."""

    @classmethod
    def pair(
        cls,
        module: str,
        sync_owner: str,
        async_owner: str,
        methods: tuple[str, ...],
        adapter: str,
        **options: Any,
    ) -> tuple[Target, Target]:
        """The usual shape: the same methods on a sync class and its async twin."""
        return (
            cls(module, sync_owner, methods, adapter, options),
            cls(module, async_owner, methods, adapter, options, kind="async"),
        )


class LLMInstrumentor(GenAIInstrumentor):
    """An instrumentor that is a library name, its version ranges and a target table."""

    library: ClassVar[str]
    """The library as users name it (``"google-genai"``): in messages, and the key its
    telemetry is retired under."""
    requirements: ClassVar[Collection[str]]
    """Supported versions, as pip requirements (``package.py``'s ``_instruments``)."""
    targets: ClassVar[tuple[Target, ...]] = ()
    transports: ClassVar[tuple[str, ...]] = ("httpx",)
    """The HTTP stacks the SDK sends through, watched for retries and rate-limit headers
    during recorded calls (``"httpx"``, ``"aiohttp"``, ``"botocore"``)."""
    _patches: ClassVar[Patches]
    _watching: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # BaseInstrumentor is a singleton whose __init__ runs on every construction: what it
        # patched is kept on the class.
        cls._patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.requirements

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.requirements, self.library):
            return
        telemetry = telemetry_for(self.library, kwargs)
        self.wrap(telemetry, self.targets)
        self.patch(telemetry, type(self)._patches)
        if type(self)._patches:
            for transport in self.transports:
                watch_http(transport)
            type(self)._watching = self.transports

    def _uninstrument(self, **kwargs: Any) -> None:
        retire(self.library)
        type(self)._patches.restore()
        for transport in type(self)._watching:
            unwatch_http(transport)
        type(self)._watching = ()

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        """What a target table cannot say (a dispatch wrapper, a property replaced, functions
        re-bound); every change goes through ``patches`` so that uninstrument undoes it."""

    def wrap(self, telemetry: GenAITelemetry, targets: Iterable[Target]) -> int:
        """Wrap every target the installed library has; returns how many methods were wrapped."""
        adapters: dict[tuple[str, tuple[tuple[str, Any], ...]], Adapter] = {}
        wrapped = 0
        for target in targets:
            owner = _owner(target)
            if owner is None:
                continue
            key = (target.adapter, tuple(sorted(target.options.items())))
            for method in target.methods:
                original = getattr(owner, method, None)
                if not callable(original):
                    continue
                if target.skip_wrapped and isinstance(original, wrapt.FunctionWrapper):
                    continue
                adapter = adapters.get(key)
                if adapter is None:
                    adapter = adapters[key] = self._adapter(target)
                type(self)._patches.wrap(owner, method, _MAKERS[target.kind](telemetry, adapter))
                wrapped += 1
        return wrapped

    def _adapter(self, target: Target) -> Adapter:
        module_name, _, class_name = target.adapter.partition(":")
        package = sys.modules[type(self).__module__].__package__
        module = importlib.import_module(module_name, package)
        adapter: Adapter = getattr(module, class_name)(**target.options)
        return adapter


class FrameworkInstrumentor(LLMInstrumentor):
    """An instrumentor that patches a framework when the app imports it (at once if it already
    has): an app that merely has the framework installed does not pay its import time (seconds)
    at start-up. ``patch()`` registers post-import hooks on :attr:`hooked_modules`; each calls
    :meth:`when_imported`, guarded, unless the app has uninstrumented since."""

    hooked_modules: ClassVar[tuple[str, ...]]
    transports: ClassVar[tuple[str, ...]] = ()
    _generation: ClassVar[object | None] = None
    """The current instrument() call; post-import hooks of an earlier one do nothing."""

    @property
    def pending(self) -> bool:
        """Instrumented, waiting for the app to import the framework (nothing patched yet)."""
        return type(self)._generation is not None

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        cls = type(self)
        generation = cls._generation = object()

        def hook(module: Any) -> None:
            if cls._generation is not generation:
                return  # uninstrumented since
            try:
                self.when_imported(module, telemetry, patches)
            except Exception as exc:
                report_internal_error(f"{self.library} instrumentation", exc)

        for module_name in self.hooked_modules:
            wrapt.register_post_import_hook(hook, module_name)

    def when_imported(self, module: Any, telemetry: GenAITelemetry, patches: Patches) -> None:
        """One of :attr:`hooked_modules` was imported: patch it (through ``patches``)."""
        raise NotImplementedError

    def _uninstrument(self, **kwargs: Any) -> None:
        type(self)._generation = None
        super()._uninstrument(**kwargs)


def _owner(target: Target) -> Any:
    """The class or module holding the target's methods, or None where this version lacks it."""
    try:
        module = importlib.import_module(target.module)
    except ImportError:
        return None
    return module if target.owner is None else getattr(module, target.owner, None)
