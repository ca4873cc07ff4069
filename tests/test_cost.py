"""Estimated cost: price matching, the arithmetic, the span attribute and the metric, overrides."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from llm_otel import cost
from llm_otel.cost import Price
from tests.conftest import USER, Telemetry


@pytest.fixture(autouse=True)
def fresh_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LLM_OTEL_PRICES_FILE", raising=False)
    monkeypatch.delenv("LLM_OTEL_COST", raising=False)
    monkeypatch.setattr(cost, "_loaded", False)
    yield
    monkeypatch.setattr(cost, "_loaded", False)


def test_matching_exact_then_longest_prefix_at_a_boundary() -> None:
    table = cost.prices()
    assert table is not None and table.as_of
    mini = table.lookup("openai", "gpt-4o-mini")
    assert table.lookup("openai", "gpt-4o-mini-2024-07-18") is mini
    assert table.lookup("openai", "gpt-4o-2024-08-06") == table.lookup("openai", "gpt-4o")
    assert table.lookup("openai", "gpt-4o-2024-08-06") is not mini
    assert table.lookup("openai", "gpt-4oz") is None  # not at a name boundary
    assert table.lookup("openai", "my-finetune") is None
    assert table.lookup("azure.ai.openai", "gpt-4o") is None  # other provider, other prices
    assert table.lookup("anthropic", "claude-3-5-sonnet-20241022") is not None


def test_arithmetic_with_cached_tokens() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5, cache_creation_input=2.5)
    # 1000 input tokens of which 200 read from cache and 100 written to it; 500 output.
    assert price.cost(1000, 500, 200, 100) == pytest.approx(
        (700 * 2.0 + 200 * 0.5 + 100 * 2.5 + 500 * 8.0) / 1e6
    )
    assert Price(input=1.0).cost(100, None, 40) == pytest.approx(100 / 1e6)  # no cache price


def test_cost_on_span_and_metric(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    # The test server answers model "gpt-4o-mini-2024" with 12 input (4 cached), 5 output.
    expected = (8 * 0.15 + 4 * 0.075 + 5 * 0.60) / 1e6
    span = telemetry.only_span()
    assert span.attributes["llm_otel.usage.cost"] == pytest.approx(expected)
    metric = telemetry.metric("llm_otel.client.cost")
    assert metric.unit == "{USD}"
    (point,) = metric.data.data_points
    assert point.value == pytest.approx(expected)
    assert point.attributes["gen_ai.request.model"] == "gpt-4o-mini"


def test_unknown_model_costs_nothing(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="gpt-test", messages=USER)
    assert "llm_otel.usage.cost" not in telemetry.only_span().attributes
    assert telemetry.points("llm_otel.client.cost") == []


def test_overrides_from_code_and_file(
    client: openai.OpenAI, telemetry: Telemetry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cost.set_prices({"prices": {"openai": {"gpt-test": {"input": 1.0, "output": 2.0}}}})
    client.chat.completions.create(model="gpt-test", messages=USER)
    assert telemetry.only_span().attributes["llm_otel.usage.cost"] == pytest.approx(
        (12 * 1.0 + 5 * 2.0) / 1e6
    )
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"vllm": {"llama": {"input": 0.0, "output": 0.5}}}}))
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(path))
    cost.set_prices(None)  # back to shipped + file
    table = cost.prices()
    assert table is not None
    assert table.lookup("vllm", "llama-3-8b") == Price(input=0.0, output=0.5)
    assert table.lookup("openai", "gpt-test") is None
    assert table.lookup("openai", "gpt-4o") is not None


def test_bad_price_file_warns_and_keeps_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"openai": {"x": {"output": 1}}}}))  # no input price
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(path))
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        table = cost.prices()
    assert table is not None and table.lookup("openai", "gpt-4o") is not None
    assert "LLM_OTEL_PRICES_FILE" in caplog.text and "openai/x" in caplog.text


def test_cost_can_be_turned_off(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_OTEL_COST", "false")
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert "llm_otel.usage.cost" not in telemetry.only_span().attributes


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([1, 2, 3], "not a list"),
        ({"prices": {"openai": [1]}}, "prices['openai'] must map models"),
        ({"prices": {"openai": {"gpt-x": 3}}}, "openai/gpt-x"),
        ({"prices": {"openai": {"gpt-x": {"input": "cheap"}}}}, "openai/gpt-x"),
        ({"prices": {"openai": {"gpt-x": {"input": -1}}}}, "openai/gpt-x"),
        ({"openai": {"gpt-x": {"input": 1}}}, 'no "prices" key'),
    ],
)
def test_a_price_file_of_the_wrong_shape_is_named_and_costs_nothing_else(
    content: object,
    says: str,
    client: openai.OpenAI,
    telemetry: Telemetry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(content))
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(path))
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    (record,) = [r for r in caplog.records if r.name == "llm_otel"]
    assert str(path) in record.getMessage() and says in record.getMessage()
    attributes = telemetry.only_span().attributes
    # The shipped table is kept, and nothing else of the call is lost.
    assert attributes["llm_otel.usage.cost"] > 0
    assert attributes["gen_ai.response.id"] == "chatcmpl-test"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert telemetry.points("gen_ai.client.token.usage")


def test_set_prices_rejects_a_wrong_shape_clearly_and_changes_nothing() -> None:
    before = cost.prices()
    with pytest.raises(ValueError, match="not a list"):
        cost.set_prices([1])  # type: ignore[arg-type]
    assert cost.prices() is before


def test_a_cost_failure_touches_no_other_telemetry(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("price table broken")

    monkeypatch.setattr(cost.PriceTable, "lookup", broken)
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    attributes = telemetry.only_span().attributes
    assert "llm_otel.usage.cost" not in attributes
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.output_tokens"] == 5
    assert telemetry.points("gen_ai.client.operation.duration")


@pytest.mark.parametrize("variable", ["LLM_OTEL_COST", "LLM_OTEL_GPU_METRICS"])
def test_an_unreadable_switch_warns_and_keeps_the_default(
    variable: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_otel._env import env_flag

    monkeypatch.setenv(variable, "banana")
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert env_flag(variable, True) is True
        assert env_flag(variable, True) is True  # warned once
    (record,) = caplog.records
    assert variable in record.getMessage() and "banana" in record.getMessage()


def test_batch_rates() -> None:
    shipped = cost.prices()
    assert shipped is not None
    assert (shipped.batch_rate("openai"), shipped.batch_rate("anthropic")) == (0.5, 0.5)
    assert shipped.batch_rate("groq") == 1.0  # no batch API listed: the list price
    merged = shipped.merged(cost.parse({"prices": {}, "batch": {"openai": 0.4, "groq": 0.75}}))
    assert (merged.batch_rate("openai"), merged.batch_rate("groq")) == (0.4, 0.75)
    assert merged.batch_rate("anthropic") == 0.5
    for bad, message in (({"openai": 1.5}, "0 to 1"), ({"openai": -1}, "finite price"),
                         ([0.5], "must map providers")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            cost.parse({"prices": {}, "batch": bad})
