"""Our semconv registry: generated code is fresh; every name llm-otel emits is either an official
semantic-convention name or defined in semconv/model/."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llm_otel
from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.gpu import GPUMetrics
from tests.conftest import USER, Telemetry
from tests.fakes.fake_nvml import two_gpus_one_with_mig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "semconv"))
import generate  # noqa: E402

# Event names of the GenAI conventions v1.41.1 (the Python package has no constants for events).
OFFICIAL_EVENTS = {"gen_ai.client.inference.operation.details", "gen_ai.evaluation.result"}


def test_generated_code_and_docs_are_fresh() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "semconv" / "generate.py"), "--check"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def _ours() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "semconv" / "model").glob("*.yaml"):
        attributes, metrics = generate.load(path)
        names |= {a["id"] for a in attributes} | {m["metric_name"] for m in metrics}
    return names


def _official() -> set[str]:
    names: set[str] = set()
    for package in ("opentelemetry.semconv.attributes", "opentelemetry.semconv.metrics",
                    "opentelemetry.semconv._incubating.attributes",
                    "opentelemetry.semconv._incubating.metrics"):  # fmt: skip
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            sub = importlib.import_module(f"{package}.{info.name}")
            names |= {v for k, v in vars(sub).items() if k.isupper() and isinstance(v, str)}
    return names


def test_registry_names_do_not_collide_with_official_ones() -> None:
    ours = _ours()
    assert all(name.startswith("llm_otel.") for name in ours)
    assert not ours & _official()


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_AND_EVENT)])
def test_every_emitted_name_is_official_or_ours(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    with llm_otel.context(conversation_id="c", user_id="u", session_id="s"):
        with llm_otel.workflow("wf"), llm_otel.agent("a", agent_id="1", model="m"):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=tools,
                                           temperature=0.1, seed=1, n=2, stop="x")  # fmt: skip
            for _ in client.chat.completions.create(
                model="tool-model",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            ):
                pass  # fmt: skip
            client.responses.create(model="gpt-4o-mini", input="hi", instructions="be brief")
            client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=3,
                                     encoding_format="float")  # fmt: skip
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="error-429", messages=USER)
            with llm_otel.tool("t", call_id="1", description="d", arguments={"a": 1}) as t:
                t.set_result("ok")
            with llm_otel.retrieval("idx", query="q") as r:
                r.set_documents(["d"])
            with llm_otel.task("step"), llm_otel.llm_call(provider="vllm", model="m",
                                                          stream=True) as call:  # fmt: skip
                call.chunk()
                call.set_response(input_tokens=1, output_tokens=1, output_text="x")
        llm_otel.record_evaluation("chatcmpl-test", name="fb", score=1, label="up",
                                   explanation="e")  # fmt: skip
    gpu_reader = InMemoryMetricReader()
    GPUMetrics(MeterProvider(metric_readers=[gpu_reader]), nvml=two_gpus_one_with_mig())

    emitted: dict[str, str] = {}
    for span in telemetry.spans():
        for key in span.attributes or {}:
            emitted.setdefault(key, f"span {span.name}")
    for record in telemetry.logs():
        assert record.event_name in OFFICIAL_EVENTS
        for key in record.attributes or {}:
            emitted.setdefault(key, f"event {record.event_name}")
    for reader in (telemetry.metric_reader, gpu_reader):
        data: Any = reader.get_metrics_data()
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    emitted.setdefault(metric.name, "metric")
                    for point in metric.data.data_points:
                        for key in point.attributes or {}:
                            emitted.setdefault(key, f"metric {metric.name}")
    allowed = _official() | _ours()
    unknown = {name: where for name, where in emitted.items() if name not in allowed}
    assert not unknown, json.dumps(unknown, indent=2)
    assert len(emitted) > 60  # the scenario really exercised the surface
