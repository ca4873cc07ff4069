"""A batch job over many items: one span for the run, one per item (the LLM calls an item makes
nest under it, from any thread or task), a counter of finished items by outcome, and gauges of
progress, remaining items, throughput, ETA and the time of the last progress, computed when the
metrics are collected."""

from __future__ import annotations

import functools
import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._env import whole_number
from llm_otel._guard import guarded
from llm_otel.genai import GenAITelemetry, set_gauge_source
from llm_otel.genai._failure import end_span, fail_span, record_failure, start_span
from llm_otel.manual._defaults import default_telemetry
from llm_otel.semconv import jobs as names

__all__ = ["BatchJob", "JobItem", "batch_job", "current_job"]

F = TypeVar("F", bound=Callable[..., Any])
THROUGHPUT_WINDOW = 60.0  # seconds of finished items the throughput is measured over

_current: ContextVar[BatchJob | None] = ContextVar("llm_otel_batch_job", default=None)
_running: dict[int, BatchJob] = {}  # id -> job, for the gauges
_running_lock = threading.Lock()


def current_job() -> BatchJob | None:
    """The batch job whose block (or decorated function) is running here, if any."""
    return _current.get()


class BatchJob:
    """One run of a job over many items; see :func:`batch_job`."""

    def __init__(self, name: str, *, total: int | None = None, job_id: str | None = None,
                 done: int = 0, item_spans: bool = True,
                 attributes: dict[str, AttributeValue] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a batch job needs a name (a non-empty string), not {name!r}")
        self.name = name
        self.job_id = None if job_id is None else str(job_id)
        self._total = whole_number(total, "total", of="items")
        self.done_before = whole_number(done, "done", of="items") or 0
        if self._total is not None and self.done_before > self._total:
            raise ValueError(f"done ({done}) is more than total ({total})")
        self.item_spans = bool(item_spans)
        self._attributes = dict(attributes or {})
        self._clock, self._wall_clock = clock, wall_clock
        self._lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self._finished: deque[float] = deque()  # monotonic times of the last minute's items
        self._started = 0.0
        self._last_progress = 0.0
        self._span: Span | None = None
        self._tokens: list[Any] = []
        self._telemetry: GenAITelemetry | None = None

    # What a run has done.

    @property
    def total(self) -> int | None:
        return self._total

    def set_total(self, total: int) -> None:
        """The number of items, when it is known only once the job runs."""
        self._total = whole_number(total, "total", of="items")
        span = self._span
        if span is not None and self._total is not None:
            span.set_attribute(names.LLM_OTEL_JOB_ITEMS_TOTAL, self._total)

    @property
    def remaining(self) -> int | None:
        if self._total is None:
            return None
        return max(self._total - self.done_before - self.ok - self.failed, 0)

    @property
    def progress(self) -> float | None:
        """Finished items over the total (earlier runs included), 0 to 1."""
        if not self._total:
            return None
        return min((self.done_before + self.ok + self.failed) / self._total, 1.0)

    def throughput(self) -> float:
        """Items finished per second over the last minute (since the start, if shorter)."""
        now = self._clock()
        with self._lock:
            self._forget(now)
            count = len(self._finished)
        elapsed = min(now - self._started, THROUGHPUT_WINDOW)
        return count / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the last minute's throughput (None: unknown total, or no progress)."""
        remaining, rate = self.remaining, self.throughput()
        if remaining is None or rate <= 0:
            return None
        return remaining / rate

    def _forget(self, now: float) -> None:
        finished = self._finished
        while finished and finished[0] <= now - THROUGHPUT_WINDOW:
            finished.popleft()

    # Items.

    def item(self, item_id: Any = None) -> JobItem:
        """A ``with`` (or ``async with``) block for one item: its span is a child of the job's
        span, whichever thread or task runs it, and the LLM calls made in it nest under it. An
        exception counts the item as failed and is re-raised; catch it to go on with the job."""
        return JobItem(self, None if item_id is None else str(item_id))

    def record(self, ok: bool = True, *, error_type: str | None = None, count: int = 1) -> None:
        """Count ``count`` items as finished without an item block (no span): for a job that
        processes items in bulk or counts them itself."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive whole number, not {count!r}")
        self._finish(ok, error_type, count)

    def _finish(self, ok: bool, error_type: str | None, count: int = 1) -> None:
        now = self._clock()
        with self._lock:
            if ok:
                self.ok += count
            else:
                self.failed += count
            self._forget(now)
            self._finished.extend([now] * min(count, 100_000))
            self._last_progress = self._wall_clock()
        with guarded("batch job counter"):
            attributes: dict[str, AttributeValue] = {
                names.LLM_OTEL_JOB_NAME: self.name,
                names.LLM_OTEL_JOB_ITEM_OUTCOME: "ok" if ok else "failed",
            }
            if not ok:
                attributes[error_attributes.ERROR_TYPE] = error_type or "_OTHER"
            telemetry = self._telemetry or default_telemetry()
            telemetry.job_items.add(count, attributes)

    # The run.

    def __enter__(self) -> BatchJob:
        if self._span is not None:
            raise RuntimeError(f"batch job {self.name!r} is already running; make a new one")
        telemetry = self._telemetry = default_telemetry()
        attributes: dict[str, AttributeValue] = {**self._attributes,
                                                 names.LLM_OTEL_JOB_NAME: self.name}  # fmt: skip
        if self.job_id is not None:
            attributes[names.LLM_OTEL_JOB_ID] = self.job_id
        if self._total is not None:
            attributes[names.LLM_OTEL_JOB_ITEMS_TOTAL] = self._total
        if self.done_before:
            attributes[names.LLM_OTEL_JOB_ITEMS_DONE_BEFORE] = self.done_before
        self._span = span = start_span(telemetry.tracer, f"batch_job {self.name}",
                                       SpanKind.INTERNAL, attributes)  # fmt: skip
        self._started = self._clock()
        self._last_progress = self._wall_clock()
        self._tokens.append((otel_context.attach(trace.set_span_in_context(span)),
                             _current.set(self)))  # fmt: skip
        with _running_lock:
            _running[id(self)] = self
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        with _running_lock:
            _running.pop(id(self), None)
        span, self._span = self._span, None
        context_token, job_token = self._tokens.pop()
        _current.reset(job_token)
        otel_context.detach(context_token)
        if span is None:
            return
        telemetry = self._telemetry or default_telemetry()
        with guarded("batch job end"):
            span.set_attribute(names.LLM_OTEL_JOB_ITEMS_OK, self.ok)
            span.set_attribute(names.LLM_OTEL_JOB_ITEMS_FAILED, self.failed)
            attributes: dict[str, AttributeValue] = {
                names.LLM_OTEL_JOB_NAME: self.name,
                names.LLM_OTEL_JOB_ITEM_OUTCOME: "ok",
            }
            if error is not None and not isinstance(error, GeneratorExit):
                error_type = fail_span(span, error, telemetry.content)
                attributes[names.LLM_OTEL_JOB_ITEM_OUTCOME] = "failed"
                attributes[error_attributes.ERROR_TYPE] = error_type
            telemetry.job_runs.add(1, attributes)
        end_span(span)

    async def __aenter__(self) -> BatchJob:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.__exit__(kind, error, traceback)

    @property
    def span(self) -> Span | None:
        """The job's span while it runs."""
        return self._span

    def __repr__(self) -> str:
        return (f"<BatchJob {self.name!r} ok={self.ok} failed={self.failed} "
                f"total={self._total}>")  # fmt: skip


class JobItem:
    """One item's block (from :meth:`BatchJob.item`)."""

    __slots__ = ("_job", "_span", "_token", "item_id")

    def __init__(self, job: BatchJob, item_id: str | None) -> None:
        self._job, self.item_id = job, item_id
        self._span: Span | None = None
        self._token: Any = None

    def __enter__(self) -> JobItem:
        job = self._job
        parent = job.span
        if job.item_spans and parent is not None:
            telemetry = job._telemetry or default_telemetry()
            attributes: dict[str, AttributeValue] = {names.LLM_OTEL_JOB_NAME: job.name}
            if self.item_id is not None:
                attributes[names.LLM_OTEL_JOB_ITEM_ID] = self.item_id
            context = trace.set_span_in_context(parent)
            self._span = span = start_span(telemetry.tracer, f"batch_item {job.name}",
                                           SpanKind.INTERNAL, attributes, context)  # fmt: skip
            self._token = otel_context.attach(trace.set_span_in_context(span, context))
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        span, token = self._span, self._token
        self._span = self._token = None
        if token is not None:
            otel_context.detach(token)
        failed = isinstance(error, Exception)
        error_type = type(error).__qualname__ if failed else None
        if span is not None:
            with guarded("batch item end"):
                if failed:
                    span.set_attribute(error_attributes.ERROR_TYPE, str(error_type))
                    telemetry = self._job._telemetry or default_telemetry()
                    record_failure(span, error, str(error_type), telemetry.content)
            end_span(span)
        if error is None or failed:  # an interrupt (KeyboardInterrupt, cancel) finishes nothing
            self._job._finish(not failed, error_type)

    async def __aenter__(self) -> JobItem:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.__exit__(kind, error, traceback)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)


class _Factory:
    """``batch_job(...)``: a :class:`BatchJob` for a ``with`` block, or a decorator that runs
    each call of the function as a new run of the job."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self._name, self._options = name, options
        BatchJob(name, **options)  # the arguments are checked now, not at the first run
        self._open: list[BatchJob] = []

    def __enter__(self) -> BatchJob:
        job = BatchJob(self._name, **self._options)
        self._open.append(job)
        return job.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._open.pop().__exit__(*exc_info)

    async def __aenter__(self) -> BatchJob:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with BatchJob(self._name, **self._options):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with BatchJob(self._name, **self._options):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]


def batch_job(name: str, *, total: int | None = None, job_id: str | None = None, done: int = 0,
              item_spans: bool = True,
              attributes: dict[str, AttributeValue] | None = None) -> Any:  # fmt: skip
    """A batch job over many items, as a ``with`` (or ``async with``) block or a decorator::

        with llm_otel.batch_job("nightly-summaries", total=len(tickets), job_id=today) as job:
            for ticket in tickets:
                try:
                    with job.item(ticket.id):
                        summarise(ticket)          # its LLM calls nest under the item's span
                except Exception:
                    continue                       # counted as failed; the job goes on

    ``total`` (settable later with ``job.set_total``) gives progress, remaining items and the
    ETA; ``done`` is how many items earlier runs finished (a resumed job); ``job_id`` names
    this run on its span; ``item_spans=False`` counts items without a span each. Decorating a
    function makes each call a run (``llm_otel.current_job()`` is the job inside it)."""
    return _Factory(name, {"total": total, "job_id": job_id, "done": done,
                           "item_spans": item_spans, "attributes": attributes})  # fmt: skip


# The gauges, computed at collection over the jobs running now (runs of one name added up).


def _by_name() -> dict[str, list[BatchJob]]:
    with _running_lock:
        jobs = list(_running.values())
    grouped: dict[str, list[BatchJob]] = {}
    for job in jobs:
        grouped.setdefault(job.name, []).append(job)
    return grouped


def _attributes(name: str) -> dict[str, AttributeValue]:
    return {names.LLM_OTEL_JOB_NAME: name}


def _remaining() -> Iterator[tuple[float, dict[str, AttributeValue]]]:
    for name, jobs in _by_name().items():
        left = [job.remaining for job in jobs]
        if all(value is not None for value in left):
            yield float(sum(v for v in left if v is not None)), _attributes(name)


def _progress() -> Iterator[tuple[float, dict[str, AttributeValue]]]:
    for name, jobs in _by_name().items():
        totals = [job.total for job in jobs]
        if all(totals):
            finished = sum(min(j.done_before + j.ok + j.failed, j.total or 0) for j in jobs)
            yield finished / sum(t for t in totals if t), _attributes(name)


def _throughput() -> Iterator[tuple[float, dict[str, AttributeValue]]]:
    for name, jobs in _by_name().items():
        yield sum(job.throughput() for job in jobs), _attributes(name)


def _eta() -> Iterator[tuple[float, dict[str, AttributeValue]]]:
    for name, jobs in _by_name().items():
        left = [job.remaining for job in jobs]
        rate = sum(job.throughput() for job in jobs)
        if rate > 0 and all(value is not None for value in left):
            seconds = sum(v for v in left if v is not None) / rate
            if math.isfinite(seconds):
                yield seconds, _attributes(name)


def _last_progress() -> Iterator[tuple[float, dict[str, AttributeValue]]]:
    for name, jobs in _by_name().items():
        yield max(job._last_progress for job in jobs), _attributes(name)


set_gauge_source(names.LLM_OTEL_JOB_REMAINING, lambda: list(_remaining()))
set_gauge_source(names.LLM_OTEL_JOB_PROGRESS, lambda: list(_progress()))
set_gauge_source(names.LLM_OTEL_JOB_THROUGHPUT, lambda: list(_throughput()))
set_gauge_source(names.LLM_OTEL_JOB_ETA, lambda: list(_eta()))
set_gauge_source(names.LLM_OTEL_JOB_LAST_PROGRESS, lambda: list(_last_progress()))
