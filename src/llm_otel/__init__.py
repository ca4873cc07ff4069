"""llm-otel: OpenTelemetry for LLM applications.

    import llm_otel
    llm_otel.configure(service_name="my-llm-app")

sets up OTLP export of traces, metrics and logs and instruments every supported LLM client
library that is installed. See the README and docs/ for zero-code use, content capture and the
attributes recorded.
"""

from llm_otel._configure import Configuration, configure, flush, shutdown
from llm_otel._evaluation import record_evaluation
from llm_otel._version import __version__
from llm_otel.genai import ContentMode, ContentPolicy, Redactor
from llm_otel.jobs import BatchJob, batch_job, current_job
from llm_otel.manual import (
    LLMCall,
    OperationSpan,
    ScopeSpanProcessor,
    agent,
    context,
    llm_call,
    retrieval,
    task,
    tool,
    workflow,
)
from llm_otel.training import TrainingRun, training_run

__all__ = [
    "BatchJob",
    "Configuration",
    "ContentMode",
    "ContentPolicy",
    "LLMCall",
    "OperationSpan",
    "Redactor",
    "ScopeSpanProcessor",
    "TrainingRun",
    "__version__",
    "agent",
    "batch_job",
    "configure",
    "context",
    "current_job",
    "flush",
    "llm_call",
    "record_evaluation",
    "retrieval",
    "shutdown",
    "task",
    "tool",
    "training_run",
    "workflow",
]
