"""The plug-in contract, checked for every llm-otel ``opentelemetry_instrumentor`` entry point, so
a new library gets these tests by being registered (see CONTRIBUTING.md):

- it is an :class:`LLMInstrumentor` whose version ranges are the same in ``package.py`` and in
  the pyproject extra users install, and whose target table names adapters that exist;
- it is described in ``tests/libraries.py`` (its test server and SDK calls), which puts it in
  every cross-library suite (host safety, fault sites, stream endings, content off);
- one span per call, plain and streamed; ``uninstrument()`` puts back exactly what was there
  and records nothing more; instrumenting again records again.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import tomllib
from opentelemetry.trace import SpanKind
from packaging.requirements import Requirement

from llm_otel.genai import ContentPolicy
from llm_otel.instrumentation._base import LLMInstrumentor
from llm_otel.instrumentation._support import _ABSENT
from tests.conftest import make_telemetry
from tests.libraries import LIBRARIES, Env, library_params

ROOT = Path(__file__).resolve().parent.parent
OURS = sorted(
    (ep for ep in entry_points(group="opentelemetry_instrumentor")
     if ep.value.startswith("llm_otel.instrumentation.")),
    key=lambda ep: ep.name,
)  # fmt: skip
LIBRARY_OF = {lib.instrumentor.replace(":", "."): lib for lib in LIBRARIES}
TESTED_ELSEWHERE = {
    "llm_otel_litellm": "tests/litellm, in its own venv (no litellm release installs next to "
    "openai 3 from this machine's index)",
    "llm_otel_langchain": "tests/test_langchain.py: a framework, whose model calls go through "
    "the client libraries this harness covers",
    "llm_otel_openai_agents": "tests/test_openai_agents.py: a framework, whose model calls go "
    "through the openai client this harness covers",
    "llm_otel_mcp": "tests/test_mcp.py: a protocol, not a model client (no model calls)",
    "llm_otel_llama_index": "tests/llama_index, in its own venv (LlamaIndex's OpenAI classes "
    "need openai < 3): a framework, whose model calls go through the client libraries",
}
# The extra installs the SDK users import; the instrumentor checks the package it patches.
INSTALLED_AS = {"boto3": "botocore"}  # same version numbers, one release train


def _extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        name: [Requirement(r) for r in requirements]
        for name, requirements in project["optional-dependencies"].items()
    }


def test_the_entry_points_are_all_found() -> None:
    assert len(OURS) >= 9, [ep.name for ep in OURS]


@pytest.mark.parametrize("entry_point", OURS, ids=lambda ep: ep.name)
def test_each_instrumentation_is_in_the_cross_library_harness(entry_point: Any) -> None:
    assert entry_point.value.replace(":", ".") in LIBRARY_OF or (
        entry_point.name in TESTED_ELSEWHERE
    ), f"describe {entry_point.name} in tests/libraries.py (see CONTRIBUTING.md)"


@pytest.mark.parametrize("entry_point", OURS, ids=lambda ep: ep.name)
def test_version_ranges_agree_with_the_extra(entry_point: Any) -> None:
    cls = entry_point.load()
    assert issubclass(cls, LLMInstrumentor)
    assert cls.library and cls.requirements
    package = importlib.import_module(f"{cls.__module__}.package")
    assert tuple(package._instruments) == tuple(cls.requirements)
    extra_name = entry_point.name.removeprefix("llm_otel_").replace("_", "-")
    extra = _extras().get(extra_name)
    assert extra, f"no [project.optional-dependencies] {extra_name} in pyproject.toml"
    for required in map(Requirement, cls.requirements):
        installed = {INSTALLED_AS.get(r.name, r.name): r for r in extra}
        assert required.name in installed, (required.name, extra)
        assert installed[required.name].specifier == required.specifier, (
            f"{entry_point.name}: package.py says {required}, "
            f"the {extra_name} extra says {installed[required.name]}"
        )


@pytest.mark.parametrize("entry_point", OURS, ids=lambda ep: ep.name)
def test_every_target_names_an_adapter_that_exists(entry_point: Any) -> None:
    cls = entry_point.load()
    for target in cls.targets:
        module_name, _, class_name = target.adapter.partition(":")
        try:
            module = importlib.import_module(module_name, cls.__module__)
        except ImportError as missing:  # the adapter imports its SDK, not installed here
            pytest.skip(f"{missing.name} is not installed")
        adapter = getattr(module, class_name)(**target.options)
        for hook in ("request", "response", "stream_accumulator", "error_response"):
            assert callable(getattr(adapter, hook)), (target, hook)


ALL = library_params()


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_one_span_per_call_plain_and_streamed(env: Env) -> None:
    env.chat()
    assert env.read_stream() > 0
    spans = env.telemetry.spans()
    assert len(spans) == 2, [s.name for s in spans]
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["gen_ai.provider.name"]
        assert span.attributes["gen_ai.operation.name"]
    assert [bool(s.attributes.get("gen_ai.request.stream")) for s in spans] == [False, True]


@pytest.mark.parametrize("env", ALL, indirect=True)
def test_uninstrument_restores_exactly_and_reinstrument_records_again(
    env: Env, content_policy: ContentPolicy
) -> None:
    instrumentor = env.library.instrumentor_class()()
    patched = list(instrumentor._patches._undo)
    assert patched, "instrument() patched nothing"
    instrumentor.uninstrument()
    for owner, name, _installed, original in patched:
        assert owner.__dict__.get(name, _ABSENT) is original, (owner, name)
    env.chat()
    assert env.telemetry.spans() == []

    telemetry = make_telemetry(content_policy, instrument_openai=False)
    instrumentor.instrument(**telemetry.providers, content_policy=content_policy)
    Env(env.library, telemetry).chat()  # a client made now (cohere binds methods per client)
    assert len(telemetry.spans()) == 1
