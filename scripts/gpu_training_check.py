"""Real-GPU check of the training callbacks: run in .venv-training on a machine with a GPU.

    .venv-training/bin/python scripts/gpu_training_check.py [--steps 200] [--json figures.json]

1. A Hugging Face Trainer fine-tunes a small GPT-2 (random weights, no download) on the GPU
   with the callback, and once without it. Checks: the steps counted, the loss logged, and the
   peak GPU memory (``llm_otel.training.gpu.memory.peak``) equal to
   ``torch.cuda.max_memory_allocated``, keyed by ``hw.id``. When nvidia-ml-py is installed,
   that ``hw.id`` must be the UUID NVML gives the same GPU, so the join to the ``hw.gpu.*``
   metrics holds. Reports seconds per step with and without the callback.
2. A Lightning fit on the GPU with the callback: the loss is copied to the host without
   blocking and read once its CUDA event completes. Checks that the logged losses are the ones
   ``training_step`` returned.

``--cpu`` runs the same on the CPU (a check of the script itself, done by
tests/training/test_gpu_training_check.py; the GPU-only checks are skipped). Exits 1 when a
check fails, 2 when there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

import lightning
import torch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

from llm_otel.genai import GenAITelemetry
from llm_otel.manual import _defaults
from llm_otel.training import huggingface
from llm_otel.training import lightning as pl_callback

FAILED: list[str] = []


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        FAILED.append(what)


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [p for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics
            for m in sm.metrics if m.name == name for p in m.data.data_points]  # fmt: skip


class Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, rows: int, length: int) -> None:
        self.ids = torch.randint(0, 512, (rows, length), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


class PeakAtLog(TrainerCallback):  # type: ignore[misc]
    """After ours: the peak-memory gauge and torch's own figure at each log."""

    def __init__(self, reader: InMemoryMetricReader, device: int | None) -> None:
        self.reader, self.device = reader, device
        self.seen: list[tuple[dict[str, float], int]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if self.device is None or "loss" not in (logs or {}):
            return
        gauge = {p.attributes["hw.id"]: p.value
                 for p in points(self.reader, "llm_otel.training.gpu.memory.peak")}  # fmt: skip
        self.seen.append((gauge, torch.cuda.max_memory_allocated(self.device)))


def trainer_run(steps: int, callbacks: list[Any], cpu: bool) -> float:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=512, n_positions=128, n_embd=256, n_layer=4,
                                       n_head=4))  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        args = TrainingArguments(output_dir=directory, max_steps=steps, logging_steps=10,
                                 per_device_train_batch_size=16, save_strategy="no",
                                 report_to=[], use_cpu=cpu, disable_tqdm=True)  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=Rows(16 * steps, 128),
                          callbacks=callbacks)  # fmt: skip
        start = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - start) / steps


def nvml_uuid(index: int) -> str | None:
    try:
        import pynvml
    except ImportError:
        return None
    pynvml.nvmlInit()
    try:
        uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
    finally:
        pynvml.nvmlShutdown()
    return uuid.decode() if isinstance(uuid, bytes) else str(uuid)


class Regressor(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.ReLU(),
                                         torch.nn.Linear(1024, 1))  # fmt: skip
        self.returned: dict[int, float] = {}

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
        self.returned[self.global_step + 1] = float(loss.detach().cpu())  # the check's own read
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class LossAfterStep(lightning.Callback):
    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader
        self.seen: list[float] = []

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        for point in points(self.reader, "llm_otel.training.loss"):
            if not self.seen or self.seen[-1] != point.value:
                self.seen.append(point.value)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cpu", action="store_true", help="check the script itself, no GPU")
    parser.add_argument("--json", help="write the figures here")
    options = parser.parse_args()
    if not options.cpu and not torch.cuda.is_available():
        print("no CUDA GPU here (torch.cuda.is_available() is False)")
        return 2
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    _defaults._telemetry = GenAITelemetry(tracer_provider=TracerProvider(), meter_provider=meters)
    device = None if options.cpu else torch.cuda.current_device()
    figures: dict[str, Any] = {"device": "cpu" if device is None
                               else torch.cuda.get_device_name(device)}  # fmt: skip

    # 1. The Hugging Face Trainer.
    plain = trainer_run(options.steps, [], options.cpu)
    peaks = PeakAtLog(reader, device)
    traced = trainer_run(options.steps, [huggingface.OpenTelemetryCallback("gpu-check"), peaks],
                         options.cpu)  # fmt: skip
    figures["hf_seconds_per_step"] = {"without": plain, "with": traced}
    steps = sum(p.value for p in points(reader, "llm_otel.training.steps"))
    check(steps == options.steps, f"transformers: {steps:.0f} steps counted of {options.steps}")
    if device is not None:
        check(bool(peaks.seen), "transformers: peak GPU memory reported at each log")
        key = "GPU-" + str(torch.cuda.get_device_properties(device).uuid)
        uuid = nvml_uuid(device)
        for gauge, torch_peak in peaks.seen:
            check(gauge.get(key) == torch_peak,
                  f"peak memory {gauge.get(key)} == torch's {torch_peak} ({key})")  # fmt: skip
        if uuid is not None:
            check(key == uuid, f"hw.id {key} is NVML's UUID {uuid}")
        figures["peak_memory_bytes"] = peaks.seen[-1][1] if peaks.seen else None

    # 2. Lightning: the loss read without blocking.
    data = torch.utils.data.TensorDataset(torch.randn(64 * options.steps, 256),
                                          torch.randn(64 * options.steps))  # fmt: skip
    module, seen = Regressor(), LossAfterStep(reader)
    callbacks = [pl_callback.OpenTelemetryCallback("pl-check"), seen]
    fit = lightning.Trainer(max_epochs=1, accelerator="cpu" if options.cpu else "gpu", devices=1,
                            log_every_n_steps=10, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            callbacks=callbacks)  # fmt: skip
    start = time.perf_counter()
    fit.fit(module, torch.utils.data.DataLoader(data, batch_size=64))
    figures["lightning_seconds_per_step"] = (time.perf_counter() - start) / fit.global_step
    logged = {module.returned[s] for s in range(10, fit.global_step + 1, 10)}
    check(bool(seen.seen), f"lightning: {len(seen.seen)} losses reported")
    matched = all(any(abs(v - r) < 1e-5 * max(1, abs(r)) for r in logged) for v in seen.seen)
    check(matched, "lightning: each reported loss is one training_step returned at a logging step")
    figures["lightning_losses_reported"] = len(seen.seen)

    print(json.dumps(figures, indent=2))
    if options.json:
        with open(options.json, "w") as out:
            json.dump(figures, out, indent=2)
    if FAILED:
        print(f"{len(FAILED)} check(s) failed", file=sys.stderr)
        return 1
    print(f"all checks passed; per step {plain * 1e3:.2f} ms without the callback, "
          f"{traced * 1e3:.2f} ms with it")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
