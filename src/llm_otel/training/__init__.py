"""Training and fine-tuning runs, traced and measured: ``llm_otel.training_run("name")``, or a
callback for the Hugging Face Trainer (:mod:`llm_otel.training.huggingface`) or PyTorch
Lightning (:mod:`llm_otel.training.lightning`).

One span per run, per epoch and per evaluation; counters of optimizer steps, samples and tokens;
a step-time histogram; gauges of the last logged loss, evaluation loss and metrics, learning
rate, gradient norm, progress, the last step's time and PyTorch's peak GPU memory (by GPU UUID,
as on the hw.gpu.* metrics), for the NaN-loss, exploding-loss and stalled-training alerts.
docs/training.md.
"""

from llm_otel.training._run import TrainingRun, current_run, end_unfinished_runs, training_run

__all__ = ["TrainingRun", "current_run", "end_unfinished_runs", "training_run"]
