"""Online evaluation: quality and safety checks on a sample of finished LLM calls, run off the
request path and recorded as ``gen_ai.evaluation.result`` events tied to each call's span.

    import llm_otel
    from llm_otel.quality import evaluator

    @evaluator("relevance", timeout=20)
    async def relevance(call):              # an LLM-as-judge, your code
        return await judge(call.input_text, call.output_text)

    llm_otel.configure(evaluators=["default", relevance], evaluation_sample_rate=0.2)

or, with no code, ``LLM_OTEL_EVALUATORS=default`` and ``LLM_OTEL_EVALUATION_SAMPLE_RATE=0.2``.
The built-ins (``sensitive_data``, ``prompt_injection``, ``refusal``, ``json_output``,
``output_complete``) are offline and cost microseconds; what they find is also counted in
``llm_otel.detection.count`` by kind and target, whether or not content capture is on.
Evaluators see the call's content in memory; nothing of it is recorded unless capture is on.

``configure(drift=True)`` (or ``LLM_OTEL_DRIFT=on``) also compares the distribution of the
evaluated calls' token counts, finish reasons, tool use, answer script and scores over the last
hour with a baseline, per model, as ``llm_otel.drift.divergence`` (Jensen-Shannon, and KL where
finite); ``Drift(baseline="drift.json")`` pins the baselines to a file. docs/quality.md has the
details.
"""

from llm_otel.quality._builtin import (
    BUILTIN,
    JsonOutput,
    OutputComplete,
    PromptInjection,
    Refusal,
    SensitiveData,
)
from llm_otel.quality._call import EvaluatedCall
from llm_otel.quality._drift import (
    Drift,
    DriftMonitor,
    dominant_script,
    js_divergence,
    kl_divergence,
)
from llm_otel.quality._evaluator import (
    Detection,
    EvaluationResult,
    Evaluator,
    FunctionEvaluator,
    evaluator,
)
from llm_otel.quality._runner import EvaluationRunner
from llm_otel.quality._settings import configure_evaluation, pin_drift_baseline

__all__ = [
    "BUILTIN",
    "Detection",
    "Drift",
    "DriftMonitor",
    "EvaluatedCall",
    "EvaluationResult",
    "EvaluationRunner",
    "Evaluator",
    "FunctionEvaluator",
    "JsonOutput",
    "OutputComplete",
    "PromptInjection",
    "Refusal",
    "SensitiveData",
    "configure_evaluation",
    "dominant_script",
    "evaluator",
    "js_divergence",
    "kl_divergence",
    "pin_drift_baseline",
]
