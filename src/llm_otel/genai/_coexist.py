"""Living next to another vendor's GenAI instrumentation of the same client library.

Two instrumentations wrapping the same method would give every call two CLIENT spans. When
llm_otel sees that the call is already traced by someone else, it records its metrics (and
content event, cost, response id) but not a span, so each call keeps exactly one span:

- *above us*: the current span describes a model call and was not started by llm_otel (the other
  wrapper is outermost and has already started its span), or the context carries OpenLLMetry's
  ``suppress_language_model_instrumentation`` key (its LangChain/LlamaIndex spans set it for
  the model call they already describe);
- *beneath us*: the callable we are about to call, or the HTTP ``request`` method of the SDK
  client behind the resource (where OpenInference hooks in), is a wrapt wrapper installed by a
  known GenAI instrumentation package (it will start its span when we call it). OpenLLMetry's
  wrappers are the exception: they honour the suppress key below, so our span stays the one.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from opentelemetry import context, trace

from llm_otel.genai._telemetry import SCOPE_NAME

__all__ = ["FOREIGN_WRAPPER_MODULES", "SPAN_KEY", "SUPPRESS_LLM_KEY", "traced_elsewhere"]

#: Module prefixes of the GenAI instrumentations whose wrappers we step aside for.
FOREIGN_WRAPPER_MODULES = (
    "opentelemetry.instrumentation.openai",  # OpenLLMetry (openai) and OTel's openai_v2
    "opentelemetry.instrumentation.anthropic",
    "opentelemetry.instrumentation.google_genai",
    "opentelemetry.instrumentation.bedrock",
    "opentelemetry.instrumentation.cohere",
    "opentelemetry.instrumentation.mistralai",
    "opentelemetry.instrumentation.ollama",
    "opentelemetry.instrumentation.groq",
    "opentelemetry.instrumentation.vertexai",
    "opentelemetry.instrumentation.langchain",
    "openinference.instrumentation",
    "openlit.",
    "langfuse.",
    "traceloop.",
)

# How the peers mark a span as a model call: a semconv model operation (OTel, OpenLIT),
# ``llm.request.type`` (OpenLLMetry), the OpenInference span kind. Agent, tool and retrieval
# CLIENT spans are not model calls: a call made inside one gets its own span.
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
_OPENINFERENCE_KIND = "openinference.span.kind"
_OPENINFERENCE_LLM = frozenset({"LLM", "EMBEDDING"})


#: OpenLLMetry's context key for "the model call is already traced" (honoured both ways: we set it
#: while our own span is current, so its wrappers deeper in the call step aside).
SUPPRESS_LLM_KEY = "suppress_language_model_instrumentation"

#: The key the OTel API keeps the current span under in a context, read off the API itself
#: (``set_span_in_context`` into an empty context) rather than imported from its private module:
#: the wrapper reads the current context once per call and looks both keys up in it, where
#: ``get_value`` and ``get_current_span`` fetch the context anew, four frames each.
SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, context.Context())))


_BENEATH: dict[str, bool] = {}


def _steps_aside(module: str) -> bool:
    """A foreign wrapper module that will not give way to us (decided once per module)."""
    decided = _BENEATH.get(module)
    if decided is None:
        if not module.startswith(FOREIGN_WRAPPER_MODULES):
            decided = False
        else:
            # OpenLLMetry's packages import the suppress key and pass through when it is set,
            # which our attach() does: our span stays the one span.
            package = ".".join(module.split(".")[:3]) + "."
            decided = not any(
                name.startswith(package)
                and hasattr(loaded, "SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY")
                for name, loaded in list(sys.modules.items())
            )
        _BENEATH[module] = decided
    return decided


# Plain functions and methods: nobody's wrapper.
_PLAIN = frozenset({types.FunctionType, types.MethodType, types.BuiltinFunctionType, type(None)})


def _foreign_wrapper_beneath(wrapped: Any) -> bool:
    # wrapt hands the next layer in as ``wrapped``: a bound wrapper when someone else wrapped the
    # method before us. Plain functions and methods have no ``_self_wrapper`` (the caller asks
    # only about others: the usual case, and a failed getattr on them is dear).
    wrapper = getattr(wrapped, "_self_wrapper", None)
    if wrapper is None:
        return False
    return _steps_aside(getattr(wrapper, "__module__", None) or "")


def traced_elsewhere(wrapped: Any, instance: Any, current: context.Context) -> bool:
    """Whether another GenAI instrumentation already gives this call its span: a foreign
    wrapper beneath ours (on the method or the client's ``request``), or a foreign model-call
    span current (in ``current``, the current context)."""
    if type(wrapped) not in _PLAIN and _foreign_wrapper_beneath(wrapped):
        return True
    client = getattr(instance, "_client", None)  # Stainless SDKs: resource -> client
    if client is not None:
        request = getattr(type(client), "request", None)
        if type(request) not in _PLAIN and _foreign_wrapper_beneath(request):
            return True
    # A foreign model-call span current (or OpenLLMetry's "already traced" key set).
    if current.get(SUPPRESS_LLM_KEY):
        return True
    span: Any = current.get(SPAN_KEY)
    if span is None or not isinstance(span, trace.Span) or not span.is_recording():
        return False
    scope = getattr(span, "instrumentation_scope", None)
    if scope is not None and scope.name == SCOPE_NAME:
        return False
    attributes = getattr(span, "attributes", None)
    if not attributes:
        return False
    if attributes.get("gen_ai.operation.name") in _MODEL_OPERATIONS:
        return True
    if "llm.request.type" in attributes:
        return True
    return attributes.get(_OPENINFERENCE_KIND) in _OPENINFERENCE_LLM
