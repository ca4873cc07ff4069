"""The Hugging Face Trainer callback with the real ``transformers`` Trainer on the CPU: a tiny
GPT-2 built here with random weights (no download) trains for a few steps. The span tree, steps,
samples and tokens against the Trainer's own state, the loss, learning rate, gradient norm and
evaluation values against what the Trainer logged, a NaN loss counted, a raising run marked
failed when wrapped in training_run, and no span left open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

import llm_otel
from llm_otel.training import end_unfinished_runs
from llm_otel.training.huggingface import OpenTelemetryCallback
from tests.conftest import Telemetry

SEQUENCE = 16


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, rows: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 64, (rows, SEQUENCE), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=SEQUENCE, n_embd=32, n_layer=1,
                                      n_head=2))  # fmt: skip


def arguments(tmp_path: Path, **overrides: Any) -> TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": str(tmp_path / "sft-tiny"), "num_train_epochs": 2,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
        "learning_rate": 1e-3, "logging_steps": 2, "eval_strategy": "epoch",
        "save_strategy": "no", "report_to": [], "use_cpu": True, "disable_tqdm": True,
        "include_num_input_tokens_seen": "all", "seed": 0,
    }  # fmt: skip
    settings.update(overrides)
    return TrainingArguments(**settings)


class Snapshot(TrainerCallback):  # type: ignore[misc]
    """Runs after ours: what our gauges say when the Trainer logs or evaluates."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.logged: list[tuple[dict[str, Any], dict[str, float]]] = []
        self.evaluated: list[tuple[dict[str, Any], dict[str, float]]] = []

    def _gauges(self) -> dict[str, float]:
        found = {}
        for name in ("loss", "learning_rate", "grad_norm", "evaluation.loss", "progress"):
            for point in self.telemetry.points(f"llm_otel.training.{name}"):
                found[name] = point.value
        return found

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        self.logged.append((dict(logs or {}), self._gauges()))

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kw: Any) -> None:  # fmt: skip
        self.evaluated.append((dict(metrics or {}), self._gauges()))


def total(telemetry: Telemetry, name: str) -> float:
    return sum(point.value for point in telemetry.points(name))


def test_a_trainer_run_is_traced_and_measured(telemetry: Telemetry, tmp_path: Path) -> None:
    snapshot = Snapshot(telemetry)
    trainer = Trainer(model=tiny_gpt2(), args=arguments(tmp_path), train_dataset=Tokens(32),
                      eval_dataset=Tokens(8, seed=1),
                      callbacks=[OpenTelemetryCallback(run_id="exp-1"), snapshot])  # fmt: skip
    result = trainer.train()
    state = trainer.state
    assert state.global_step == 8  # 32 rows / (4 x 2) per step, 2 epochs

    spans = telemetry.spans()
    (run,) = [s for s in spans if s.name == "training_run sft-tiny"]
    assert run.attributes["llm_otel.training.framework"] == "transformers"
    assert run.attributes["llm_otel.training.run.id"] == "exp-1"
    assert run.attributes["llm_otel.training.steps.total"] == 8
    assert run.attributes["llm_otel.training.step"] == 8
    assert run.status.is_ok
    epochs = [s for s in spans if s.name == "training_epoch sft-tiny"]
    assert [e.attributes["llm_otel.training.epoch"] for e in epochs] == [0, 1]
    evaluations = [s for s in spans if s.name == "training_evaluation sft-tiny"]
    assert [e.attributes["llm_otel.training.step"] for e in evaluations] == [4, 8]
    family = {run.context.span_id} | {e.context.span_id for e in epochs}
    assert all(s.parent.span_id in family for s in epochs + evaluations)
    assert all(e.end_time > e.start_time for e in evaluations)

    assert total(telemetry, "llm_otel.training.steps") == 8
    assert total(telemetry, "llm_otel.training.samples") == 8 * 4 * 2
    assert total(telemetry, "llm_otel.training.tokens") == state.num_input_tokens_seen == 1024
    (durations,) = telemetry.points("llm_otel.training.step.duration")
    assert durations.count == 8 and 0 < durations.sum < result.metrics["train_runtime"]

    training_logs = [(logs, seen) for logs, seen in snapshot.logged if "loss" in logs]
    assert len(training_logs) == 4
    for logs, seen in training_logs:
        assert seen["loss"] == pytest.approx(logs["loss"])
        assert seen["learning_rate"] == pytest.approx(logs["learning_rate"])
        assert seen["grad_norm"] == pytest.approx(logs["grad_norm"])
    assert [seen["progress"] for _, seen in training_logs] == [0.25, 0.5, 0.75, 1.0]
    for metrics, seen in snapshot.evaluated:
        assert seen["evaluation.loss"] == pytest.approx(metrics["eval_loss"])
    assert telemetry.points("llm_otel.training.loss") == []  # the run is over
    assert end_unfinished_runs() == 0


class Diverging(torch.nn.Module):
    """A model whose loss turns NaN from its third forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        self.calls += 1
        loss = (self.weight.sum() * input_ids.float().mean()) ** 2
        return {"loss": loss * float("nan") if self.calls > 2 else loss}


def test_a_nan_loss_is_counted(telemetry: Telemetry, tmp_path: Path) -> None:
    # logging_nan_inf_filter (on by default) would log the average of the finite losses instead.
    args = arguments(tmp_path, num_train_epochs=1, gradient_accumulation_steps=1,
                     logging_steps=1, eval_strategy="no", logging_nan_inf_filter=False)  # fmt: skip
    Trainer(model=Diverging(), args=args, train_dataset=Tokens(16),
            callbacks=[OpenTelemetryCallback("diverging")]).train()  # fmt: skip
    assert total(telemetry, "llm_otel.training.loss.nonfinite") == 2  # steps 3 and 4 of 4


class Failing(TrainerCallback):  # type: ignore[misc]
    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == 3:
            raise RuntimeError("the data loader lost its shard")


def test_a_failing_trainer_inside_training_run_marks_the_run_failed(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    trainer = Trainer(model=tiny_gpt2(), args=arguments(tmp_path, eval_strategy="no"),
                      train_dataset=Tokens(32),
                      callbacks=[OpenTelemetryCallback(), Failing()])  # fmt: skip
    with pytest.raises(RuntimeError, match="lost its shard"), llm_otel.training_run("wrapped"):
        trainer.train()
    spans = {s.name: s for s in telemetry.spans()}
    assert "training_run sft-tiny" not in spans  # the callback joined the open run
    run = spans["training_run wrapped"]
    assert run.attributes["error.type"] == "RuntimeError"
    assert run.attributes["llm_otel.training.step"] == 3
    epoch = spans["training_epoch wrapped"]
    assert epoch.attributes["error.type"] == "RuntimeError"
    assert total(telemetry, "llm_otel.training.steps") == 3


def test_a_failing_trainer_alone_leaves_its_run_to_be_ended_at_exit(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    trainer = Trainer(model=tiny_gpt2(), args=arguments(tmp_path, eval_strategy="no"),
                      train_dataset=Tokens(32),
                      callbacks=[OpenTelemetryCallback(), Failing()])  # fmt: skip
    with pytest.raises(RuntimeError):
        trainer.train()
    assert end_unfinished_runs() == 1  # what the exit handler does
    run = next(s for s in telemetry.spans() if s.name == "training_run sft-tiny")
    assert run.attributes["error.type"] == "unfinished"
