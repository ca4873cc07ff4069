"""``configure(evaluators=..., evaluation_sample_rate=...)`` and their environment variables."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable
from typing import Any

from llm_otel.genai import current_call_observer, set_call_observer
from llm_otel.quality._builtin import BUILTIN
from llm_otel.quality._evaluator import Evaluator, FunctionEvaluator
from llm_otel.quality._runner import EvaluationRunner

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "EVALUATORS_ENV",
    "SAMPLE_RATE_ENV",
    "configure_evaluation",
    "parse_evaluators",
    "parse_sample_rate",
]

_logger = logging.getLogger("llm_otel")
EVALUATORS_ENV = "LLM_OTEL_EVALUATORS"
SAMPLE_RATE_ENV = "LLM_OTEL_EVALUATION_SAMPLE_RATE"
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


def configure_evaluation(
    evaluators: Any = None, sample_rate: Any = None
) -> EvaluationRunner | None:
    """Install (or replace, or remove) the online evaluation runner. Left out, ``evaluators``
    and ``sample_rate`` come from ``LLM_OTEL_EVALUATORS`` and ``LLM_OTEL_EVALUATION_SAMPLE_RATE``
    on first setup, and stay as they are on a later call."""
    with _lock:
        current = current_call_observer()
        runner = current if isinstance(current, EvaluationRunner) else None
        if evaluators is None and sample_rate is None and runner is not None:
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
        new = EvaluationRunner(chosen, rate) if chosen else None
        previous = set_call_observer(new)
        if previous is not None:
            previous.close(0.0)  # it finishes what it holds on its own thread
        return new
