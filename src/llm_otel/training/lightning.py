"""PyTorch Lightning training, traced and measured: one callback.

    from llm_otel.training.lightning import OpenTelemetryCallback

    trainer = lightning.Trainer(max_epochs=3, callbacks=[OpenTelemetryCallback()])
    trainer.fit(model, train_loader, val_loader)

Every optimizer step counts (with the rows of its batches as samples, and the tokens of an
``input_ids`` tensor, from shapes only), with its wall-clock time. Every ``log_every_n_steps``
it reads the loss ``training_step`` returned for the step's last batch and the first
optimizer's learning rate; a loss on
the GPU is copied to the host without waiting and read at a later step once the copy is done,
so the callback never makes a training step wait for the GPU. A ``grad_norm`` the module logs is
read at each epoch's and validation's end, where Lightning has computed its logged values.
Validation (not the sanity check) is an evaluation span with ``val_loss`` (``loss_key``) and the
other logged ``val*`` metrics. Works with ``lightning`` and ``pytorch_lightning``; only global
rank 0 records. It adds to the Trainer's loggers (MLflow, W&B, TensorBoard) and changes nothing.

``on_exception`` ends the run's span with the exception, so a failed ``fit`` shows as failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback

from llm_otel._guard import guarded
from llm_otel.training._run import TrainingRun, join_or_start

__all__ = ["OpenTelemetryCallback"]


class _PendingLoss:
    """A loss tensor on its way to the host: a GPU tensor is copied without blocking and read
    once its CUDA event has completed; a CPU tensor is read at once."""

    __slots__ = ("_event", "_scale", "_value")

    def __init__(self, tensor: Any, scale: float = 1.0) -> None:
        self._scale = scale
        value = tensor.detach()
        self._event = None
        if value.device.type == "cuda":
            import torch

            value = value.to("cpu", non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        self._value = value

    def ready(self) -> bool:
        return self._event is None or bool(self._event.query())

    def read(self) -> float | None:
        if self._event is not None:
            self._event.synchronize()  # only when already complete, or at the end of training
        try:
            return float(self._value.float().mean().item()) * self._scale
        except Exception:
            return None


def _loss_of(outputs: Any) -> Any:
    if isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
    if outputs is not None and hasattr(outputs, "detach") and hasattr(outputs, "device"):
        device = outputs.device.type
        return outputs if device in ("cpu", "cuda") else None  # others would wait to read
    return None


def _shape_sizes(batch: Any) -> tuple[int, int | None]:
    """(rows, tokens) of a batch, from tensor shapes only: rows of its first tensor; tokens of
    an ``input_ids`` entry (rows x sequence length)."""
    if isinstance(batch, Mapping):
        ids = batch.get("input_ids")
        shape = getattr(ids, "shape", None)
        if shape is not None and len(shape) >= 1:
            tokens = 1
            for size in shape:
                tokens *= int(size)
            return int(shape[0]), tokens
        values = list(batch.values())
    elif isinstance(batch, (list, tuple)):
        values = list(batch)
    else:
        values = [batch]
    for value in values:
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0]), None
    return 0, None


def _scalar(value: Any) -> float | None:
    """A logged metric as a float (at validation's end, where reading a GPU tensor waits for
    the validation the trainer just finished, not for a training step)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value.detach().float().mean().item())
    except Exception:
        return None


class OpenTelemetryCallback(Callback):  # type: ignore[misc]
    """Records a Lightning Trainer's ``fit``; see the module's docstring. ``run_name`` defaults
    to the LightningModule's class name; ``loss_key`` is the logged validation loss."""

    def __init__(self, run_name: str | None = None, *, run_id: str | None = None,
                 loss_key: str = "val_loss",
                 attributes: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.run_name, self.run_id, self.loss_key = run_name, run_id, loss_key
        self._attributes = dict(attributes or {})
        self.run: TrainingRun | None = None
        self._owned = False
        self._pending: _PendingLoss | None = None
        self._cycle_started: float | None = None
        self._step_before = 0
        self._samples = 0
        self._tokens = 0
        self._evaluation_started: int | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        with guarded("lightning training start"):
            self.run, self._owned = join_or_start(
                self.run_name or type(pl_module).__name__, run_id=self.run_id,
                framework="lightning", attributes=self._attributes)  # fmt: skip
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            if total is None:
                estimated = trainer.estimated_stepping_batches
                total = int(estimated) if estimated != float("inf") else None
            if total:
                self.run.set_total_steps(total)
            self.run.global_step = int(trainer.global_step)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self.run.start_epoch(int(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self._logged_grad_norm(trainer)
            self.run.end_epoch()

    def _logged_grad_norm(self, trainer: Any) -> None:
        """A ``grad_norm`` the module logs, read where Lightning has computed its logged values
        (an epoch's or a validation's end), never in a training step."""
        if self.run is not None:
            with guarded("lightning grad norm"):
                value = trainer.callback_metrics.get("grad_norm")
                if value is not None:
                    self.run.log(grad_norm=_scalar(value), gpu_memory=False)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:  # fmt: skip
        if self.run is None:
            return
        if self._cycle_started is None:  # the first batch of an optimizer step
            self._cycle_started = time.perf_counter()
            self._step_before = int(trainer.global_step)
        with guarded("lightning batch size"):
            rows, tokens = _shape_sizes(batch)
            self._samples += rows
            self._tokens += tokens or 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        run = self.run
        if run is None:
            return
        with guarded("lightning training step"):
            pending = self._pending
            if pending is not None and pending.ready():
                self._pending = None
                run.log(loss=pending.read(), learning_rate=self._learning_rate(trainer))
            steps = int(trainer.global_step) - self._step_before
            if steps <= 0:
                return  # gradient accumulation: the optimizer has not stepped yet
            started, self._cycle_started = self._cycle_started, None
            samples, tokens, self._samples, self._tokens = self._samples, self._tokens, 0, 0
            run.step(steps, global_step=int(trainer.global_step), samples=samples or None,
                     tokens=tokens or None,
                     duration=None if started is None
                     else (time.perf_counter() - started) / steps)  # fmt: skip
            every = max(int(getattr(trainer, "log_every_n_steps", 50) or 50), 1)
            loss = _loss_of(outputs)
            if self._pending is None and loss is not None and trainer.global_step % every == 0:
                # Automatic optimization hands on the loss divided by the accumulated batches.
                automatic = getattr(pl_module, "automatic_optimization", False)
                scale = float(trainer.accumulate_grad_batches or 1) if automatic else 1.0
                self._pending = _PendingLoss(loss, scale)
                if self._pending.ready():  # on the CPU: nothing to wait for
                    pending, self._pending = self._pending, None
                    run.log(loss=pending.read(), learning_rate=self._learning_rate(trainer))

    @staticmethod
    def _learning_rate(trainer: Any) -> float | None:
        try:
            rate = trainer.optimizers[0].param_groups[0]["lr"]
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
        return rate if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None and not trainer.sanity_checking:
            self._evaluation_started = time.time_ns()

    def on_validation_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if self.run is not None:
            self.run.heartbeat()  # validating is progress too (the stalled-training alert)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        run, started, self._evaluation_started = self.run, self._evaluation_started, None
        if run is None or started is None or trainer.sanity_checking:
            return
        with guarded("lightning evaluation"):
            logged = dict(trainer.callback_metrics)
            loss = _scalar(logged[self.loss_key]) if self.loss_key in logged else None
            others = {key: _scalar(value) for key, value in logged.items()
                      if key != self.loss_key and key.startswith("val")}  # fmt: skip
            run.record_evaluation(loss=loss, metrics=others, started=started)
        self._logged_grad_norm(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._finish(None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._finish(exception)

    def _finish(self, error: BaseException | None) -> None:
        run, self.run = self.run, None
        pending, self._pending = self._pending, None
        self._cycle_started, self._samples, self._tokens = None, 0, 0
        if run is None:
            return
        with guarded("lightning training end"):
            run.log(loss=None if pending is None or error is not None else pending.read())
        if self._owned:
            run.end(error)
        else:
            run.end_epoch(error)
