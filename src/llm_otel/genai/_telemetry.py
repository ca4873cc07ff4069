"""The tracer, instruments and content policy shared by every invocation of one instrumentation."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import LoggerProvider, get_logger
from opentelemetry.metrics import MeterProvider
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as m
from opentelemetry.semconv._incubating.metrics import mcp_metrics
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import TracerProvider
from opentelemetry.util.types import AttributeValue

from llm_otel._version import __version__
from llm_otel.genai._attempts import Attempt, headroom, last_headers
from llm_otel.genai._content import ContentPolicy, default_policy
from llm_otel.genai._gauges import gauge_callback
from llm_otel.semconv import batch, jobs, training
from llm_otel.semconv.cost import LLM_OTEL_CLIENT_COST
from llm_otel.semconv.evaluation import (
    LLM_OTEL_DETECTION_COUNT,
    LLM_OTEL_DRIFT_DIVERGENCE,
    LLM_OTEL_DRIFT_EMBEDDING_DISTANCE,
    LLM_OTEL_EVALUATION_DROPPED,
    LLM_OTEL_EVALUATION_ERRORS,
    LLM_OTEL_EVALUATION_RESULTS,
    LLM_OTEL_EVALUATION_SCORE,
)
from llm_otel.semconv.retry import (
    LLM_OTEL_CLIENT_RATE_LIMIT_REMAINING,
    LLM_OTEL_CLIENT_RETRIES,
    LLM_OTEL_CLIENT_RETRY_WAIT,
    LLM_OTEL_RATE_LIMIT_KIND,
)

__all__ = ["DURATION_BUCKETS", "SCORE_BUCKETS", "TOKEN_BUCKETS", "GenAITelemetry"]

# Bucket boundaries the GenAI conventions advise for these histograms.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

# What the MCP conventions advise for mcp.{client,server}.operation.duration.
MCP_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

# Evaluation scores are usually in [0, 1].
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

SCOPE_NAME = "llm_otel"

_HEADROOM_KEYS = (
    ga.GEN_AI_PROVIDER_NAME,
    ga.GEN_AI_REQUEST_MODEL,
    server_attributes.SERVER_ADDRESS,
)
_MAX_HEADROOM_KEYS = 4096


class GenAITelemetry:
    """One instrumentation's handles on the OTel providers and its content rules."""

    __slots__ = (
        "_content",
        "_headroom_seen",
        "active",
        "batch_cost",
        "batch_requests",
        "batch_tokens",
        "cost",
        "detections",
        "duration",
        "evaluation_dropped",
        "evaluation_errors",
        "evaluation_results",
        "evaluation_score",
        "event_logger",
        "job_items",
        "job_runs",
        "mcp_client_duration",
        "mcp_server_duration",
        "rate_limit_remaining",
        "retries",
        "retry_wait",
        "time_per_output_chunk",
        "time_to_first_chunk",
        "token_usage",
        "tracer",
        "training_loss_nonfinite",
        "training_samples",
        "training_step_duration",
        "training_steps",
        "training_tokens",
    )

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
        content: ContentPolicy | None = None,
    ) -> None:
        self.active = True
        """False once the instrumentation that made it is uninstrumented: a wrapper that outlives
        uninstrument() (bound into an SDK's cached ``with_raw_response`` resource) then passes
        calls through."""
        self.tracer = trace.get_tracer(SCOPE_NAME, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE_NAME, __version__, meter_provider)
        self.event_logger = get_logger(SCOPE_NAME, __version__, logger_provider)
        self._content = content
        """This instrumentation's own policy (``instrument(content_policy=...)``), else None:
        then :attr:`content` is the process default, looked up on every call."""
        self.duration = meter.create_histogram(
            m.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            m.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            m.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.cost = meter.create_counter(
            LLM_OTEL_CLIENT_COST,
            unit="{USD}",
            description="Estimated cost of LLM calls in USD, from llm-otel's price table.",
        )
        self.evaluation_results = meter.create_counter(
            LLM_OTEL_EVALUATION_RESULTS,
            unit="{result}",
            description="Evaluation results and feedback recorded for LLM calls.",
        )
        self.evaluation_score = meter.create_histogram(
            LLM_OTEL_EVALUATION_SCORE,
            unit="1",
            description="Scores of evaluation results and feedback recorded for LLM calls.",
            explicit_bucket_boundaries_advisory=SCORE_BUCKETS,
        )
        self.detections = meter.create_counter(
            LLM_OTEL_DETECTION_COUNT,
            unit="{call}",
            description="Calls in which an online evaluator found something, by kind and target.",
        )
        self.evaluation_dropped = meter.create_counter(
            LLM_OTEL_EVALUATION_DROPPED,
            unit="{call}",
            description="Calls sampled for online evaluation that were not evaluated.",
        )
        self.evaluation_errors = meter.create_counter(
            LLM_OTEL_EVALUATION_ERRORS,
            unit="{evaluation}",
            description="Online evaluations that raised or ran past their timeout.",
        )
        self.batch_requests = meter.create_counter(
            batch.LLM_OTEL_BATCH_REQUESTS, unit="{request}",
            description="Requests of provider batches, by outcome, counted from their results.",
        )  # fmt: skip
        self.batch_tokens = meter.create_counter(
            batch.LLM_OTEL_BATCH_TOKENS, unit="{token}",
            description="Tokens the requests of provider batches used.",
        )  # fmt: skip
        self.batch_cost = meter.create_counter(
            batch.LLM_OTEL_BATCH_COST, unit="{USD}",
            description="Estimated cost of provider batch requests in USD, at the batch rate.",
        )  # fmt: skip
        self.mcp_client_duration = meter.create_histogram(
            mcp_metrics.MCP_CLIENT_OPERATION_DURATION, unit="s",
            description="Duration of MCP requests as the client sees them, until the response.",
            explicit_bucket_boundaries_advisory=MCP_DURATION_BUCKETS,
        )  # fmt: skip
        self.mcp_server_duration = meter.create_histogram(
            mcp_metrics.MCP_SERVER_OPERATION_DURATION, unit="s",
            description="Duration of MCP requests as the server handles them.",
            explicit_bucket_boundaries_advisory=MCP_DURATION_BUCKETS,
        )  # fmt: skip
        self.job_items = meter.create_counter(
            jobs.LLM_OTEL_JOB_ITEMS, unit="{item}",
            description="Items a batch job finished, by outcome.",
        )  # fmt: skip
        self.job_runs = meter.create_counter(
            jobs.LLM_OTEL_JOB_RUNS, unit="{run}",
            description="Runs of a batch job that ended, by outcome.",
        )  # fmt: skip
        self.training_steps = meter.create_counter(
            training.LLM_OTEL_TRAINING_STEPS, unit="{step}",
            description="Optimizer steps a training run finished.",
        )  # fmt: skip
        self.training_samples = meter.create_counter(
            training.LLM_OTEL_TRAINING_SAMPLES, unit="{sample}",
            description="Training samples a run consumed.",
        )  # fmt: skip
        self.training_tokens = meter.create_counter(
            training.LLM_OTEL_TRAINING_TOKENS, unit="{token}",
            description="Input tokens a training run consumed, padding included.",
        )  # fmt: skip
        self.training_loss_nonfinite = meter.create_counter(
            training.LLM_OTEL_TRAINING_LOSS_NONFINITE, unit="{log}",
            description="Logged training or evaluation losses that were NaN or infinite.",
        )  # fmt: skip
        self.training_step_duration = meter.create_histogram(
            training.LLM_OTEL_TRAINING_STEP_DURATION, unit="s",
            description="Wall-clock time of one optimizer step.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )  # fmt: skip
        # Computed when the metrics are collected: over the batch jobs and training runs
        # running now (llm_otel.jobs, llm_otel.training) and by llm_otel.quality's drift monitor.
        for name, unit, description in (
            (jobs.LLM_OTEL_JOB_REMAINING, "{item}", "Items a running batch job has left."),
            (jobs.LLM_OTEL_JOB_PROGRESS, "1", "The share of a running batch job's items finished."),
            (jobs.LLM_OTEL_JOB_THROUGHPUT, "{item}/s",
             "Items a running batch job finished per second over the last minute."),
            (jobs.LLM_OTEL_JOB_ETA, "s", "Seconds until a running batch job finishes."),
            (jobs.LLM_OTEL_JOB_LAST_PROGRESS, "s",
             "When a running batch job last finished an item, in seconds since the epoch."),
            (training.LLM_OTEL_TRAINING_LOSS, "{loss}",
             "The training loss a running run last logged."),
            (training.LLM_OTEL_TRAINING_EVALUATION_LOSS, "{loss}",
             "The loss of a running training run's last evaluation."),
            (training.LLM_OTEL_TRAINING_EVALUATION_METRIC, "{value}",
             "A running training run's last value of each other evaluation metric."),
            (training.LLM_OTEL_TRAINING_LEARNING_RATE, "{rate}",
             "The learning rate a running training run last logged."),
            (training.LLM_OTEL_TRAINING_GRAD_NORM, "{norm}",
             "The gradient norm a running training run last logged."),
            (training.LLM_OTEL_TRAINING_PROGRESS, "1",
             "A running training run's global step over its total steps."),
            (training.LLM_OTEL_TRAINING_LAST_STEP, "s",
             "When a running training run last finished a step, in seconds since the epoch."),
            (training.LLM_OTEL_TRAINING_GPU_MEMORY_PEAK, "By",
             "The most GPU memory a running training run's process had allocated by PyTorch."),
            (LLM_OTEL_DRIFT_DIVERGENCE, "{nat}",
             "Divergence of a feature of the current window's calls from its baseline."),
            (LLM_OTEL_DRIFT_EMBEDDING_DISTANCE, "1",
             "Cosine distance of the answers' embedding centroid from its baseline."),
        ):  # fmt: skip
            meter.create_observable_gauge(name, [gauge_callback(name)], unit=unit,
                                          description=description)  # fmt: skip
        self.time_per_output_chunk = meter.create_histogram(
            m.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive chunks of a streamed response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

        self.retries = meter.create_counter(
            LLM_OTEL_CLIENT_RETRIES,
            unit="{retry}",
            description="Retries the client libraries made inside LLM calls.",
        )
        self.retry_wait = meter.create_histogram(
            LLM_OTEL_CLIENT_RETRY_WAIT,
            unit="s",
            description="Time a retried LLM call spent waiting between attempts.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.rate_limit_remaining = meter.create_gauge(
            LLM_OTEL_CLIENT_RATE_LIMIT_REMAINING,
            unit="{count}",
            description="What the provider says is left of a rate limit (requests or tokens).",
        )
        self._headroom_seen: dict[tuple[Any, ...], float] = {}

    def record_headroom(
        self, identity: tuple[str, str | None, str | None], attempts: list[Attempt]
    ) -> None:
        """The rate-limit headroom the headers of a call's last response (of its HTTP
        ``attempts``) report, for ``identity`` (provider, request model, server address), at
        most once a second for each: a gauge keeps the last value, and each record costs as
        much as a histogram's, so most calls read no header."""
        now = time.monotonic()
        seen = self._headroom_seen
        if now - seen.get(identity, -1e9) < 1.0:
            return
        headers = last_headers(attempts)
        if headers is None:
            return
        if len(seen) >= _MAX_HEADROOM_KEYS:
            seen.clear()  # bounded: models are few; a flood of names must not grow it
        seen[identity] = now
        remaining = headroom(headers)
        if not remaining:
            return
        base: dict[str, AttributeValue] = {
            k: v for k, v in zip(_HEADROOM_KEYS, identity, strict=True) if v is not None
        }
        for kind, value in remaining.items():
            self.rate_limit_remaining.set(value, {**base, LLM_OTEL_RATE_LIMIT_KIND: kind})

    @property
    def content(self) -> ContentPolicy:
        """The content rules for the call being recorded now."""
        content = self._content
        return content if content is not None else default_policy()
