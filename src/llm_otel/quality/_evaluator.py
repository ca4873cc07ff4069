"""The evaluator interface: built-in checks and the user's own functions."""

from __future__ import annotations

import asyncio
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal, overload

from llm_otel.quality._call import EvaluatedCall

__all__ = [
    "Detection",
    "EvaluationResult",
    "EvaluationTimeout",
    "Evaluator",
    "FunctionEvaluator",
    "evaluator",
]


class EvaluationTimeout(Exception):
    """An evaluator ran past its timeout (counted as ``error.type=timeout``)."""


@dataclass(frozen=True, slots=True)
class Detection:
    """Something an evaluator found: its kind (``email``, ``prompt_injection``, ...) and where
    (``input``: what was sent to the model; ``output``: what came back). Counted in
    ``llm_otel.detection.count`` whether or not content capture is on."""

    kind: str
    target: Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """One evaluator's verdict on one call, recorded as a ``gen_ai.evaluation.result`` event
    (``score``, ``label``, ``explanation``) and in the evaluation metrics."""

    score: float | None = None
    label: str | None = None
    explanation: str | None = None
    detections: tuple[Detection, ...] = ()


class Evaluator(ABC):
    """Judges finished calls on the evaluation thread, never on the request path.

    ``name`` is the ``gen_ai.evaluation.name``. ``timeout`` (seconds) runs it on a helper
    thread and gives up waiting after that long; None runs it inline (for bounded work, as the
    built-ins do). ``quotes_content`` says whether its explanations may quote the call's
    content: if so they are recorded only when content capture is on (redacted and cut like
    content); the built-ins' never do."""

    name: str
    timeout: float | None = None
    quotes_content: bool = True

    @abstractmethod
    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        """The verdict, or None when the evaluator does not apply to this call."""


Verdict = EvaluationResult | float | bool | str | None


class FunctionEvaluator(Evaluator):
    """A function (sync or ``async``) of an :class:`EvaluatedCall` as an evaluator. It may
    return an :class:`EvaluationResult`, a number (the score), a bool (score 1.0 or 0.0), a
    string (the label) or None (does not apply)."""

    def __init__(self, name: str, function: Callable[[EvaluatedCall], Any], *,
                 timeout: float = 10.0) -> None:  # fmt: skip
        if not isinstance(name, str) or not name:
            raise ValueError(f"an evaluator's name must be a non-empty string, not {name!r}")
        if not callable(function):
            raise TypeError(f"an evaluator must be callable, not {type(function).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, Real) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.name = name
        self.function: Callable[[EvaluatedCall], Any] = function
        self.timeout: float = float(timeout)

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        verdict = self.function(call)
        if inspect.isawaitable(verdict):
            verdict = asyncio.run(within(verdict, self.timeout))
        return as_result(verdict)

    def __repr__(self) -> str:
        return f"FunctionEvaluator({self.name!r}, timeout={self.timeout})"


async def within(awaitable: Any, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise EvaluationTimeout from None


def as_result(verdict: Any) -> EvaluationResult | None:
    """What an evaluator function returned, as a result (TypeError if it makes no sense)."""
    if verdict is None or isinstance(verdict, EvaluationResult):
        return verdict
    if isinstance(verdict, bool):
        return EvaluationResult(score=1.0 if verdict else 0.0)
    if isinstance(verdict, Real):
        if not math.isfinite(verdict):
            raise ValueError("an evaluator returned a score that is not finite")
        return EvaluationResult(score=float(verdict))
    if isinstance(verdict, str):
        return EvaluationResult(label=verdict)
    raise TypeError(
        "an evaluator returns an EvaluationResult, a number, a bool, a str or None, "
        f"not {type(verdict).__name__}"
    )


@overload
def evaluator(name: str, function: Callable[[EvaluatedCall], Any], *,
              timeout: float = ...) -> FunctionEvaluator: ...  # fmt: skip
@overload
def evaluator(name: str, function: None = None, *, timeout: float = ...
              ) -> Callable[[Callable[[EvaluatedCall], Any]], FunctionEvaluator]: ...  # fmt: skip
def evaluator(name: str, function: Callable[[EvaluatedCall], Any] | None = None, *,
              timeout: float = 10.0) -> Any:  # fmt: skip
    """Make an evaluator of a function, directly or as a decorator::

    @llm_otel.quality.evaluator("relevance", timeout=20)
    async def relevance(call):
        return await judge(call.input_text, call.output_text)   # a score in [0, 1]
    """
    if function is not None:
        return FunctionEvaluator(name, function, timeout=timeout)
    return lambda f: FunctionEvaluator(name, f, timeout=timeout)
