"""Telemetry never hurts the host, for every instrumented library: no deadlock from a finalizer,
no failure of a span processor reaching the app, bounded memory, no server-sent text recorded
with content capture off, stream proxies that copy, pickle and answer ``hasattr`` as the stream
they wrap, and instrumenting that is idempotent under races."""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import logging
import pickle
import subprocess
import sys
import threading
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.quality import configure_evaluation, evaluator
from tests.conftest import OpenSpans, Telemetry, boom
from tests.libraries import Env, Library, library_params

SECRET = "PROMPT-SECRET-7fq2 my card is 4111 1111 1111 1111"
MARK = "PROMPT-SECRET-7fq2"

ALL = library_params()
ASYNC = library_params(streams_async=True)


class Raising(SpanProcessor):
    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.where == "on_start":
            raise RuntimeError("processor on_start failed")

    def on_end(self, span: ReadableSpan) -> None:
        if self.where == "on_end":
            raise RuntimeError("processor on_end failed")


# 1. A finalizer never records inline ------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("library", ALL)
def test_abandoned_streams_in_cycles_do_not_deadlock_the_collector(
    library: Library, mode: str
) -> None:
    if mode == "async" and library.astream is None:
        pytest.skip(f"{library.name} has no async streams")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.apps.gc_child", library.name, mode],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung: a finalizer waited on a lock its own thread held")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The abandoned stream's span still ends, timed at the abandonment, not at the hand-off.
    assert result["deterministic_spans"] == 1, result
    assert result["ended_in_collection"], result
    assert result["stress_calls"] > 5, result
    assert result["stress_spans"] == result["stress_calls"], result


# 2. A span processor that raises ----------------------------------------------------------


@pytest.mark.parametrize("where", ["on_start", "on_end"])
@pytest.mark.parametrize("env", ALL, indirect=True)
def test_a_raising_span_processor_does_not_reach_the_app(env: Env, where: str) -> None:
    counter = OpenSpans()
    env.telemetry.tracer_provider.add_span_processor(counter)
    env.telemetry.tracer_provider.add_span_processor(Raising(where))
    assert env.chat() is not None
    assert env.read_stream() > 0
    if env.library.astream is not None:
        assert env.read_async_stream() > 0
    stream = env.stream()
    next(iter(stream))
    stream_close = getattr(stream, "close", None)
    if stream_close is not None:
        stream_close()
    else:
        del stream
        gc.collect()
    from llm_otel.genai import drain_abandoned

    drain_abandoned()
    assert counter.started >= 3
    assert counter.open == 0, "every span our processors saw start also ended"


# 4. Content off: nothing the server echoed is recorded -------------------------------------


def _everything_recorded(telemetry: Telemetry) -> str:
    parts: list[str] = []
    for span in telemetry.spans():
        parts.append(repr(dict(span.attributes or {})))
        parts.append(str(span.status.description))
        for event in span.events:
            parts.append(repr(dict(event.attributes or {})))
    for record in telemetry.logs():
        parts.append(repr(record.body))
        parts.append(repr(dict(record.attributes or {})))
    return "\n".join(parts)


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_content_off_records_no_text_the_server_echoed(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_otel")
    with pytest.raises(Exception) as raised:
        env.chat("error-429", SECRET)
    assert MARK in str(raised.value), "the server echoed the prompt into its error"
    if env.library.mid_error:
        with pytest.raises(Exception):
            env.read_stream(env.library.mid_error, SECRET)
    spans = env.telemetry.spans()
    assert spans and all(s.attributes.get("error.type") for s in spans)
    assert all(s.status.description for s in spans), "the status still says what failed"
    assert all(any(e.name == "exception" for e in s.events) for s in spans)
    recorded = _everything_recorded(env.telemetry)
    assert MARK not in recorded
    assert MARK not in caplog.text


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_online_evaluation_sees_the_content_and_records_none_of_it(env: Env) -> None:
    """With content off and every call sampled for online evaluation, the adapters build the
    content for the evaluators, in memory only: the evaluators get it (plain and streamed
    calls, and a failed one), nothing recorded holds it; the built-ins' records say what they
    found, never the text."""
    seen: list[str] = []
    runner = configure_evaluation(
        ["default", evaluator("probe", lambda c: seen.append(c.input_text + c.output_text))], 1.0
    )
    assert runner is not None
    try:
        env.chat(prompt=SECRET)
        env.read_stream(prompt=SECRET)
        with pytest.raises(Exception):
            env.chat("error-429", SECRET)
        assert runner.flush(10)
    finally:
        configure_evaluation([])
    assert len(seen) == 3 and all(MARK in text for text in seen), seen
    events = [r for r in env.telemetry.logs() if r.event_name == "gen_ai.evaluation.result"]
    assert any(e.attributes.get("gen_ai.evaluation.explanation") == "found credit_card in input"
               for e in events)  # fmt: skip
    assert "gen_ai.input.messages" not in repr([dict(s.attributes) for s in env.telemetry.spans()])
    assert MARK not in _everything_recorded(env.telemetry)


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_AND_EVENT)])
@pytest.mark.parametrize("env", library_params()[:1], indirect=True)
def test_content_on_keeps_the_error_message(env: Env) -> None:
    with pytest.raises(Exception):
        env.chat("error-429", SECRET)
    span = env.telemetry.only_span()
    assert MARK in (span.status.description or "")


# 5. A stream the server cuts short --------------------------------------------------------


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_a_truncated_stream_is_not_a_success(env: Env) -> None:
    if env.library.truncated is None:
        pytest.skip("no truncated stream in this test server")
    with contextlib.suppress(Exception):  # the SDK may notice itself; either way, say so
        env.read_stream(env.library.truncated)
    span = env.telemetry.only_span()
    assert span.attributes.get("error.type"), dict(span.attributes)
    assert "gen_ai.response.finish_reasons" not in span.attributes


# 6. Proxy identity -------------------------------------------------------------------------

NAMES = (
    "close",
    "aclose",
    "response",
    "__enter__",
    "__exit__",
    "__aenter__",
    "__aexit__",
    "__iter__",
    "__next__",
    "__aiter__",
    "__anext__",
    "send",
    "throw",
    "until_done",
    "text_stream",
    "get_final_message",
)


def _outcome(action: Any) -> str:
    try:
        action()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_stream_proxy_answers_hasattr_copy_and_pickle_as_the_stream(env: Env) -> None:
    with suppress_instrumentation():
        plain = env.stream()
    proxied = env.stream()  # google-genai: the SDK's generator over our proxied inner stream
    for name in NAMES:
        assert hasattr(proxied, name) == hasattr(plain, name), name
    # len() fails as the stream's does: list(stream) asks for a length hint first and only
    # takes a TypeError as "no length" (wrapt's proxy has the slot, so __len__ cannot be absent).
    assert _outcome(lambda: len(proxied)) == _outcome(lambda: len(plain))
    assert _outcome(lambda: copy.copy(proxied)) == _outcome(lambda: copy.copy(plain))
    assert _outcome(lambda: copy.deepcopy(proxied)) == _outcome(lambda: copy.deepcopy(plain))
    assert _outcome(lambda: pickle.dumps(proxied)) == _outcome(lambda: pickle.dumps(plain))
    with suppress_instrumentation():  # a lazy SDK generator makes its request on the first pull
        for _ in plain:
            pass
    for _ in proxied:
        pass
    streamed = [s for s in env.telemetry.spans() if s.attributes.get("gen_ai.request.stream")]
    assert len(streamed) == 1


def test_a_copied_stream_is_one_call(server: Any, telemetry: Telemetry) -> None:
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                            stream=True)  # fmt: skip
    duplicate = copy.copy(stream)
    next(iter(duplicate))
    del duplicate
    gc.collect()
    assert telemetry.spans() == [], "dropping a copy does not end the call the original goes on"
    assert sum(1 for _ in stream) > 0
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


# 7. Instrumenting is idempotent under races ------------------------------------------------


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_concurrent_instrument_wraps_each_method_once(env: Env) -> None:
    instrumentor = env.library.instrumentor_class()()
    patched_once = len(instrumentor._patches._undo)
    assert patched_once > 0
    instrumentor.uninstrument()
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        instrumentor.instrument(**env.telemetry.providers)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(instrumentor._patches._undo) == patched_once
    env.client = env.library.client(env.server)  # not one bound to the retired wrappers
    env.chat()
    assert len(env.telemetry.spans()) == 1


# 3. Memory stays bounded in bytes ----------------------------------------------------------


def test_huge_response_ids_are_neither_kept_nor_exported_whole(
    client: Any, telemetry: Telemetry
) -> None:
    from llm_otel.genai import _recent

    _recent.forget_all()
    for _ in range(50):
        client.chat.completions.create(model="huge-id", messages=[{"role": "user", "content": "x"}])
    assert _recent.size_bytes() == 0, "ids over MAX_ID_LENGTH are not kept"
    for span in telemetry.spans():
        assert len(span.attributes["gen_ai.response.id"]) == _recent.MAX_ID_LENGTH


def test_the_recent_call_table_is_bounded_in_bytes() -> None:
    from opentelemetry.trace import INVALID_SPAN_CONTEXT

    from llm_otel.genai import _recent

    _recent.forget_all()
    try:
        for i in range(30_000):
            key = f"{i:08d}" + "y" * (_recent.MAX_ID_LENGTH - 8)
            _recent.remember(key, INVALID_SPAN_CONTEXT, "openai", "m")
        assert _recent.size_bytes() <= _recent.MAX_BYTES
        assert len(_recent._calls) <= _recent.CAPACITY
        assert _recent.lookup(f"{29_999:08d}" + "y" * (_recent.MAX_ID_LENGTH - 8)) is not None
        assert _recent.lookup(f"{0:08d}" + "y" * (_recent.MAX_ID_LENGTH - 8)) is None
    finally:
        _recent.forget_all()


def test_the_recent_call_tables_accounting_covers_what_its_entries_really_take() -> None:
    """``size_bytes()`` is what MAX_BYTES bounds: it must not be less than the memory the
    entries really take (span contexts as the SDK makes them, ids as servers send them)."""
    import random
    import tracemalloc

    from opentelemetry.trace import SpanContext, TraceFlags

    from llm_otel.genai import _recent

    _recent.forget_all()
    rng = random.Random(0)
    contexts = [
        SpanContext(rng.getrandbits(128), rng.getrandbits(64), False, TraceFlags(1))
        for _ in range(5_000)
    ]
    ids = [f"chatcmpl-{rng.getrandbits(128):032x}" for _ in range(5_000)]
    models = [f"gpt-4o-mini-{i % 7}" for i in range(5_000)]
    try:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for response_id, context, model in zip(ids, contexts, models, strict=True):
            _recent.remember(response_id, context, "openai", model)
        taken = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        # The ids, contexts and models are the callers' (made above), yet they are counted:
        # the table may be their last holder.
        taken += sum(sys.getsizeof(i) for i in ids) + sum(sys.getsizeof(c) for c in contexts)
        accounted = _recent.size_bytes()
        assert taken <= accounted <= 2 * taken, (taken, accounted)
    finally:
        _recent.forget_all()


def test_the_recent_call_table_counts_what_getsizeof_says_ascii_or_not() -> None:
    """ASCII ids and model names are counted without a getsizeof call: the count must still be
    exactly getsizeof's, for ASCII and other text, a str subclass, and no model."""
    from opentelemetry.trace import INVALID_SPAN_CONTEXT

    from llm_otel.genai import _recent

    class Id(str):
        pass

    cases = [
        ("chatcmpl-abc", "gpt-4o-mini"),
        ("msg_é中", "modèle"),
        ("x" * _recent.MAX_ID_LENGTH, None),
        (Id("resp_sub"), Id("m")),
        ("", "😀"),
    ]
    try:
        for response_id, model in cases:
            _recent.forget_all()
            _recent.remember(response_id, INVALID_SPAN_CONTEXT, "openai", model)
            expected = _recent._ENTRY_OVERHEAD + sys.getsizeof(response_id)
            expected += sys.getsizeof(model) if model else 0
            assert _recent.size_bytes() == expected, (response_id, model)
    finally:
        _recent.forget_all()


def test_an_id_seen_again_moves_to_the_newest_end_and_is_counted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.trace import INVALID_SPAN_CONTEXT

    from llm_otel.genai import _recent

    monkeypatch.setattr(_recent, "CAPACITY", 3)
    _recent.forget_all()
    try:
        for response_id in ("a", "b", "c"):
            _recent.remember(response_id, INVALID_SPAN_CONTEXT, "openai", "m")
        three = _recent.size_bytes()
        _recent.remember("a", INVALID_SPAN_CONTEXT, "anthropic", "m")
        assert _recent.size_bytes() == three
        _recent.remember("d", INVALID_SPAN_CONTEXT, "openai", "m")  # the oldest, b, goes
        assert _recent.lookup("b") is None
        found = _recent.lookup("a")
        assert found is not None and found.provider == "anthropic"
        assert list(_recent._calls) == ["c", "a", "d"]
        assert _recent.size_bytes() == three
    finally:
        _recent.forget_all()


# The fault suite's shared recording steps, for every library ------------------------------


def _shared_fault_sites() -> dict[str, tuple[Any, str]]:
    from opentelemetry.sdk._logs import Logger
    from opentelemetry.sdk.metrics._internal.instrument import Histogram

    from llm_otel.genai import _content, _invocation

    return {
        "content serialisation": (_content.ContentPolicy, "serialize"),
        "cost lookup": (_invocation, "prices"),
        "histogram record": (Histogram, "record"),
        "event emit": (Logger, "emit"),
        "chunk timing": (_invocation.Invocation, "on_chunks"),
    }


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_AND_EVENT)])
@pytest.mark.parametrize("fault", sorted(_shared_fault_sites()))
@pytest.mark.parametrize("env", ALL, indirect=True)
def test_faults_in_shared_recording_steps(
    env: Env, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared step of recording raises: every library's calls answer as usual, with one
    span each and none left open."""
    from llm_otel import _guard

    counter = OpenSpans()
    env.telemetry.tracer_provider.add_span_processor(counter)
    owner, name = _shared_fault_sites()[fault]
    monkeypatch.setattr(_guard, "_seen", {})
    monkeypatch.setattr(owner, name, boom)
    assert env.chat() is not None
    assert env.read_stream() > 0
    if env.library.astream is not None:
        assert env.read_async_stream() > 0
    with pytest.raises(Exception):
        env.chat("error-429")
    calls = 3 + (env.library.astream is not None)
    assert counter.started == calls
    assert counter.open == 0
    assert _guard.internal_error_count() >= 1


def _echoing_redactor(text: str) -> str:
    raise ValueError(f"cannot redact {text!r}")


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY, redactor=_echoing_redactor)]
)
def test_a_failing_redactor_never_puts_its_input_in_the_logs(
    client: Any, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_otel import _guard

    _guard._seen.clear()
    with caplog.at_level(logging.DEBUG, logger="llm_otel"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": SECRET}])
    assert "content redactor" in caplog.text and "ValueError" in caplog.text
    assert MARK not in caplog.text
    assert MARK not in _everything_recorded(telemetry)
    assert "[REDACTION FAILED]" in telemetry.only_span().attributes["gen_ai.input.messages"]


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
@pytest.mark.parametrize("env", ALL, indirect=True)
def test_a_stream_closed_early_has_no_invented_finish_reason(env: Env) -> None:
    stream = env.stream("long-stream")
    iterator = iter(stream)
    for _ in range(3):
        next(iterator)
    close = getattr(stream, "close", None)
    if close is not None:
        close()
    else:
        del stream, iterator
        gc.collect()
    span = env.telemetry.only_span()
    assert "error.type" not in span.attributes
    output = json.loads(span.attributes["gen_ai.output.messages"])
    assert output and all("finish_reason" not in message for message in output), output
