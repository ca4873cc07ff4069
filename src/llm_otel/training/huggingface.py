"""The Hugging Face ``transformers`` Trainer, traced and measured: one callback.

    from llm_otel.training.huggingface import OpenTelemetryCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                      callbacks=[OpenTelemetryCallback()])
    trainer.train()

It records what the Trainer already computes: the loss, learning rate and gradient norm it logs
(every ``logging_steps``, as Python numbers, so reading them waits for nothing), the steps, their
samples (the global batch size) and tokens (``include_num_input_tokens_seen``), each step's
time, evaluations with their metrics, and PyTorch's peak GPU memory. Only the main process of
a distributed run records (``state.is_world_process_zero``). It adds to the Trainer's own
reporting (``report_to``: MLflow, W&B, TensorBoard) and changes nothing the Trainer does.

The run's span ends at ``on_train_end``. The Trainer calls no callback when training raises, so
wrap ``trainer.train()`` in :func:`llm_otel.training_run` to have the exception on the run's
span; otherwise a run left open is ended as ``unfinished`` at exit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

from llm_otel._guard import guarded
from llm_otel.training._run import TrainingRun, join_or_start

__all__ = ["OpenTelemetryCallback"]

# on_evaluate's keys that are not evaluation results.
_NOT_METRICS = frozenset({"eval_loss", "eval_runtime", "eval_samples_per_second",
                          "eval_steps_per_second", "epoch"})  # fmt: skip


class OpenTelemetryCallback(TrainerCallback):  # type: ignore[misc]
    """Records a Trainer's run; see the module's docstring. ``run_name`` defaults to the
    Trainer's ``run_name`` (else its output directory's name); ``run_id`` names this run on its
    span only."""

    def __init__(self, run_name: str | None = None, *, run_id: str | None = None,
                 attributes: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.run_name, self.run_id = run_name, run_id
        self._attributes = dict(attributes or {})
        self.run: TrainingRun | None = None
        self._owned = False
        self._samples_per_step = 0
        self._tokens_seen = 0
        self._step_started: float | None = None

    def _name(self, args: Any) -> str:
        if self.run_name:
            return self.run_name
        named = getattr(args, "run_name", None)
        output = os.path.basename(os.path.normpath(str(getattr(args, "output_dir", "") or "")))
        return str(named or output or "trainer")

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        with guarded("transformers training start"):
            run, self._owned = join_or_start(
                self._name(args), run_id=self.run_id, framework="transformers",
                attributes=self._attributes)  # fmt: skip
            self.run = run
            if state.max_steps and state.max_steps > 0:
                run.set_total_steps(int(state.max_steps))
            run.global_step = int(state.global_step or 0)  # a resumed run starts where it was
            per_device = state.train_batch_size or args.train_batch_size or 0
            self._samples_per_step = int(per_device * args.gradient_accumulation_steps
                                         * max(int(args.world_size or 1), 1))  # fmt: skip
            self._tokens_seen = int(state.num_input_tokens_seen or 0)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:
            # state.epoch is fractional (a resumed run starts mid-epoch): the epoch it is in.
            self.run.start_epoch(math.floor((state.epoch or 0) + 1e-9))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:
            self.run.end_epoch()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run, started, self._step_started = self.run, self._step_started, None
        if run is None:
            return
        with guarded("transformers training step"):
            seen = int(state.num_input_tokens_seen or 0)
            tokens, self._tokens_seen = seen - self._tokens_seen, seen
            duration = None if started is None else time.perf_counter() - started
            run.step(1, global_step=int(state.global_step), samples=self._samples_per_step,
                     tokens=tokens if tokens > 0 else None, duration=duration)  # fmt: skip

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None:
            self.run.heartbeat()  # evaluating is progress too (the stalled-training alert)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:  # fmt: skip
        if self.run is None or not isinstance(logs, Mapping) or "loss" not in logs:
            return  # evaluation logs come to on_evaluate; the final summary has no "loss"
        self.run.log(loss=logs.get("loss"), learning_rate=logs.get("learning_rate"),
                     grad_norm=logs.get("grad_norm"))  # fmt: skip

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kwargs: Any) -> None:  # fmt: skip
        run = self.run
        if run is None or not isinstance(metrics, Mapping):
            return
        with guarded("transformers evaluation"):
            ended = time.time_ns()
            runtime = metrics.get("eval_runtime")
            started = (ended - int(runtime * 1e9)
                       if isinstance(runtime, (int, float)) and runtime >= 0 else None)  # fmt: skip
            others = {key: value for key, value in metrics.items() if key not in _NOT_METRICS}
            run.record_evaluation(loss=metrics.get("eval_loss"), metrics=others,
                                  started=started, ended=ended)  # fmt: skip

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        run.log()  # the final peak GPU memory
        if self._owned:
            run.end()
        else:
            run.end_epoch()
