"""Feedback and evaluation results attached to past LLM calls.

    llm_otel.record_evaluation(response.id, name="user_feedback", score=1.0, label="thumbs_up")

emits the conventions' ``gen_ai.evaluation.result`` event in the call's trace (parented to the
call's span), and counts results (``llm_otel.evaluation.results``) and scores
(``llm_otel.evaluation.score``) per evaluation name and model, so satisfaction and automated
checks show up next to the call in traces and dashboards.
"""

from __future__ import annotations

import logging
import math
from numbers import Real
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import report_internal_error
from llm_otel.genai import GenAITelemetry
from llm_otel.genai._recent import lookup
from llm_otel.manual._defaults import default_telemetry

__all__ = ["EVALUATION_RESULT_EVENT", "emit_evaluation", "evaluation_event", "record_evaluation"]

_logger = logging.getLogger("llm_otel")
EVALUATION_RESULT_EVENT = "gen_ai.evaluation.result"


def record_evaluation(
    target: str | Span | SpanContext | None,
    *,
    name: str,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    attributes: dict[str, AttributeValue] | None = None,
) -> bool:
    """Attach an evaluation (user feedback, an automated check) to an LLM call.

    ``target`` is the call's response id (``gen_ai.response.id``; the last 10,000 calls of this
    process are remembered), its span or span context, or None for the current span. ``name``
    is a non-empty string, ``score`` a finite number. Returns False, with a warning, when the
    target cannot be found or an argument is wrong; never raises.
    """
    try:
        problem = _invalid(target, name, score)
        if problem:
            _logger.warning("record_evaluation(): %s; nothing recorded", problem)
            return False
        context, provider, model = _resolve(target)
        if context is None:
            if target is None:
                _logger.warning(
                    "record_evaluation(None): no current span to attach the evaluation to; "
                    "pass the call's response id, span or span context"
                )
            else:
                _logger.warning("record_evaluation(): no recent LLM call with response id %r",
                                target)  # fmt: skip
            return False
        response_id = target if isinstance(target, str) else None
        event = evaluation_event(name, score, label, explanation, response_id, attributes)
        emit_evaluation(default_telemetry(), context, event, provider, model)
        return True
    except Exception as exc:
        report_internal_error("record_evaluation", exc)
        return False


def emit_evaluation(
    telemetry: GenAITelemetry,
    context: SpanContext,
    event: dict[str, AttributeValue],
    provider: str | None,
    model: str | None,
) -> None:
    """Emit a ``gen_ai.evaluation.result`` event (made by :func:`evaluation_event`) in the
    call's trace, parented to its span, and count it and its score."""
    name = event[ga.GEN_AI_EVALUATION_NAME]
    metric: dict[str, AttributeValue] = {ga.GEN_AI_EVALUATION_NAME: name}
    if provider:
        metric[ga.GEN_AI_PROVIDER_NAME] = provider
    if model:
        metric[ga.GEN_AI_REQUEST_MODEL] = model
    telemetry.event_logger.emit(
        event_name=EVALUATION_RESULT_EVENT,
        attributes=event,
        context=trace.set_span_in_context(NonRecordingSpan(context)),
    )
    counted = dict(metric)
    label = event.get(ga.GEN_AI_EVALUATION_SCORE_LABEL)
    if label is not None:
        counted[ga.GEN_AI_EVALUATION_SCORE_LABEL] = label
    telemetry.evaluation_results.add(1, counted)
    score = event.get(ga.GEN_AI_EVALUATION_SCORE_VALUE)
    if isinstance(score, float):
        telemetry.evaluation_score.record(score, metric)


def evaluation_event(
    name: str,
    score: float | None,
    label: str | None,
    explanation: str | None,
    response_id: str | None,
    attributes: dict[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    """The ``gen_ai.evaluation.result`` event's attributes."""
    event: dict[str, AttributeValue] = {ga.GEN_AI_EVALUATION_NAME: name}
    if response_id is not None:
        event[ga.GEN_AI_RESPONSE_ID] = response_id
    if score is not None:
        event[ga.GEN_AI_EVALUATION_SCORE_VALUE] = float(score)
    if label is not None:
        event[ga.GEN_AI_EVALUATION_SCORE_LABEL] = label
    if explanation is not None:
        event[ga.GEN_AI_EVALUATION_EXPLANATION] = explanation
    event.update(attributes or {})
    return event


def _invalid(target: Any, name: Any, score: Any) -> str | None:
    """What is wrong with the arguments, in words (None when nothing is)."""
    if not isinstance(name, str) or not name:
        return f"name must be a non-empty string, not {name!r}"
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score)
    ):
        return f"score must be a finite number, not {score!r}"
    if target is not None and not isinstance(target, (str, Span, SpanContext)):
        return (
            "the target is a response id (str), a span, a span context or None, "
            f"not a {type(target).__name__}"
        )
    return None


def _resolve(target: Any) -> tuple[SpanContext | None, str | None, str | None]:
    if isinstance(target, str):
        call = lookup(target)
        return (call.span_context, call.provider, call.model) if call else (None, None, None)
    if target is None:
        target = trace.get_current_span()
    if isinstance(target, SpanContext):
        context = target
        attributes: Any = {}
    else:
        context = target.get_span_context()
        attributes = getattr(target, "attributes", None) or {}
    if not context.is_valid:
        return None, None, None
    return context, attributes.get(ga.GEN_AI_PROVIDER_NAME), attributes.get(ga.GEN_AI_REQUEST_MODEL)
