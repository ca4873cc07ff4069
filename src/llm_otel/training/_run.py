"""A training or fine-tuning run: one span for the run, one per epoch and per evaluation (children
of the run's span), counters of steps, samples and tokens, a histogram of step time, and gauges
of the last logged loss, evaluation loss and metrics, learning rate, gradient norm, progress,
the time of the last step and PyTorch's peak GPU memory, computed when the metrics are collected.

Recording is a few counter adds and attribute stores on the training thread; nothing here reads
a tensor (the framework callbacks hand over Python numbers), so nothing waits for the GPU.
"""

from __future__ import annotations

import atexit
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import hw_attributes as hw
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._env import whole_number
from llm_otel._guard import guarded
from llm_otel.genai import GenAITelemetry, set_gauge_source
from llm_otel.genai._failure import end_span, record_failure, start_span
from llm_otel.manual._defaults import default_telemetry
from llm_otel.semconv import training as names

__all__ = ["MAX_EVALUATION_METRICS", "TrainingRun", "current_run", "end_unfinished_runs",
           "training_run"]  # fmt: skip

_logger = logging.getLogger("llm_otel")
MAX_EVALUATION_METRICS = 32  # evaluation metric names per run; more are dropped (one warning)
UNFINISHED = "unfinished"  # error.type of a run still open when the process exits

_current: ContextVar[TrainingRun | None] = ContextVar("llm_otel_training_run", default=None)
_running: dict[int, TrainingRun] = {}  # id -> run, for the gauges
_running_lock = threading.Lock()


def current_run() -> TrainingRun | None:
    """The training run whose ``with`` block is running here, if any (the framework callbacks
    join it instead of starting their own)."""
    return _current.get()


def _number(value: Any) -> float | None:
    """A loss, rate or norm as a float; None for what is not a real number (a tensor is read
    only when it is already on the CPU)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    item = getattr(value, "item", None)
    device = getattr(value, "device", None)
    if callable(item) and getattr(device, "type", "cpu") == "cpu":
        try:
            result = item()
        except Exception:
            return None
        return float(result) if isinstance(result, (int, float)) else None
    return None


class TrainingRun:
    """One run of a training loop; see :func:`training_run`."""

    def __init__(self, name: str, *, run_id: str | None = None, framework: str = "custom",
                 total_steps: int | None = None,
                 attributes: Mapping[str, AttributeValue] | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a training run needs a name (a non-empty string), not {name!r}")
        self.name = name
        self.run_id = None if run_id is None else str(run_id)
        self.framework = str(framework)
        self.total_steps = whole_number(total_steps, "total_steps")
        self._attributes = dict(attributes or {})
        self._wall_clock = wall_clock
        self._labels: dict[str, AttributeValue] = {names.LLM_OTEL_TRAINING_RUN_NAME: name}
        self.global_step = 0
        self.steps = 0  # optimizer steps this process recorded
        self.loss: float | None = None
        self.evaluation_loss: float | None = None
        self.learning_rate: float | None = None
        self.grad_norm: float | None = None
        self.evaluation_metrics: dict[str, float] = {}
        self.gpu_peak_memory: dict[str, int] = {}  # hw.id -> bytes
        self._last_step = 0.0
        self._span: Span | None = None
        self._epoch: tuple[Span, int] | None = None
        self._token: Any = None
        self._telemetry: GenAITelemetry | None = None
        self._metrics_warned = False

    # The run.

    @property
    def span(self) -> Span | None:
        """The run's span while it runs."""
        return self._span

    @property
    def running(self) -> bool:
        return self._span is not None

    def start(self) -> TrainingRun:
        """Open the run's span (a child of the current span, if any) and start reporting the
        run's gauges. A framework callback calls this; in code, use ``with``."""
        if self._span is not None:
            raise RuntimeError(f"training run {self.name!r} is already running; make a new one")
        telemetry = self._telemetry = default_telemetry()
        attributes: dict[str, AttributeValue] = {
            **self._attributes,
            names.LLM_OTEL_TRAINING_RUN_NAME: self.name,
            names.LLM_OTEL_TRAINING_FRAMEWORK: self.framework,
        }
        if self.run_id is not None:
            attributes[names.LLM_OTEL_TRAINING_RUN_ID] = self.run_id
        if self.total_steps is not None:
            attributes[names.LLM_OTEL_TRAINING_STEPS_TOTAL] = self.total_steps
        self._span = start_span(telemetry.tracer, f"training_run {self.name}",
                                SpanKind.INTERNAL, attributes)  # fmt: skip
        self._last_step = self._wall_clock()
        with guarded("training run start"):
            # The series exists from the start, so Prometheus' increase() sees the first NaN.
            telemetry.training_loss_nonfinite.add(0, self._labels)
        with _running_lock:
            _running[id(self)] = self
        return self

    def end(self, error: BaseException | None = None, *, error_type: str | None = None) -> None:
        """End the run (and an epoch left open); ``error`` (or just ``error_type``) marks it
        failed. Ending twice does nothing."""
        with _running_lock:
            _running.pop(id(self), None)
        span, self._span = self._span, None
        if span is None:
            return
        self.end_epoch(error, error_type=error_type)
        with guarded("training run end"):
            span.set_attribute(names.LLM_OTEL_TRAINING_STEP, self.global_step)
            self._fail(span, error, error_type)
        end_span(span)

    def _fail(self, span: Span, error: BaseException | None, error_type: str | None) -> None:
        if error is not None and not isinstance(error, GeneratorExit):
            kind = error_type or type(error).__qualname__
            span.set_attribute(error_attributes.ERROR_TYPE, kind)
            record_failure(span, error, kind, (self._telemetry or default_telemetry()).content)
        elif error_type is not None:
            span.set_attribute(error_attributes.ERROR_TYPE, error_type)
            span.set_status(trace.StatusCode.ERROR)

    def __enter__(self) -> TrainingRun:
        self.start()
        span = self._span
        assert span is not None
        self._token = (otel_context.attach(trace.set_span_in_context(span)), _current.set(self))
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        token, self._token = self._token, None
        if token is not None:
            _current.reset(token[1])
            otel_context.detach(token[0])
        self.end(error)

    async def __aenter__(self) -> TrainingRun:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.__exit__(kind, error, traceback)

    # Steps and logged values.

    def set_total_steps(self, total_steps: int) -> None:
        """The number of optimizer steps, when it is known only once the run starts."""
        self.total_steps = whole_number(total_steps, "total_steps")
        span = self._span
        if span is not None and self.total_steps is not None:
            span.set_attribute(names.LLM_OTEL_TRAINING_STEPS_TOTAL, self.total_steps)

    def step(self, count: int = 1, *, global_step: int | None = None,
             samples: int | None = None, tokens: int | None = None,
             duration: float | None = None) -> None:  # fmt: skip
        """Count ``count`` optimizer steps as finished (with the samples and tokens they
        consumed, and how long one took); ``global_step`` is where the run is now (it counts up
        from ``count`` when not given; a resumed run passes it)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive whole number, not {count!r}")
        self.steps += count
        self.global_step = (self.global_step + count if global_step is None
                            else whole_number(global_step, "global_step") or 0)  # fmt: skip
        self._last_step = self._wall_clock()
        with guarded("training step"):
            telemetry = self._telemetry or default_telemetry()
            labels = self._labels
            telemetry.training_steps.add(count, labels)
            if samples:
                telemetry.training_samples.add(whole_number(samples, "samples") or 0, labels)
            if tokens:
                telemetry.training_tokens.add(whole_number(tokens, "tokens") or 0, labels)
            if duration is not None and math.isfinite(duration) and duration >= 0:
                telemetry.training_step_duration.record(duration, labels)

    def heartbeat(self) -> None:
        """Note progress that is not a training step (an evaluation batch), so that a long
        evaluation does not look like a stalled run."""
        self._last_step = self._wall_clock()

    def log(self, *, loss: Any = None, learning_rate: Any = None, grad_norm: Any = None,
            gpu_memory: bool = True) -> None:  # fmt: skip
        """Report the values a training loop logs now (Python numbers, or tensors already on
        the CPU); a NaN or infinite loss is counted (``llm_otel.training.loss.nonfinite``), and
        the loss gauge is absent until a finite loss is logged again. ``gpu_memory`` also
        reads PyTorch's peak GPU memory (when torch is in use; it waits for nothing)."""
        with guarded("training log"):
            value = _number(loss)
            if value is not None:
                self.loss = value
                self._count_nonfinite(value)
            value = _number(learning_rate)
            if value is not None:
                self.learning_rate = value
            value = _number(grad_norm)
            if value is not None:
                self.grad_norm = value
            if gpu_memory:
                self.gpu_peak_memory.update(_gpu_peak_memory())

    def _count_nonfinite(self, value: float) -> None:
        if not math.isfinite(value):
            telemetry = self._telemetry or default_telemetry()
            telemetry.training_loss_nonfinite.add(1, self._labels)

    # Epochs and evaluations.

    def start_epoch(self, epoch: int) -> None:
        """Open the span of ``epoch`` (counted from 0), ending one left open."""
        self.end_epoch()
        parent = self._span
        if parent is None:
            return
        with guarded("training epoch start"):
            telemetry = self._telemetry or default_telemetry()
            attributes: dict[str, AttributeValue] = {
                names.LLM_OTEL_TRAINING_RUN_NAME: self.name,
                names.LLM_OTEL_TRAINING_EPOCH: int(epoch),
            }
            span = start_span(telemetry.tracer, f"training_epoch {self.name}", SpanKind.INTERNAL,
                              attributes, trace.set_span_in_context(parent))  # fmt: skip
            self._epoch = (span, int(epoch))

    def end_epoch(self, error: BaseException | None = None, *,
                  error_type: str | None = None) -> None:  # fmt: skip
        """End the open epoch's span, if any."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        span = epoch[0]
        with guarded("training epoch end"):
            span.set_attribute(names.LLM_OTEL_TRAINING_STEP, self.global_step)
            self._fail(span, error, error_type)
        end_span(span)

    @contextmanager
    def epoch(self, epoch: int) -> Iterator[None]:
        """A ``with`` block for one epoch (its span is a child of the run's)."""
        self.start_epoch(epoch)
        try:
            yield
        except BaseException as error:
            self.end_epoch(error)
            raise
        self.end_epoch()

    def record_evaluation(self, *, loss: Any = None, metrics: Mapping[str, Any] | None = None,
                          started: int | None = None, ended: int | None = None,
                          error: BaseException | None = None) -> None:  # fmt: skip
        """Report an evaluation that ran from ``started`` to ``ended`` (epoch nanoseconds; now
        when not given): its span (a child of the epoch's, else the run's), its loss and its
        other metrics (numbers only; at most 32 names per run)."""
        with guarded("training evaluation"):
            value = _number(loss)
            if value is not None:
                self.evaluation_loss = value
                self._count_nonfinite(value)
            for name, raw in (metrics or {}).items():
                number, key = _number(raw), str(name)
                if number is None:
                    continue
                if key not in self.evaluation_metrics and (
                        len(self.evaluation_metrics) >= MAX_EVALUATION_METRICS):  # fmt: skip
                    self._warn_metrics(key)
                    continue
                self.evaluation_metrics[key] = number
            parent = self._epoch[0] if self._epoch is not None else self._span
            if parent is None:
                return
            telemetry = self._telemetry or default_telemetry()
            attributes: dict[str, AttributeValue] = {
                names.LLM_OTEL_TRAINING_RUN_NAME: self.name,
                names.LLM_OTEL_TRAINING_STEP: self.global_step,
            }
            span = telemetry.tracer.start_span(
                f"training_evaluation {self.name}",
                trace.set_span_in_context(parent),
                SpanKind.INTERNAL,
                attributes,
                start_time=started,
            )
            self._fail(span, error, None)
            span.end(end_time=ended)

    @contextmanager
    def evaluation(self) -> Iterator[dict[str, Any]]:
        """A ``with`` block around an evaluation: put ``loss`` and other metrics in the dict it
        gives, and they are reported with its span when the block ends."""
        results: dict[str, Any] = {}
        started = time.time_ns()
        try:
            yield results
        except BaseException as error:
            self.record_evaluation(started=started, error=error)
            raise
        loss = results.pop("loss", None)
        self.record_evaluation(loss=loss, metrics=results, started=started)

    def _warn_metrics(self, key: str) -> None:
        if not self._metrics_warned:
            self._metrics_warned = True
            _logger.warning(
                "training run %r: more than %d evaluation metric names; %r and later new names "
                "are not recorded", self.name, MAX_EVALUATION_METRICS, key,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"<TrainingRun {self.name!r} step={self.global_step} loss={self.loss}>"


def _gpu_peak_memory() -> dict[str, int]:
    """PyTorch's peak allocated memory on each GPU it has initialised, by GPU UUID; nothing
    when torch is not imported or has not touched CUDA (this never initialises it)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return {}
    peaks: dict[str, int] = {}
    for index in range(cuda.device_count()):
        uuid = _uuid(cuda, index)
        if uuid is not None:
            peaks[uuid] = int(cuda.max_memory_allocated(index))
    return peaks


_uuids: dict[int, str | None] = {}


def _uuid(cuda: Any, index: int) -> str | None:
    if index not in _uuids:
        try:
            uuid = str(cuda.get_device_properties(index).uuid)
        except Exception:
            uuid = None
        # NVML (and so hw.id on the hw.gpu.* metrics) writes "GPU-" before the UUID.
        _uuids[index] = None if uuid is None else (uuid if uuid.startswith(("GPU-", "MIG-"))
                                                    else f"GPU-{uuid}")  # fmt: skip
    return _uuids[index]


def training_run(
    name: str,
    *,
    run_id: str | None = None,
    total_steps: int | None = None,
    framework: str = "custom",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> TrainingRun:
    """A training run, as a ``with`` block::

        with llm_otel.training_run("sft-support-bot", total_steps=len(loader) * epochs) as run:
            for epoch in range(epochs):
                with run.epoch(epoch):
                    for batch in loader:
                        loss = train_step(batch)
                        run.step(samples=len(batch))
                        if run.global_step % 50 == 0:
                            run.log(loss=loss.item(), learning_rate=scheduler.get_last_lr()[0])
                with run.evaluation() as results:
                    results["loss"] = evaluate()

    The Hugging Face Trainer and Lightning callbacks (``llm_otel.training.huggingface``,
    ``llm_otel.training.lightning``) do all of this for those loops, and join a run opened
    around ``trainer.train()`` / ``trainer.fit()`` with this function (so an exception that
    ends training marks the run failed)."""
    return TrainingRun(name, run_id=run_id, total_steps=total_steps, framework=framework,
                       attributes=attributes)  # fmt: skip


def join_or_start(
    name: str, *, run_id: str | None, framework: str, attributes: Mapping[str, AttributeValue]
) -> tuple[TrainingRun, bool]:
    """For a framework callback at the start of training: the run open around the loop (a
    ``training_run`` block), or a new one started here; and whether the callback owns it (ends
    it at the end of training)."""
    joined = current_run()
    if joined is not None and joined.running:
        return joined, False
    run = TrainingRun(name, run_id=run_id, framework=framework, attributes=attributes)
    return run.start(), True


def end_unfinished_runs() -> int:
    """End every run still open (a training loop that raised past a callback-started run, the
    process exiting) as failed with ``error.type`` ``unfinished``; returns how many. Called at
    exit, before the final export."""
    with _running_lock:
        runs = list(_running.values())
    for run in runs:
        run.end(error_type=UNFINISHED)
    return len(runs)


# The gauges, computed at collection over the runs open now.


def _runs() -> list[TrainingRun]:
    with _running_lock:
        return list(_running.values())


def _readings(attribute: str) -> Callable[[], list[tuple[float, dict[str, AttributeValue]]]]:
    def read() -> list[tuple[float, dict[str, AttributeValue]]]:
        found = []
        for run in _runs():
            value = getattr(run, attribute)
            if value is not None and math.isfinite(value):  # the SDK drops NaN, with a warning
                found.append((value, dict(run._labels)))
        return found

    return read


def _progress() -> list[tuple[float, dict[str, AttributeValue]]]:
    return [(min(run.global_step / run.total_steps, 1.0), dict(run._labels))
            for run in _runs() if run.total_steps]  # fmt: skip


def _evaluation_metrics() -> list[tuple[float, dict[str, AttributeValue]]]:
    return [(value, {**run._labels, names.LLM_OTEL_TRAINING_EVALUATION_METRIC_NAME: key})
            for run in _runs() for key, value in list(run.evaluation_metrics.items())
            if math.isfinite(value)]  # fmt: skip


def _gpu_memory() -> list[tuple[float, dict[str, AttributeValue]]]:
    return [(float(peak), {**run._labels, hw.HW_ID: uuid})
            for run in _runs() for uuid, peak in list(run.gpu_peak_memory.items())]  # fmt: skip


set_gauge_source(names.LLM_OTEL_TRAINING_LOSS, _readings("loss"))
set_gauge_source(names.LLM_OTEL_TRAINING_EVALUATION_LOSS, _readings("evaluation_loss"))
set_gauge_source(names.LLM_OTEL_TRAINING_LEARNING_RATE, _readings("learning_rate"))
set_gauge_source(names.LLM_OTEL_TRAINING_GRAD_NORM, _readings("grad_norm"))
set_gauge_source(names.LLM_OTEL_TRAINING_LAST_STEP, _readings("_last_step"))
set_gauge_source(names.LLM_OTEL_TRAINING_PROGRESS, _progress)
set_gauge_source(names.LLM_OTEL_TRAINING_EVALUATION_METRIC, _evaluation_metrics)
set_gauge_source(names.LLM_OTEL_TRAINING_GPU_MEMORY_PEAK, _gpu_memory)
atexit.register(end_unfinished_runs)  # also without configure(); ending twice does nothing
