"""One LLM operation: its CLIENT span, its metric points and its content, recorded once."""

from __future__ import annotations

import itertools
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import report_internal_error
from llm_otel.cost import prices
from llm_otel.genai._attempts import HEADROOM_PROVIDERS, Attempt, retried
from llm_otel.genai._chunks import chunk_gaps
from llm_otel.genai._coexist import SPAN_KEY, SUPPRESS_LLM_KEY
from llm_otel.genai._content import ContentPolicy
from llm_otel.genai._failure import end_span, record_failure, start_span
from llm_otel.genai._observe import CallObserver, CompletedCall
from llm_otel.genai._recent import MAX_ID_LENGTH, remember
from llm_otel.genai._scope import SCOPE
from llm_otel.genai._telemetry import GenAITelemetry
from llm_otel.genai._types import LLMRequest, LLMResponse
from llm_otel.semconv.cost import LLM_OTEL_USAGE_COST
from llm_otel.semconv.retry import (
    LLM_OTEL_REQUEST_ATTEMPT,
    LLM_OTEL_REQUEST_RETRIES,
    LLM_OTEL_REQUEST_RETRY_DELAY,
    LLM_OTEL_REQUEST_RETRY_EVENT,
)

__all__ = ["OPERATION_DETAILS_EVENT", "Invocation", "error_type_of"]

OPERATION_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def _is_count(value: object) -> bool:
    """An int subclass other than bool (plain ints are let through before this is asked)."""
    return isinstance(value, int) and not isinstance(value, bool)


def error_type_of(exc: BaseException) -> str:
    """A low-cardinality ``error.type``: the HTTP status for API errors, else the class name.
    An adapter that knows its SDK's errors better says so in ``Adapter.error_type``."""
    # ``status_code`` (openai, anthropic, ...) or ``code`` (google-genai, urllib); only real HTTP
    # statuses: ollama's ResponseError says -1 for an error sent mid-stream.
    for name in ("status_code", "code"):
        status = getattr(exc, name, None)
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return str(status)
    return type(exc).__qualname__


class Invocation:
    """Starts the span when created; :meth:`finish` or :meth:`fail` ends it exactly once."""

    # State most calls never change is a class-level default, set on the instance only when it
    # changes (no __slots__: a store per field on every call was a tenth of __init__).
    _observer: CallObserver | None = None
    """Wants the finished call (online evaluation)."""
    _classify: Callable[[BaseException], str | None] | None = None
    """The adapter's error_type: SDK-specific error.type values."""
    _attempts: list[Attempt] | None = None
    """The HTTP attempts seen (retries; the last response's headers tell the rate limits)."""
    observed = False
    """Whether the finished call goes to an observer (so its content is needed in memory,
    whatever the content policy records)."""
    done = False
    """Whether the invocation has been ended (or is being ended)."""
    _times: array[float] | None = None
    """When each streamed chunk arrived (perf_counter seconds), in order; None: no chunk."""
    _input_attrs: dict[str, AttributeValue] | None = None
    content: ContentPolicy
    request: LLMRequest
    span: trace.Span

    def __init__(
        self,
        telemetry: GenAITelemetry,
        request: LLMRequest,
        *,
        own_span: bool = True,
        classify: Callable[[BaseException], str | None] | None = None,
        observer: CallObserver | None = None,
        started: tuple[float, int] | None = None,
        parent: otel_context.Context | None = None,
        content: ContentPolicy | None = None,
    ) -> None:
        """``started`` (perf_counter seconds, epoch ns) is when the call really started, for
        one recorded after the fact (a framework's model call nobody else recorded); default
        now. ``parent`` is the span's parent context; default the current one. ``content``:
        the content rules, when the caller has already read ``telemetry.content``."""
        self._telemetry = telemetry
        # The content rules for this call, read once when it starts (a property that consults
        # the configured default: five reads per call before).
        self.content = telemetry.content if content is None else content
        if observer is not None:
            self._observer = observer
            self.observed = True
        if classify is not None:
            self._classify = classify
        self.request = request
        # next() on a count is atomic under the GIL: only the first caller of _end gets 0.
        self._ends = itertools.count()
        metric_attrs: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: request.operation,
            ga.GEN_AI_PROVIDER_NAME: request.provider,
        }
        if request.model:
            metric_attrs[ga.GEN_AI_REQUEST_MODEL] = request.model
        if request.server_address:
            metric_attrs[server_attributes.SERVER_ADDRESS] = request.server_address
            if request.server_port:
                metric_attrs[server_attributes.SERVER_PORT] = request.server_port
        self._metric_attrs = metric_attrs
        if not own_span:
            # Another instrumentation gives this call its span (see _coexist): metrics only, and
            # the current span's context stays the parent of whatever happens beneath.
            self.span: trace.Span = trace.NonRecordingSpan(
                trace.get_current_span().get_span_context()
            )
            self._start = time.perf_counter() if started is None else started[0]
            return
        span_attrs = dict(metric_attrs)
        if request.stream:
            span_attrs[ga.GEN_AI_REQUEST_STREAM] = True
        span_attrs.update(request.attributes)
        scoped = SCOPE.get()
        if scoped:  # conversation/user/session ids of an enclosing llm_otel.context() block
            span_attrs.update(scoped)
        name = f"{request.operation} {request.model}" if request.model else request.operation
        start_time = None if started is None else started[1]
        self.span = start_span(
            telemetry.tracer, name, SpanKind.CLIENT, span_attrs, parent, start_time=start_time
        )
        self._start = time.perf_counter() if started is None else started[0]

    def attach(self, current: otel_context.Context | None = None) -> object:
        """Make the span current (so HTTP client spans nest under it); returns the token.
        ``current``: the current context, when the caller has it already.

        While our own span is current, OpenLLMetry's "model call already traced" key is set too,
        so its wrappers deeper in the same call do not add a second span.
        """
        # One context made, as set_value makes them (a copy with the keys added), for both keys.
        values = {**(otel_context.get_current() if current is None else current)}
        values[SPAN_KEY] = self.span
        if self.span.is_recording():
            values[SUPPRESS_LLM_KEY] = True
        return otel_context.attach(otel_context.Context(values))

    @staticmethod
    def detach(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def on_chunk(self, at: float | None = None) -> None:
        """Note that a streamed chunk arrived (for time to first chunk and time per chunk);
        ``at``: when it arrived (perf_counter seconds), for one noted after the fact."""
        now = time.perf_counter() if at is None else at
        times = self._times
        if times is None:
            self._times = array("d", (now,))
        else:
            times.append(now)

    def on_chunks(self, times: array[float]) -> None:
        """Note the chunks a stream proxy saw, by their arrival times (perf_counter seconds, in
        order): as :meth:`on_chunk` once per chunk, in one call when the stream ends. The
        array is the proxy's own, taken over as it is when no chunk was noted before (the
        stream has ended: nothing is appended to it after)."""
        if not times:
            return
        mine = self._times
        if mine is None:
            self._times = times
        elif mine is not times:  # (the same array again: a second end of the same stream)
            mine.extend(times)

    def on_attempt(self, started: float, ended: float, outcome: Any) -> None:
        """One HTTP attempt of this call ended (the client library may make several: retries):
        ``outcome`` is the response it got, or the error type of the exception it raised
        (see ``_attempts.Attempt``)."""
        if self.done:
            return
        attempts = self._attempts
        if attempts is None:
            self._attempts = [(started, ended, outcome)]
        else:
            attempts.append((started, ended, outcome))

    def finish(
        self, response: LLMResponse | None, *, ended_at: tuple[float, int] | None = None
    ) -> None:
        """End successfully with what the response says (``None`` when nothing usable came).

        ``ended_at`` (perf_counter seconds, epoch ns) is when the call really ended, for one
        ended later (a stream abandoned to the garbage collector); default now."""
        self._end(response, None, None, ended_at)

    def fail(
        self,
        exc: BaseException | None,
        response: LLMResponse | None = None,
        error_type: str | None = None,
        *,
        ended_at: tuple[float, int] | None = None,
    ) -> None:
        """End with an error: the exception raised, or an ``error_type`` the response reported."""
        if error_type is None:
            error_type = self._error_type(exc) if exc is not None else "_OTHER"
        self._end(response, exc, error_type, ended_at)

    def _error_type(self, exc: BaseException) -> str:
        if self._classify is not None:
            try:
                specific = self._classify(exc)
            except Exception as internal:
                report_internal_error("error_type", internal)
                specific = None
            if specific:
                return specific
        return error_type_of(exc)

    def _end(
        self,
        response: LLMResponse | None,
        exc: BaseException | None,
        error_type: str | None,
        ended_at: tuple[float, int] | None = None,
    ) -> None:
        if next(self._ends):
            return
        self.done = True
        end_time = None if ended_at is None else ended_at[1]
        duration = (time.perf_counter() if ended_at is None else ended_at[0]) - self._start
        span = self.span
        try:
            attrs = self._metric_attrs
            if response is not None and isinstance(response.response_model, str):
                attrs = {**attrs, ga.GEN_AI_RESPONSE_MODEL: response.response_model}
            if error_type is not None:
                attrs = {**attrs, error_attributes.ERROR_TYPE: error_type}
            try:  # a broken price table costs the cost, never the call's other telemetry
                cost = self._cost(response)
            except Exception as internal:
                report_internal_error("cost", internal)
                cost = None
            times = self._times
            ttfc = None if times is None else times[0] - self._start
            attempts = self._attempts
            again = retried(attempts) if attempts is not None and len(attempts) > 1 else None
            if span.is_recording():
                self._record_span(span, response, exc, error_type, cost, ttfc, again)
            self._record_metrics(attrs, duration, response, cost, ttfc, again)
            if response is not None and isinstance(response.response_id, str):
                request = self.request
                remember(
                    response.response_id, span.get_span_context(), request.provider, request.model
                )
            if self.content.in_event:
                self._emit_details_event(span, response, error_type)
            if self._observer is not None:
                self._observer.completed(
                    CompletedCall(self.request, response, error_type, span.get_span_context())
                )
        except Exception as internal:
            report_internal_error("finish invocation", internal)
        finally:
            end_span(span, end_time)

    def _record_span(
        self,
        span: trace.Span,
        response: LLMResponse | None,
        exc: BaseException | None,
        error_type: str | None,
        cost: float | None,
        ttfc: float | None,
        again: list[tuple[int, str, float]] | None,
    ) -> None:
        span_attrs = self._response_attributes(response)
        if ttfc is not None:
            span_attrs[ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if error_type is not None:
            span_attrs[error_attributes.ERROR_TYPE] = error_type
        if cost is not None:
            span_attrs[LLM_OTEL_USAGE_COST] = cost
        if again:
            span_attrs[LLM_OTEL_REQUEST_RETRIES] = len(again)
        content = self.content
        if content.on_span:
            # Given with the response's attributes, in the one set_attributes call the span
            # gets when it ends (a call of its own costs the SDK a lock and a walk: ~20k
            # instructions for one attribute). No exporter sees a span before it ends.
            try:
                span_attrs.update(self._input_content())
            except Exception as internal:
                report_internal_error("input content", internal)
            try:
                output = _output_messages(content, response)
            except Exception as internal:
                report_internal_error("output content", internal)
            else:
                if output is not None:
                    span_attrs[ga.GEN_AI_OUTPUT_MESSAGES] = output
        span.set_attributes(span_attrs)
        for attempt, attempt_error, wait in again or ():
            span.add_event(
                LLM_OTEL_REQUEST_RETRY_EVENT,
                {
                    LLM_OTEL_REQUEST_ATTEMPT: attempt,
                    error_attributes.ERROR_TYPE: attempt_error,
                    LLM_OTEL_REQUEST_RETRY_DELAY: wait,
                },
            )
        if error_type is not None:
            record_failure(span, exc, error_type, self.content)

    def _record_metrics(
        self,
        attrs: dict[str, AttributeValue],
        duration: float,
        response: LLMResponse | None,
        cost: float | None,
        ttfc: float | None,
        again: list[tuple[int, str, float]] | None,
    ) -> None:
        telemetry = self._telemetry
        telemetry.duration.record(duration, attrs)
        if response is not None:
            if response.input_tokens is not None:
                telemetry.token_usage.record(
                    response.input_tokens, {**attrs, ga.GEN_AI_TOKEN_TYPE: "input"}
                )
            if response.output_tokens is not None:
                telemetry.token_usage.record(
                    response.output_tokens, {**attrs, ga.GEN_AI_TOKEN_TYPE: "output"}
                )
        if cost is not None:
            telemetry.cost.add(cost, attrs)
        if ttfc is not None:
            telemetry.time_to_first_chunk.record(ttfc, attrs)
            times = self._times
            if times is not None and len(times) > 1:
                # Every gap unless chunk_timing says otherwise, computed and recorded in C (no
                # array of gaps is built: filling one parses each float again, ~900
                # instructions a gap).
                deque(
                    map(
                        telemetry.time_per_output_chunk.record,
                        chunk_gaps(times),
                        itertools.repeat(attrs),
                    ),
                    maxlen=0,
                )
        attempts = self._attempts
        if attempts is None:
            return
        if again:
            self._record_retries(again, attrs)
        request = self.request
        if request.provider in HEADROOM_PROVIDERS:
            telemetry.record_headroom(
                (request.provider, request.model or None, request.server_address or None),
                attempts,
            )

    def _record_retries(
        self, again: list[tuple[int, str, float]], attrs: dict[str, AttributeValue]
    ) -> None:
        """Retries: counted by the error that caused each; the time spent waiting."""
        telemetry = self._telemetry
        for _, attempt_error, _ in again:
            telemetry.retries.add(1, {**attrs, error_attributes.ERROR_TYPE: attempt_error})
        telemetry.retry_wait.record(sum(wait for _, _, wait in again), attrs)

    def _cost(self, response: LLMResponse | None) -> float | None:
        """Estimated USD cost from the usage, when the model is in the price table."""
        if response is None:
            return None
        input_tokens, output_tokens = response.input_tokens, response.output_tokens
        if input_tokens is None and output_tokens is None:
            return None
        table = prices()
        if table is None:
            return None
        price = table.price_for(self.request.provider, response.response_model, self.request.model)
        if price is None:
            return None
        return price.cost(
            input_tokens if isinstance(input_tokens, int) else None,
            output_tokens if isinstance(output_tokens, int) else None,
            response.cache_read_input_tokens,
            response.cache_creation_input_tokens,
        )

    def _response_attributes(self, response: LLMResponse | None) -> dict[str, AttributeValue]:
        out: dict[str, AttributeValue] = {}
        if response is None:
            return out
        # Identity fields are taken only when they are what the conventions say (strings): a
        # server returning odd shapes must not produce attributes of the wrong type.
        value: Any = response.response_id
        if value and isinstance(value, str):
            out[ga.GEN_AI_RESPONSE_ID] = value[:MAX_ID_LENGTH]
        value = response.response_model
        if value and isinstance(value, str):
            out[ga.GEN_AI_RESPONSE_MODEL] = value
        if response.finish_reasons:
            out[ga.GEN_AI_RESPONSE_FINISH_REASONS] = response.finish_reasons
        # Token counts: ints, never bools. Written out: a loop over the five (most are None)
        # cost 3,000 instructions a call more than these five tests.
        value = response.input_tokens
        if value is not None and (type(value) is int or _is_count(value)):
            out[ga.GEN_AI_USAGE_INPUT_TOKENS] = value
        value = response.output_tokens
        if value is not None and (type(value) is int or _is_count(value)):
            out[ga.GEN_AI_USAGE_OUTPUT_TOKENS] = value
        value = response.cache_read_input_tokens
        if value is not None and (type(value) is int or _is_count(value)):
            out[ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = value
        value = response.cache_creation_input_tokens
        if value is not None and (type(value) is int or _is_count(value)):
            out[ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = value
        value = response.reasoning_output_tokens
        if value is not None and (type(value) is int or _is_count(value)):
            out[ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = value
        if response.attributes:
            out.update(response.attributes)
        return out

    def _input_content(self) -> dict[str, AttributeValue]:
        """The input content attributes, serialized once for span and event alike."""
        if self._input_attrs is not None:
            return self._input_attrs
        policy = self.content
        request = self.request
        out: dict[str, AttributeValue] = {}
        if request.input_messages:
            out[ga.GEN_AI_INPUT_MESSAGES] = policy.serialize(request.input_messages)
        if request.system_instructions:
            out[ga.GEN_AI_SYSTEM_INSTRUCTIONS] = policy.serialize(request.system_instructions)
        if request.tool_definitions:
            out[ga.GEN_AI_TOOL_DEFINITIONS] = policy.serialize(request.tool_definitions)
        self._input_attrs = out
        return out

    def _emit_details_event(
        self, span: trace.Span, response: LLMResponse | None, error_type: str | None
    ) -> None:
        attributes: dict[str, Any] = {**self._metric_attrs}
        if self.request.stream:
            attributes[ga.GEN_AI_REQUEST_STREAM] = True
        attributes.update(self.request.attributes)
        attributes.update(self._response_attributes(response))
        if error_type is not None:
            attributes[error_attributes.ERROR_TYPE] = error_type
        attributes.update(self._input_content())
        output = _output_messages(self.content, response)
        if output is not None:
            attributes[ga.GEN_AI_OUTPUT_MESSAGES] = output
        self._telemetry.event_logger.emit(
            event_name=OPERATION_DETAILS_EVENT,
            attributes=attributes,
            context=trace.set_span_in_context(span),
        )


def _output_messages(policy: ContentPolicy, response: LLMResponse | None) -> str | None:
    """``gen_ai.output.messages``: the response's output messages serialized; None for none."""
    if response is None or not response.output_messages:
        return None
    return policy.serialize(response.output_messages)
