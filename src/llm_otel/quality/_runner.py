"""Runs the evaluators on a sample of finished calls, on a background thread.

The request path only draws the sample (one ``random()``) and hands a finished call to a
bounded queue (``put_nowait``); a full queue drops the call and counts it
(``llm_otel.evaluation.dropped``). One daemon thread takes calls from the queue and runs each
evaluator: the built-ins inline, the user's (which have a timeout) on a few helper daemon
threads, waiting at most their timeout. An evaluator that raises, hangs or is slow costs that
evaluation (counted in ``llm_otel.evaluation.errors``), never the app's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.util.types import AttributeValue

from llm_otel._evaluation import emit_evaluation, evaluation_event
from llm_otel._guard import guarded, report_internal_error
from llm_otel.genai import CompletedCall, GenAITelemetry
from llm_otel.manual._defaults import default_telemetry
from llm_otel.quality._call import EvaluatedCall
from llm_otel.quality._drift import DriftMonitor
from llm_otel.quality._evaluator import EvaluationResult, EvaluationTimeout, Evaluator, within
from llm_otel.semconv.evaluation import LLM_OTEL_DETECTION_KIND, LLM_OTEL_DETECTION_TARGET

__all__ = ["DEFAULT_QUEUE_SIZE", "EvaluationRunner"]

DEFAULT_QUEUE_SIZE = 1000  # calls waiting for evaluation
EMBEDDING = "drift_embedding"  # gen_ai.evaluation.name of the drift embedding's errors
HELPERS = 4  # threads for evaluators with a timeout; a hung one holds one until it returns


class _Job:
    __slots__ = ("done", "error", "result", "taken", "work")

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.done = threading.Event()
        self.taken = False  # by a helper (a job given up before that is skipped)
        self.result: Any = None
        self.error: BaseException | None = None


class _Helpers:
    """A few daemon threads for evaluators with a timeout, started when first needed (daemon:
    an evaluator that never returns cannot hold the process at exit)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def run(self, work: Callable[[], Any], timeout: float) -> Any:
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._work, name="llm-otel-evaluator", daemon=True)
            thread.start()
            self._threads.append(thread)
        job = _Job(work)
        self._jobs.put(job)
        if not job.done.wait(timeout):
            job.taken = True  # still queued: no helper will start it now
            raise EvaluationTimeout
        if job.error is not None:
            raise job.error
        return job.result

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job.taken:
                continue
            job.taken = True
            try:
                job.result = job.work()
            except BaseException as exc:  # handed to the waiting side, which counts it
                job.error = exc
            finally:
                job.done.set()


class EvaluationRunner:
    """Evaluates ``sample_rate`` of the finished calls with ``evaluators`` off the request path
    and records each result as a ``gen_ai.evaluation.result`` event tied to the call's span,
    plus the evaluation and detection metrics. It is the genai core's call observer."""

    def __init__(
        self,
        evaluators: Sequence[Evaluator],
        sample_rate: float,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        telemetry: Callable[[], GenAITelemetry] = default_telemetry,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.evaluators = tuple(evaluators)
        self.drift = drift
        self.sample_rate = sample_rate
        self._telemetry = telemetry
        self._queue: queue.Queue[CompletedCall | None] = queue.Queue(queue_size)
        self._closed = False
        self._helpers = _Helpers(HELPERS)
        self._thread = threading.Thread(target=self._run, name="llm-otel-evaluation",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    # The request path: O(1), never blocks, never raises.

    def wants(self) -> bool:
        rate = self.sample_rate
        if self._closed or rate <= 0.0:
            return False
        return rate >= 1.0 or random.random() < rate

    def completed(self, call: CompletedCall) -> None:
        try:
            self._queue.put_nowait(call)
        except queue.Full:
            with guarded("evaluation queue full"):
                self._telemetry().evaluation_dropped.add(
                    1, {error_attributes.ERROR_TYPE: "queue_full"}
                )

    # The evaluation thread.

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            try:
                if call is None:
                    return
                with guarded("online evaluation"):
                    self.evaluate(call)
            finally:
                self._queue.task_done()

    def evaluate(self, completed: CompletedCall) -> None:
        """Run every evaluator on one call and record the results, then count the call in the
        drift windows (on the calling thread)."""
        call = EvaluatedCall(completed)
        telemetry = self._telemetry()
        scores: list[tuple[str, float]] = []
        for evaluator in self.evaluators:
            try:
                if evaluator.timeout is None:
                    result = evaluator.evaluate(call)
                else:
                    result = self._helpers.run(partial(evaluator.evaluate, call), evaluator.timeout)
                if result is not None:
                    self._record(telemetry, evaluator, call, result)
                    if result.score is not None:
                        scores.append((evaluator.name, float(result.score)))
            except EvaluationTimeout:  # the wait, or an async evaluator's own, ran out
                self._failed(telemetry, evaluator.name, "timeout")
            except Exception as exc:
                # Its type only: the message may quote the content it was judging.
                report_internal_error(f"evaluator {evaluator.name!r}", exc)
                self._failed(telemetry, evaluator.name, type(exc).__qualname__)
        drift = self.drift
        if drift is not None:
            embedding = None
            if drift.embed is not None and call.error_type is None and call.output_text:
                embedding = self._embed(telemetry, drift, call.output_text)
            with guarded("drift"):
                drift.observe(call, scores, embedding)

    def _embed(self, telemetry: GenAITelemetry, drift: DriftMonitor,
               text: str) -> list[float] | None:  # fmt: skip
        """The answer's embedding from the user's function, on a helper thread (None: it
        failed or ran past its timeout, counted as an evaluation error)."""
        timeout = drift.settings.embed_timeout
        try:
            vector: list[float] = self._helpers.run(
                partial(_embedding, drift.embed, text, timeout), timeout
            )
            return vector
        except EvaluationTimeout:
            self._failed(telemetry, EMBEDDING, "timeout")
        except Exception as exc:
            report_internal_error("drift embedding", exc)
            self._failed(telemetry, EMBEDDING, type(exc).__qualname__)
        return None

    @staticmethod
    def _failed(telemetry: GenAITelemetry, name: str, error_type: str) -> None:
        telemetry.evaluation_errors.add(
            1, {ga.GEN_AI_EVALUATION_NAME: name, error_attributes.ERROR_TYPE: error_type}
        )

    @staticmethod
    def _record(telemetry: GenAITelemetry, evaluator: Evaluator, call: EvaluatedCall,
                result: EvaluationResult) -> None:  # fmt: skip
        if not isinstance(result, EvaluationResult):
            raise TypeError(f"evaluate() returned a {type(result).__name__}")
        score = result.score
        if score is not None and (isinstance(score, bool) or not math.isfinite(score)):
            raise ValueError("the score is not a finite number")
        explanation = result.explanation
        if explanation is not None and evaluator.quotes_content:
            policy = telemetry.content  # it may quote the content: recorded as content is
            explanation = policy.clean_text(explanation) if policy.enabled else None
        event = evaluation_event(evaluator.name, None if score is None else float(score),
                                 result.label, explanation, call.response_id, None)  # fmt: skip
        emit_evaluation(telemetry, call.span_context, event, call.provider, call.request_model)
        for detection in result.detections:
            attributes: dict[str, AttributeValue] = {
                LLM_OTEL_DETECTION_KIND: detection.kind,
                LLM_OTEL_DETECTION_TARGET: detection.target,
                ga.GEN_AI_EVALUATION_NAME: evaluator.name,
                ga.GEN_AI_PROVIDER_NAME: call.provider,
            }
            if call.request_model:
                attributes[ga.GEN_AI_REQUEST_MODEL] = call.request_model
            telemetry.detections.add(1, attributes)

    # Lifecycle.

    def flush(self, timeout: float) -> bool:
        """Wait until every call handed over so far is evaluated (False if not in time)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float) -> None:
        """Take no more calls, evaluate those taken within ``timeout`` seconds, then stop the
        thread (what is left is evaluated if the process lives on)."""
        self._closed = True
        self.flush(timeout)
        with contextlib.suppress(queue.Full):  # still busy: the daemon thread ends with the process
            self._queue.put_nowait(None)


def _embedding(embed: Any, text: str, timeout: float) -> list[float]:
    """``embed(text)`` (awaited if it is async) as a list of finite floats."""
    vector = embed(text)
    if inspect.isawaitable(vector):
        vector = asyncio.run(within(vector, timeout))
    if isinstance(vector, (str, bytes)) or not hasattr(vector, "__len__"):
        raise TypeError(f"an embedding is a sequence of numbers, not {type(vector).__name__}")
    values = [float(x) for x in vector]
    if not all(math.isfinite(x) for x in values):
        raise ValueError("an embedding holds a number that is not finite")
    return values
