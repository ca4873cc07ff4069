"""The public names are a contract: changing them must be deliberate."""

from __future__ import annotations

import importlib.metadata

import llm_otel
import llm_otel.genai


def test_top_level_exports() -> None:
    expected = {
        "Configuration", "ContentMode", "ContentPolicy", "LLMCall", "OperationSpan", "Redactor",
        "ScopeSpanProcessor", "__version__", "agent", "configure", "context", "flush",
        "llm_call", "record_evaluation", "retrieval", "shutdown", "task", "tool", "workflow",
        "BatchJob", "batch_job", "current_job", "TrainingRun", "training_run",
    }  # fmt: skip
    assert set(llm_otel.__all__) == expected
    for name in llm_otel.__all__:
        assert hasattr(llm_otel, name)


def test_training_exports() -> None:
    import llm_otel.training

    assert set(llm_otel.training.__all__) == {
        "TrainingRun", "current_run", "end_unfinished_runs", "training_run",
    }  # fmt: skip
    for name in llm_otel.training.__all__:
        assert hasattr(llm_otel.training, name)


def test_genai_exports() -> None:
    for name in llm_otel.genai.__all__:
        assert hasattr(llm_otel.genai, name)


def test_entry_points_are_registered() -> None:
    def names(group: str) -> dict[str, str]:
        return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}

    assert names("opentelemetry_instrumentor")["llm_otel_openai"] == (
        "llm_otel.instrumentation.openai:OpenAIInstrumentor"
    )
    assert names("opentelemetry_distro")["llm_otel"] == "llm_otel._distro:LLMOtelDistro"
    assert names("opentelemetry_configurator")["llm_otel"] == "llm_otel._distro:LLMOtelConfigurator"


def test_importing_does_not_import_client_libraries() -> None:
    import subprocess
    import sys

    code = "import sys, llm_otel; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_quality_exports() -> None:
    import llm_otel.quality

    assert set(llm_otel.quality.__all__) == {
        "BUILTIN", "Detection", "EvaluatedCall", "EvaluationResult", "EvaluationRunner",
        "Evaluator", "FunctionEvaluator", "JsonOutput", "OutputComplete", "PromptInjection",
        "Refusal", "SensitiveData", "configure_evaluation", "evaluator",
        "Drift", "DriftMonitor", "dominant_script", "js_divergence", "kl_divergence",
        "pin_drift_baseline",
    }  # fmt: skip
    for name in llm_otel.quality.__all__:
        assert hasattr(llm_otel.quality, name)
