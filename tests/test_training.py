"""Training runs (issue 22, part 3), the framework-neutral core: the span tree (epochs and
evaluations under the run), the counters and the step-time histogram, the gauges while a run is
open and gone after, NaN and infinite losses, a run left open ended at exit, joining a run
opened around a framework's loop, peak GPU memory by GPU UUID, and bad input. The Hugging Face
and Lightning callbacks are tested with the real frameworks in tests/training/."""

from __future__ import annotations

import logging
import math
import sys
import types
from typing import Any

import pytest

import llm_otel
from llm_otel.training import TrainingRun, current_run, end_unfinished_runs, training_run
from tests.conftest import Telemetry


def gauges(telemetry: Telemetry, run: str) -> dict[str, float]:
    found = {}
    for name in ("loss", "evaluation.loss", "learning_rate", "grad_norm", "progress",
                 "last_step"):  # fmt: skip
        for point in telemetry.points(f"llm_otel.training.{name}"):
            if point.attributes["llm_otel.training.run.name"] == run:
                found[name] = point.value
    return found


def total(telemetry: Telemetry, name: str, run: str) -> float:
    return sum(p.value for p in telemetry.points(name)
               if p.attributes["llm_otel.training.run.name"] == run)  # fmt: skip


def test_a_run_its_epochs_evaluations_and_metrics(telemetry: Telemetry) -> None:
    clock = [1_800_000_000.0]
    run = TrainingRun("sft-bot", run_id="exp-7", total_steps=6, wall_clock=lambda: clock[0])
    assert llm_otel.training_run is training_run
    with run:
        assert current_run() is run
        for epoch in range(2):
            with run.epoch(epoch):
                for _ in range(3):
                    clock[0] += 2.0
                    run.step(samples=8, tokens=8 * 128, duration=0.25)
                run.log(loss=2.5 - epoch, learning_rate=1e-4, grad_norm=0.75)
                open_gauges = gauges(telemetry, "sft-bot")
                with run.evaluation() as results:
                    results["loss"] = 2.0 - epoch
                    results["eval_accuracy"] = 0.5 + epoch / 10
                    results["eval_note"] = "not a number"  # skipped
    assert current_run() is None
    assert open_gauges == {"loss": 1.5, "evaluation.loss": 2.0, "learning_rate": 1e-4,
                           "grad_norm": 0.75, "progress": 1.0,
                           "last_step": 1_800_000_012.0}  # fmt: skip
    assert gauges(telemetry, "sft-bot") == {}  # the run ended: its gauges are gone

    spans = telemetry.spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (root,) = by_name["training_run sft-bot"]
    assert root.attributes["llm_otel.training.run.id"] == "exp-7"
    assert root.attributes["llm_otel.training.framework"] == "custom"
    assert root.attributes["llm_otel.training.steps.total"] == 6
    assert root.attributes["llm_otel.training.step"] == 6
    assert root.status.is_ok
    epochs = by_name["training_epoch sft-bot"]
    assert [e.attributes["llm_otel.training.epoch"] for e in epochs] == [0, 1]
    assert [e.attributes["llm_otel.training.step"] for e in epochs] == [3, 6]
    assert all(e.parent.span_id == root.context.span_id for e in epochs)
    evaluations = by_name["training_evaluation sft-bot"]
    assert [e.parent.span_id for e in evaluations] == [e.context.span_id for e in epochs]
    assert [e.attributes["llm_otel.training.step"] for e in evaluations] == [3, 6]

    assert total(telemetry, "llm_otel.training.steps", "sft-bot") == 6
    assert total(telemetry, "llm_otel.training.samples", "sft-bot") == 48
    assert total(telemetry, "llm_otel.training.tokens", "sft-bot") == 48 * 128
    (histogram,) = telemetry.points("llm_otel.training.step.duration")
    assert histogram.count == 6 and histogram.sum == pytest.approx(1.5)
    assert telemetry.metric("llm_otel.training.step.duration").unit == "s"
    assert [p.value for p in telemetry.points("llm_otel.training.loss.nonfinite")] == [0]


def test_evaluation_metrics_are_gauges_by_name_and_bounded(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with training_run("many-metrics") as run:
        run.record_evaluation(loss=0.5, metrics={"eval_accuracy": 0.9, "eval_f1": 0.8})
        names = {p.attributes["llm_otel.training.evaluation.metric.name"]: p.value
                 for p in telemetry.points("llm_otel.training.evaluation.metric")}  # fmt: skip
        assert names == {"eval_accuracy": 0.9, "eval_f1": 0.8}
        with caplog.at_level(logging.WARNING, logger="llm_otel"):
            for round_ in range(2):
                run.record_evaluation(metrics={f"m{i}": i + round_ for i in range(40)})
        points = telemetry.points("llm_otel.training.evaluation.metric")
        assert len(points) == 32  # the first 32 names; later ones dropped, one warning
        assert {p.attributes["llm_otel.training.evaluation.metric.name"]: p.value
                for p in points}["m0"] == 1  # fmt: skip
    warnings = [r for r in caplog.records if "evaluation metric names" in r.getMessage()]
    assert len(warnings) == 1


def test_nan_and_infinite_losses_are_counted_and_not_reported_as_values(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with training_run("diverging") as run, caplog.at_level(logging.WARNING):
        run.step()
        run.log(loss=1.5)
        run.log(loss=float("nan"))
        assert math.isnan(run.loss)  # the run keeps what was logged ...
        assert "loss" not in gauges(telemetry, "diverging")  # ... the SDK would drop it
        run.log(loss=float("inf"))
        run.record_evaluation(loss=float("-inf"), metrics={"eval_ppl": float("inf")})
        assert gauges(telemetry, "diverging").keys() == {"last_step"}
        assert telemetry.points("llm_otel.training.evaluation.metric") == []
        run.log(loss=3.0)
        assert gauges(telemetry, "diverging")["loss"] == 3.0
    assert not [r for r in caplog.records if "non-finite" in r.getMessage()]
    assert total(telemetry, "llm_otel.training.loss.nonfinite", "diverging") == 3


def test_the_nonfinite_counter_exists_from_the_start_so_the_first_nan_is_an_increase(
    telemetry: Telemetry,
) -> None:
    with training_run("fine"):
        (point,) = telemetry.points("llm_otel.training.loss.nonfinite")
        assert point.value == 0


def test_evaluation_batches_are_progress_too(telemetry: Telemetry) -> None:
    clock = [100.0]
    with TrainingRun("long-eval", wall_clock=lambda: clock[0]) as run:
        run.step()
        clock[0] = 700.0
        run.heartbeat()
        assert gauges(telemetry, "long-eval")["last_step"] == 700.0


def test_an_exception_fails_the_run_and_its_epoch(telemetry: Telemetry) -> None:
    with pytest.raises(MemoryError), training_run("oom") as run, run.epoch(0):
        run.step()
        raise MemoryError("CUDA out of memory")
    spans = {s.name: s for s in telemetry.spans()}
    for name in ("training_run oom", "training_epoch oom"):
        assert spans[name].attributes["error.type"] == "MemoryError"
        assert not spans[name].status.is_ok


def test_a_run_left_open_is_ended_as_unfinished(telemetry: Telemetry) -> None:
    run = TrainingRun("callback-started", framework="transformers").start()
    run.start_epoch(0)
    assert telemetry.points("llm_otel.training.last_step")
    assert end_unfinished_runs() == 1
    assert end_unfinished_runs() == 0
    assert not run.running
    spans = {s.name: s for s in telemetry.spans()}
    for name in ("training_run callback-started", "training_epoch callback-started"):
        assert spans[name].attributes["error.type"] == "unfinished"
        assert not spans[name].status.is_ok
    assert telemetry.points("llm_otel.training.last_step") == []


def test_shutdown_ends_open_runs_before_the_final_export(telemetry: Telemetry) -> None:
    from llm_otel import _exit

    TrainingRun("at-exit").start()
    _exit.shutdown_within([], seconds=1.0)
    assert [s.name for s in telemetry.spans()] == ["training_run at-exit"]


def test_llm_calls_and_spans_in_a_run_nest_under_it(telemetry: Telemetry) -> None:
    with training_run("rlhf") as run, llm_otel.task("reward"):
        pass
    spans = {s.name: s for s in telemetry.spans()}
    reward = next(s for name, s in spans.items() if "reward" in name)
    assert reward.parent.span_id == spans["training_run rlhf"].context.span_id
    assert run.span is None


def test_resumed_runs_pass_the_global_step(telemetry: Telemetry) -> None:
    with training_run("resumed", total_steps=100) as run:
        run.global_step = 60
        run.step()
        assert gauges(telemetry, "resumed")["progress"] == pytest.approx(0.61)
        run.step(2, global_step=80)
        assert gauges(telemetry, "resumed")["progress"] == pytest.approx(0.8)
    assert total(telemetry, "llm_otel.training.steps", "resumed") == 3


def test_peak_gpu_memory_is_read_from_torch_by_gpu_uuid_without_initialising_cuda(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Cuda:
        initialized = False

        def is_initialized(self) -> bool:
            return self.initialized

        def device_count(self) -> int:
            return 2

        def get_device_properties(self, index: int) -> Any:
            return types.SimpleNamespace(uuid=f"58ba1d2e-0000-0000-0000-00000000000{index}")

        def max_memory_allocated(self, index: int) -> int:
            return (index + 1) * 2**30

    cuda = Cuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr("llm_otel.training._run._uuids", {})
    with training_run("gpu") as run:
        run.log(loss=1.0)
        assert telemetry.points("llm_otel.training.gpu.memory.peak") == []
        cuda.initialized = True
        run.log(loss=1.0)
        peaks = {p.attributes["hw.id"]: p.value
                 for p in telemetry.points("llm_otel.training.gpu.memory.peak")}  # fmt: skip
        assert telemetry.metric("llm_otel.training.gpu.memory.peak").unit == "By"
    assert peaks == {"GPU-58ba1d2e-0000-0000-0000-000000000000": 2**30,
                     "GPU-58ba1d2e-0000-0000-0000-000000000001": 2**31}  # fmt: skip


def test_values_that_are_not_numbers_are_ignored_and_bad_arguments_rejected(
    telemetry: Telemetry,
) -> None:
    with training_run("odd") as run:
        run.log(loss="high", learning_rate=True, grad_norm=None)
        assert gauges(telemetry, "odd").keys() == {"last_step"}
        with pytest.raises(ValueError, match="positive whole number"):
            run.step(0)
        with pytest.raises(ValueError, match="whole number"):
            run.step(global_step=-1)
        with pytest.raises(RuntimeError, match="already running"):
            run.start()
    with pytest.raises(ValueError, match="needs a name"):
        training_run("")
    with pytest.raises(ValueError, match="total_steps"):
        training_run("x", total_steps=1.5)  # type: ignore[arg-type]


def test_recording_failures_never_reach_the_training_loop(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_otel.manual import _defaults

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(_defaults._telemetry.training_steps, "add", broken)
    with training_run("faulty") as run:
        run.step()
        run.log(loss=1.0)
    assert run.global_step == 1
