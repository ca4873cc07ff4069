"""``configure(evaluators=..., evaluation_sample_rate=..., drift=...)`` and their environment
variables."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable
from typing import Any

from llm_otel.genai import current_call_observer, set_call_observer, set_gauge_source
from llm_otel.quality._builtin import BUILTIN
from llm_otel.quality._drift import DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW, Drift, DriftMonitor
from llm_otel.quality._evaluator import Evaluator, FunctionEvaluator
from llm_otel.quality._runner import EvaluationRunner
from llm_otel.semconv.evaluation import LLM_OTEL_DRIFT_DIVERGENCE, LLM_OTEL_DRIFT_EMBEDDING_DISTANCE

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DRIFT_BASELINE_ENV",
    "DRIFT_ENV",
    "DRIFT_MIN_SAMPLES_ENV",
    "DRIFT_WINDOW_ENV",
    "EVALUATORS_ENV",
    "SAMPLE_RATE_ENV",
    "configure_evaluation",
    "drift_from_env",
    "parse_drift",
    "parse_evaluators",
    "parse_sample_rate",
    "pin_drift_baseline",
]

_logger = logging.getLogger("llm_otel")
EVALUATORS_ENV = "LLM_OTEL_EVALUATORS"
SAMPLE_RATE_ENV = "LLM_OTEL_EVALUATION_SAMPLE_RATE"
DRIFT_ENV = "LLM_OTEL_DRIFT"
DRIFT_BASELINE_ENV = "LLM_OTEL_DRIFT_BASELINE"
DRIFT_WINDOW_ENV = "LLM_OTEL_DRIFT_WINDOW"
DRIFT_MIN_SAMPLES_ENV = "LLM_OTEL_DRIFT_MIN_SAMPLES"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_SAMPLE_RATE = 0.1
_OFF = ("", "none", "off", "false", "0", "no")
_ALL = ("default", "all", "builtin", "true", "on", "1", "yes")
_lock = threading.Lock()


def parse_evaluators(value: Any, source: str) -> list[Evaluator]:
    """Evaluators from what a user writes: evaluator objects, built-in names (``"refusal"``,
    ``"default"`` for all of them, comma-separated in a string), True/False, plain functions
    (named after the function). What is not understood is named in one warning and skipped."""
    if value is None or value is False:
        return []
    if value is True:
        value = "default"
    items: Iterable[Any]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, Evaluator) or callable(value):
        items = [value]
    else:
        items = value
    chosen: list[Evaluator] = []
    unknown: list[str] = []
    for item in items:
        found = _one(item)
        if found is None:
            unknown.append(repr(item) if isinstance(item, str) else type(item).__name__)
        else:
            chosen += found
    if unknown:
        _logger.warning(
            "%s: %s not understood and left out; give Evaluator objects, functions, or the "
            "built-in names %s (or 'default' for all of them)",
            source, ", ".join(unknown), ", ".join(BUILTIN),
        )  # fmt: skip
    names: dict[str, Evaluator] = {}
    for evaluator in chosen:  # one evaluator per name: a later one replaces an earlier one
        names[evaluator.name] = evaluator
    return list(names.values())


def _one(item: Any) -> list[Evaluator] | None:
    """The evaluators one item names (None: not understood)."""
    if isinstance(item, Evaluator):
        return [item]
    if item is True or (isinstance(item, str) and item.strip().lower() in _ALL):
        return [make() for make in BUILTIN.values()]
    if isinstance(item, str):
        name = item.strip().lower()
        if name in BUILTIN:
            return [BUILTIN[name]()]
        return [] if name in _OFF else None
    if callable(item):
        return [FunctionEvaluator(getattr(item, "__name__", "evaluator"), item)]
    return [] if item is None or item is False else None


def parse_sample_rate(value: Any, source: str) -> float:
    """A share of calls in [0, 1] (a number or a numeric string; "10%" too); else one
    warning and the default."""
    rate: float | None = None
    try:
        if isinstance(value, str):
            text = value.strip()
            rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        elif not isinstance(value, bool):
            rate = float(value)
    except (TypeError, ValueError):
        rate = None
    if rate is None or not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        _logger.warning("%s=%r is not a share of calls between 0 and 1; using %g",
                        source, value, DEFAULT_SAMPLE_RATE)  # fmt: skip
        return DEFAULT_SAMPLE_RATE
    return rate


def parse_drift(value: Any, source: str) -> Drift | None:
    """Drift settings from what a user writes: a :class:`Drift`, True/False (or "on"/"off"), a
    baseline file path (a ``pathlib.Path``), or a dict of :class:`Drift` arguments. What is not
    understood gets one warning and leaves drift off."""
    if isinstance(value, Drift):
        return value
    if value is True or (isinstance(value, str) and value.strip().lower() in _ALL):
        return Drift()
    if (
        value is None
        or value is False
        or (isinstance(value, str) and value.strip().lower() in _OFF)
    ):
        return None
    try:
        if isinstance(value, os.PathLike):
            return Drift(baseline=value)
        if isinstance(value, dict):
            return Drift(**value)
    except (TypeError, ValueError) as exc:
        _logger.warning("%s: %s; drift is off", source, exc)
        return None
    _logger.warning("%s=%r not understood; give True, a Drift(...), a baseline path "
                    "(pathlib.Path) or a dict of Drift arguments; drift is off",
                    source, value)  # fmt: skip
    return None


def _seconds(raw: str) -> float:
    text = raw.strip().lower()
    unit = _UNITS.get(text[-1:], 0) if text else 0
    seconds = float(text[:-1]) * unit if unit else float(text)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(raw)
    return seconds


def drift_from_env() -> Drift | None:
    """``LLM_OTEL_DRIFT`` (on/off), ``LLM_OTEL_DRIFT_BASELINE`` (a file; turns drift on),
    ``LLM_OTEL_DRIFT_WINDOW`` (seconds, or 30m, 1h, 1d), ``LLM_OTEL_DRIFT_MIN_SAMPLES``."""
    flag = os.environ.get(DRIFT_ENV, "").strip().lower()
    baseline = os.environ.get(DRIFT_BASELINE_ENV, "").strip() or None
    if (flag == "" and baseline is None) or (flag != "" and flag in _OFF):
        return None
    if flag != "" and flag not in _ALL:
        _logger.warning("%s=%r is not on or off; drift is off", DRIFT_ENV, flag)
        return None
    window, min_samples = DEFAULT_WINDOW, DEFAULT_MIN_SAMPLES
    raw = os.environ.get(DRIFT_WINDOW_ENV, "").strip()
    if raw:
        try:
            window = _seconds(raw)
        except ValueError:
            _logger.warning("%s=%r is not a duration (3600, 30m, 1h, 1d); using %gs",
                            DRIFT_WINDOW_ENV, raw, DEFAULT_WINDOW)  # fmt: skip
    raw = os.environ.get(DRIFT_MIN_SAMPLES_ENV, "").strip()
    if raw:
        try:
            min_samples = int(raw)
            if min_samples < 1:
                raise ValueError(raw)
        except ValueError:
            min_samples = DEFAULT_MIN_SAMPLES
            _logger.warning("%s=%r is not a positive integer; using %d",
                            DRIFT_MIN_SAMPLES_ENV, raw, DEFAULT_MIN_SAMPLES)  # fmt: skip
    return Drift(window=window, min_samples=min_samples, baseline=baseline)


def configure_evaluation(
    evaluators: Any = None, sample_rate: Any = None, drift: Any = None
) -> EvaluationRunner | None:
    """Install (or replace, or remove) the online evaluation runner. Left out, ``evaluators``,
    ``sample_rate`` and ``drift`` come from ``LLM_OTEL_EVALUATORS``,
    ``LLM_OTEL_EVALUATION_SAMPLE_RATE`` and ``LLM_OTEL_DRIFT*`` on first setup, and stay as
    they are on a later call."""
    with _lock:
        current = current_call_observer()
        runner = current if isinstance(current, EvaluationRunner) else None
        if evaluators is None and sample_rate is None and drift is None and runner is not None:
            return runner
        if evaluators is None and runner is not None:
            chosen = list(runner.evaluators)
        elif evaluators is None:
            chosen = parse_evaluators(os.environ.get(EVALUATORS_ENV), EVALUATORS_ENV)
        else:
            chosen = parse_evaluators(evaluators, "configure(evaluators=...)")
        if sample_rate is not None:
            rate = parse_sample_rate(sample_rate, "configure(evaluation_sample_rate=...)")
        elif runner is not None:
            rate = runner.sample_rate
        else:
            raw = os.environ.get(SAMPLE_RATE_ENV, "").strip()
            rate = parse_sample_rate(raw, SAMPLE_RATE_ENV) if raw else DEFAULT_SAMPLE_RATE
        monitor = _monitor(drift, runner)
        new = EvaluationRunner(chosen, rate, drift=monitor) if chosen or monitor else None
        previous = set_call_observer(new)
        _report(monitor)
        if previous is not None:
            previous.close(0.0)  # it finishes what it holds on its own thread
        return new


def _report(monitor: DriftMonitor | None) -> None:
    """The drift gauges report ``monitor`` from now on (None: nothing)."""
    set_gauge_source(LLM_OTEL_DRIFT_DIVERGENCE, monitor.divergences if monitor else None)
    set_gauge_source(LLM_OTEL_DRIFT_EMBEDDING_DISTANCE,
                     monitor.embedding_distances if monitor else None)  # fmt: skip


def _monitor(drift: Any, runner: EvaluationRunner | None) -> DriftMonitor | None:
    """The drift monitor to use: the running one kept when the settings are the same (its
    windows and learned baselines with it)."""
    if drift is None:
        if runner is not None:
            return runner.drift
        settings = drift_from_env()
    else:
        settings = parse_drift(drift, "configure(drift=...)")
    if settings is None:
        return None
    if runner is not None and runner.drift is not None and runner.drift.settings == settings:
        return runner.drift
    return DriftMonitor(settings)


def pin_drift_baseline(path: str | os.PathLike[str] | None = None) -> int:
    """Make the current window of every model and feature (those with enough calls) its drift
    baseline, e.g. once a release is known to be good, and write the baselines to ``path``
    (default: the configured baseline file). Returns how many baselines were pinned; raises
    RuntimeError when drift is off and OSError when the file cannot be written."""
    current = current_call_observer()
    monitor = current.drift if isinstance(current, EvaluationRunner) else None
    if monitor is None:
        raise RuntimeError("drift is off: turn it on with configure(drift=True) or LLM_OTEL_DRIFT")
    return monitor.pin(path)
