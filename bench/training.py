"""What the training callbacks add to a training step (needs torch, transformers and lightning:
the .venv-training that scripts/test.sh makes).

    .venv-training/bin/python bench/training.py

1. The hooks alone: the Hugging Face callback's on_step_begin + on_step_end (a step: the
   counters, the step-time histogram) and on_log (the loss, learning rate, gradient norm and peak
   GPU memory), and the Lightning callback's on_train_batch_start + on_train_batch_end, each
   called 20,000 times against the SDK's real MeterProvider and a BatchSpanProcessor; microseconds
   per call, best of 5 rounds.
2. A whole Trainer run: a tiny GPT-2 (random weights, CPU) for 200 steps with and without the
   callback, seconds per step, median of 3 runs each (on a noisy machine compare the hook figures
   above; these show the callback is lost in a real step).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import timeit
from typing import Any

import torch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from llm_otel.genai import GenAITelemetry
from llm_otel.manual import _defaults
from llm_otel.training import huggingface, lightning

CALLS = 20_000


def setup() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    _defaults._telemetry = GenAITelemetry(tracer_provider=tracer_provider,
                                          meter_provider=meter_provider)  # fmt: skip


def best(fn: Any) -> float:
    return min(timeit.repeat(fn, number=CALLS, repeat=5)) / CALLS * 1e6


def hooks(directory: str) -> None:
    args = TrainingArguments(output_dir=directory, use_cpu=True, report_to=[],
                             per_device_train_batch_size=8)  # fmt: skip
    state, control = TrainerState(max_steps=10**9, train_batch_size=8), TrainerControl()
    callback = huggingface.OpenTelemetryCallback("bench")
    callback.on_train_begin(args, state, control)

    def step() -> None:
        state.global_step += 1
        callback.on_step_begin(args, state, control)
        callback.on_step_end(args, state, control)

    logs = {"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 0.9}
    print(f"transformers  step hooks   {best(step):6.1f} µs per step")
    log_cost = best(lambda: callback.on_log(args, state, control, logs))
    print(f"transformers  on_log       {log_cost:6.1f} µs per log")
    callback.on_train_end(args, state, control)

    class Trainer_:  # the attributes the Lightning callback reads
        global_step, is_global_zero, max_steps, log_every_n_steps = 0, True, 10**9, 50
        accumulate_grad_batches, current_epoch, sanity_checking = 1, 0, False

        def __init__(self) -> None:
            self.optimizers = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)]
            self.callback_metrics: dict[str, Any] = {}

    trainer, module = Trainer_(), torch.nn.Module()
    batch = {"input_ids": torch.zeros(8, 128, dtype=torch.long)}
    loss = torch.tensor(2.5)
    pl_callback = lightning.OpenTelemetryCallback("bench")
    pl_callback.on_train_start(trainer, module)

    def batch_step() -> None:
        pl_callback.on_train_batch_start(trainer, module, batch, 0)
        trainer.global_step += 1
        pl_callback.on_train_batch_end(trainer, module, loss, batch, 0)

    print(f"lightning     batch hooks  {best(batch_step):6.1f} µs per step "
          f"(a loss read every {Trainer_.log_every_n_steps})")  # fmt: skip
    pl_callback.on_train_end(trainer, module)


class Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.ids = torch.randint(0, 64, (1600, 16), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def whole_run(directory: str, callbacks: list[Any]) -> float:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=1,
                                       n_head=2))  # fmt: skip
    args = TrainingArguments(output_dir=directory, max_steps=200, per_device_train_batch_size=8,
                             logging_steps=10, save_strategy="no", report_to=[], use_cpu=True,
                             disable_tqdm=True)  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), callbacks=callbacks)
    start = time.perf_counter()
    trainer.train()
    return (time.perf_counter() - start) / 200


def main() -> None:
    setup()
    with tempfile.TemporaryDirectory() as directory:
        hooks(directory)
        plain, traced = [], []
        for _ in range(3):
            plain.append(whole_run(directory, []))
            traced.append(whole_run(directory, [huggingface.OpenTelemetryCallback("bench")]))
        p, t = statistics.median(plain) * 1e3, statistics.median(traced) * 1e3
        print(f"tiny GPT-2, 200 steps: {p:.2f} ms per step without, {t:.2f} ms with the callback")


if __name__ == "__main__":
    main()
