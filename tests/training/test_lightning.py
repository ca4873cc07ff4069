"""The Lightning callback with the real ``lightning`` Trainer on the CPU: a tiny model built here
trains for a few steps, next to Lightning's own CSV logger. Steps against the Trainer's global
step (gradient accumulation too), samples and tokens from the batches' shapes, the loss against
what the module returned, validation (not the sanity check) as evaluation spans with val_loss,
an exception in fit() on the run's span, and no span left open."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

import llm_otel
from llm_otel.training import end_unfinished_runs
from llm_otel.training.lightning import OpenTelemetryCallback
from tests.conftest import Telemetry

SEQUENCE = 12


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, rows: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (rows, SEQUENCE), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "target": self.ids[index].float().mean()}


class TinyRegressor(lightning.LightningModule):
    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(50, 8)
        self.head = torch.nn.Linear(8, 1)
        self.fail_at = fail_at
        self.returned: dict[int, float] = {}  # global step -> loss training_step returned

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids).mean(dim=1)).squeeze(-1)

    def training_step(self, batch: dict[str, torch.Tensor], index: int) -> torch.Tensor:
        if self.fail_at is not None and self.global_step == self.fail_at:
            raise RuntimeError("NCCL watchdog timeout")
        loss = torch.nn.functional.mse_loss(self(batch["input_ids"]), batch["target"])
        self.returned[self.global_step + 1] = float(loss)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], index: int) -> None:
        error = self(batch["input_ids"]) - batch["target"]
        self.log("val_loss", (error**2).mean())
        self.log("val_mae", error.abs().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def trainer(tmp_path: Path, *callbacks: Any, **options: Any) -> lightning.Trainer:
    settings: dict[str, Any] = {
        "max_epochs": 2, "accelerator": "cpu", "log_every_n_steps": 2,
        "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False, "logger": CSVLogger(str(tmp_path)),
    }  # fmt: skip
    settings.update(options)
    return lightning.Trainer(callbacks=list(callbacks), **settings)


def loaders() -> tuple[Any, Any]:
    return (torch.utils.data.DataLoader(Tokens(40), batch_size=4),
            torch.utils.data.DataLoader(Tokens(8, seed=1), batch_size=4))  # fmt: skip


def total(telemetry: Telemetry, name: str) -> float:
    return sum(point.value for point in telemetry.points(name))


class Snapshot(lightning.Callback):
    """Runs after ours: the loss gauge after each step."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        for point in self.telemetry.points("llm_otel.training.loss"):
            self.losses[trainer.global_step] = point.value


def test_a_fit_is_traced_and_measured_next_to_lightnings_logger(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    model, snapshot = TinyRegressor(), Snapshot(telemetry)
    fit = trainer(tmp_path, OpenTelemetryCallback("tiny", run_id="v3"), snapshot,
                  accumulate_grad_batches=2)  # fmt: skip
    fit.fit(model, *loaders())
    assert fit.global_step == 10  # 10 batches an epoch, 2 per optimizer step, 2 epochs

    spans = telemetry.spans()
    (run,) = [s for s in spans if s.name == "training_run tiny"]
    assert run.attributes["llm_otel.training.framework"] == "lightning"
    assert run.attributes["llm_otel.training.steps.total"] == 10
    assert run.attributes["llm_otel.training.step"] == 10
    assert run.status.is_ok
    epochs = [s for s in spans if s.name == "training_epoch tiny"]
    assert [e.attributes["llm_otel.training.epoch"] for e in epochs] == [0, 1]
    evaluations = [s for s in spans if s.name == "training_evaluation tiny"]
    assert len(evaluations) == 2  # one per epoch; the sanity check is not an evaluation
    family = {run.context.span_id} | {e.context.span_id for e in epochs}
    assert all(s.parent.span_id in family for s in epochs + evaluations)

    assert total(telemetry, "llm_otel.training.steps") == 10
    assert total(telemetry, "llm_otel.training.samples") == 80  # 40 rows x 2 epochs
    assert total(telemetry, "llm_otel.training.tokens") == 80 * SEQUENCE
    (durations,) = telemetry.points("llm_otel.training.step.duration")
    assert durations.count == 10
    # Every second step the loss that step's last batch returned (read at once on the CPU).
    assert {step: snapshot.losses[step] for step in (2, 4, 6, 8, 10)} == pytest.approx(
        {step: model.returned[step] for step in (2, 4, 6, 8, 10)})  # fmt: skip

    # Lightning's own logger got its values too (we change nothing it does).
    with open(Path(fit.logger.log_dir) / "metrics.csv") as logged:
        rows = list(csv.DictReader(logged))
    assert [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    assert end_unfinished_runs() == 0


def test_validation_values_become_the_evaluation_gauges(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []

    class AfterValidation(lightning.Callback):
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
                key = "llm_otel.training.evaluation.metric.name"
                gauges = {p.attributes.get(key, "loss"): p.value
                          for name in ("evaluation.loss", "evaluation.metric")
                          for p in telemetry.points(f"llm_otel.training.{name}")}  # fmt: skip
                seen.append({"val_loss": logged["val_loss"], "val_mae": logged["val_mae"],
                             "gauge_loss": gauges["loss"],
                             "gauge_mae": gauges["val_mae"]})  # fmt: skip

    trainer(tmp_path, OpenTelemetryCallback(), AfterValidation()).fit(TinyRegressor(), *loaders())
    assert len(seen) == 2
    for values in seen:
        assert values["gauge_loss"] == pytest.approx(values["val_loss"])
        assert values["gauge_mae"] == pytest.approx(values["val_mae"])
    assert [s.name for s in telemetry.spans()].count("training_run TinyRegressor") == 1


def test_an_exception_in_fit_fails_the_run(telemetry: Telemetry, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="watchdog"):
        trainer(tmp_path, OpenTelemetryCallback("crashing")).fit(TinyRegressor(fail_at=3),
                                                                 *loaders())  # fmt: skip
    spans = {s.name: s for s in telemetry.spans()}
    run = spans["training_run crashing"]
    assert run.attributes["error.type"] == "RuntimeError"
    assert run.attributes["llm_otel.training.step"] == 3
    assert spans["training_epoch crashing"].attributes["error.type"] == "RuntimeError"
    assert end_unfinished_runs() == 0


def test_a_fit_inside_training_run_joins_it(telemetry: Telemetry, tmp_path: Path) -> None:
    with llm_otel.training_run("nightly-finetune", run_id="2026-12-03"):
        trainer(tmp_path, OpenTelemetryCallback(), max_epochs=1).fit(TinyRegressor(), *loaders())
    names = [s.name for s in telemetry.spans()]
    assert names.count("training_run nightly-finetune") == 1
    assert "training_run TinyRegressor" not in names
    assert names.count("training_epoch nightly-finetune") == 1
    assert total(telemetry, "llm_otel.training.steps") == 10
