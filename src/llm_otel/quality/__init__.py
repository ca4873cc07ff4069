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
docs/quality.md has the details.
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
from llm_otel.quality._evaluator import (
    Detection,
    EvaluationResult,
    Evaluator,
    FunctionEvaluator,
    evaluator,
)
from llm_otel.quality._runner import EvaluationRunner
from llm_otel.quality._settings import configure_evaluation

__all__ = [
    "BUILTIN",
    "Detection",
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
    "evaluator",
]
