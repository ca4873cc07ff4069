"""Shutting telemetry down in a bounded time, at exit or when asked.

Each SDK provider registers its own atexit handler that exports what is left, retrying an
unreachable Collector with backoff and waiting up to the exporter's timeout (10 s) per request:
an app whose Collector is down took 14-20 s to exit, 30 s more when a Collector accepted the
connection and never answered. ``configure()`` and the zero-code configurator replace those
handlers with one that shuts every provider down in parallel and stops waiting after
``LLM_OTEL_SHUTDOWN_TIMEOUT`` seconds in total (default :data:`DEFAULT_TIMEOUT`): what was
exported by then is exported, the rest is dropped with one warning, and the app exits.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from llm_otel._env import warn_once
from llm_otel.genai import close_call_observer, drain_abandoned
from llm_otel.training import end_unfinished_runs

__all__ = [
    "DEFAULT_TIMEOUT",
    "TIMEOUT_ENV",
    "forget_at_exit",
    "set_timeout",
    "shutdown_at_exit",
    "shutdown_within",
    "timeout",
]

_logger = logging.getLogger("llm_otel")

DEFAULT_TIMEOUT = 3.0
"""Seconds the app waits for its telemetry at exit, all providers together."""
TIMEOUT_ENV = "LLM_OTEL_SHUTDOWN_TIMEOUT"

_configured: float | None = None  # configure(shutdown_timeout=...); None: the environment's


def parse_timeout(value: Any, source: str) -> float | None:
    """Seconds as a non-negative number (or its text); None, with one warning, otherwise."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        warn_once(
            source, value, "%s=%r is not a non-negative number of seconds; using %s s",
            DEFAULT_TIMEOUT,
        )  # fmt: skip
        return None
    return seconds


def set_timeout(value: float | str | None) -> None:
    """``configure(shutdown_timeout=...)``: None leaves the current setting."""
    global _configured
    if value is not None:
        _configured = parse_timeout(value, "shutdown_timeout")


def timeout() -> float:
    """The shutdown budget in seconds: configure()'s, else the environment's, else the default."""
    if _configured is not None:
        return _configured
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    seconds = parse_timeout(raw, TIMEOUT_ENV)
    return DEFAULT_TIMEOUT if seconds is None else seconds


def shutdown_within(
    providers: Sequence[Any],
    after: Sequence[Callable[[], object]] = (),
    seconds: float | None = None,
) -> bool:
    """Shut the SDK ``providers`` down in parallel daemon threads, then run ``after`` (stopping
    NVML once the final metric export has read the GPUs), waiting at most ``seconds`` (default
    :func:`timeout`) in total. True when everything finished in time; a provider still waiting
    on the network is left behind, and the process may exit under it."""
    budget = timeout() if seconds is None else seconds
    deadline = time.monotonic() + budget
    drain_abandoned()  # streams abandoned unfinished are recorded before the final export
    end_unfinished_runs()  # so are training runs a raising loop left open
    close_call_observer(budget / 3)  # and the online evaluations of calls already made
    finished = _run_until(deadline, [_stopper(p, budget) for p in providers])
    finished = _run_until(deadline, after) and finished
    if not finished:
        _logger.warning(
            "telemetry shutdown did not finish within %g s (is the Collector reachable?): "
            "what was not exported yet is dropped; %s sets how long to wait",
            budget,
            TIMEOUT_ENV,
        )
    return finished


def _stopper(provider: Any, budget: float) -> Callable[[], object]:
    if isinstance(provider, MeterProvider):  # its shutdown takes a timeout; the others do not
        return lambda: provider.shutdown(timeout_millis=budget * 1000)
    return provider.shutdown  # type: ignore[no-any-return]


def _run_until(deadline: float, steps: Sequence[Callable[[], object]]) -> bool:
    threads = [
        threading.Thread(target=_run, args=(step,), name="llm-otel-shutdown", daemon=True)
        for step in steps
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _run(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as exc:  # a provider that fails to shut down must not stop the others
        _logger.warning("telemetry shutdown step failed: %s", type(exc).__qualname__)


_lock = threading.Lock()
_exit_providers: dict[int, Any] = {}
_exit_after: list[Callable[[], object]] = []
_registered = False


def shutdown_at_exit(providers: Sequence[Any], after: Sequence[Callable[[], object]] = ()) -> None:
    """Shut these down at exit, within the budget: instead of the SDK providers' own atexit
    handlers (unbounded), which are unregistered here. ``atexit.unregister`` matches the bound
    method the SDK registered."""
    global _registered
    with _lock:
        for provider in providers:
            atexit.unregister(provider.shutdown)
            _exit_providers[id(provider)] = provider
        _exit_after.extend(step for step in after if step not in _exit_after)
        if not _registered:
            atexit.register(_at_exit)
            _registered = True


def forget_at_exit(providers: Sequence[Any], after: Sequence[Callable[[], object]] = ()) -> None:
    """Already shut down explicitly: nothing left to do for these at exit."""
    with _lock:
        for provider in providers:
            _exit_providers.pop(id(provider), None)
        _exit_after[:] = [step for step in _exit_after if step not in after]


def _at_exit() -> None:
    with _lock:
        providers = list(_exit_providers.values())
        after = list(_exit_after)
        _exit_providers.clear()
        _exit_after.clear()
    if providers or after:
        shutdown_within(providers, after)
