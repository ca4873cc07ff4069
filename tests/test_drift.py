# ruff: noqa: RUF001  (text in other scripts, on purpose)
"""Drift (issue 20, part 3): the measures on synthetic distributions, the windows and baselines
on a fake clock, baselines pinned to a file, the embedding centroid, the settings, and the
gauge through the real openai client, evaluation thread and SDK."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from llm_otel.genai import (
    CompletedCall,
    LLMRequest,
    LLMResponse,
    current_call_observer,
    text_part,
    tool_call_part,
)
from llm_otel.quality import (
    Drift,
    DriftMonitor,
    EvaluatedCall,
    EvaluationRunner,
    configure_evaluation,
    dominant_script,
    js_divergence,
    kl_divergence,
    pin_drift_baseline,
)
from llm_otel.quality._drift import MAX_MODELS, MAX_VALUES, features
from llm_otel.quality._settings import drift_from_env, parse_drift
from tests.conftest import Telemetry

LN2 = math.log(2)


# The measures --------------------------------------------------------------------------------


def test_js_is_zero_for_identical_and_ln2_for_disjoint_distributions() -> None:
    p = {"a": 3, "b": 1}
    assert js_divergence(p, {"a": 30, "b": 10}) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence({"a": 5}, {"b": 7}) == pytest.approx(LN2)
    assert js_divergence({"a": 1, "b": 1}, {"c": 1, "d": 3}) == pytest.approx(LN2)
    q = {"a": 1, "b": 3, "c": 1}
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))  # symmetric
    assert 0 < js_divergence(p, q) < LN2
    # By hand: P = (3/4, 1/4, 0), Q = (1/5, 3/5, 1/5), M = (P + Q) / 2.
    pa, pb, qa, qb, qc = 0.75, 0.25, 0.2, 0.6, 0.2
    ma, mb, mc = (pa + qa) / 2, (pb + qb) / 2, qc / 2
    expected = 0.5 * (pa * math.log(pa / ma) + pb * math.log(pb / mb)) + 0.5 * (
        qa * math.log(qa / ma) + qb * math.log(qb / mb) + qc * math.log(qc / mc)
    )
    assert js_divergence(p, q) == pytest.approx(expected)


def test_kl_only_where_it_is_finite() -> None:
    assert kl_divergence({"a": 1, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.0)
    # KL(P || Q), P = (1/2, 1/2), Q = (1/4, 3/4).
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence({"a": 2, "b": 2}, {"a": 1, "b": 3}) == pytest.approx(expected)
    assert kl_divergence({"a": 1}, {"a": 1, "b": 1}) == pytest.approx(math.log(2))
    assert kl_divergence({"a": 1, "c": 1}, {"a": 1, "b": 1}) is None  # c never seen before
    with pytest.raises(ValueError):
        js_divergence({}, {"a": 1})


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Hello there, how are you?", "latin"),
        ("Crème brûlée für Jürgen, señor", "latin"),
        ("Привет, как дела? OK", "cyrillic"),
        ("你好，今天天气很好", "han"),
        ("مرحبا كيف حالك", "arabic"),
        ("こんにちは、げんきですか", "kana"),
        ("안녕하세요", "hangul"),
        ("Γειά σου κόσμε", "greek"),
        ("12345 !?", "none"),
        ("", "none"),
        ("ሰላም ነው", "other"),  # Ethiopic: letters of a script not told apart
    ],
)
def test_dominant_script(text: str, script: str) -> None:
    assert dominant_script(text) == script


# The monitor on a fake clock ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def call(answer: str = "Fine, thanks.", *, model: str = "m", input_tokens: int = 100,
         output_tokens: int = 50, reason: str = "stop", error: str | None = None,
         tools: bool = False) -> EvaluatedCall:  # fmt: skip
    request = LLMRequest(operation="chat", provider="openai", model=model,
                         input_messages=[{"role": "user", "parts": [text_part("Hi")]}])  # fmt: skip
    response = None
    if error is None:
        parts: list[Any] = [text_part(answer)] if answer else []
        if tools:
            parts.append(tool_call_part("c1", "get_weather", {"city": "Oslo"}))
        response = LLMResponse(finish_reasons=[reason], input_tokens=input_tokens,
                               output_tokens=output_tokens,
                               output_messages=[{"role": "assistant", "parts": parts}])  # fmt: skip
    return EvaluatedCall(CompletedCall(request, response, error, INVALID_SPAN_CONTEXT))


def readings(monitor: DriftMonitor, measure: str = "js") -> dict[str, float]:
    """{feature (or feature/evaluation name): value} of one measure."""
    found: dict[str, float] = {}
    for value, attributes in monitor.divergences():
        if attributes["llm_otel.drift.measure"] == measure:
            feature = str(attributes["llm_otel.drift.feature"])
            name = attributes.get("gen_ai.evaluation.name")
            found[f"{feature}/{name}" if name else feature] = value
    return found


def test_the_features_of_a_call() -> None:
    assert dict(features(call())) == {"input_tokens": "256", "output_tokens": "64",
                                      "finish_reason": "stop", "tool_calls": "no",
                                      "output_script": "latin"}  # fmt: skip
    assert dict(features(call("", tools=True, reason="tool_calls", output_tokens=0))) == {
        "input_tokens": "256", "output_tokens": "1", "finish_reason": "tool_calls",
        "tool_calls": "yes",
    }  # fmt: skip
    assert dict(features(call(error="500"))) == {"finish_reason": "error"}
    assert dict(features(call(output_tokens=10**9)))["output_tokens"] == "+Inf"


def token_counts(rng: random.Random, n: int, mean: float) -> list[int]:
    return [max(1, int(rng.lognormvariate(math.log(mean), 0.6))) for _ in range(n)]


def test_a_learned_baseline_no_drift_then_a_shift() -> None:
    clock, rng = Clock(), random.Random(7)
    monitor = DriftMonitor(Drift(window=3600, min_samples=200), clock=clock)
    # The first hour (600 calls, one every 6 s) is learned as the baseline.
    for tokens in token_counts(rng, 600, 120):
        monitor.observe(call(output_tokens=tokens), [("relevance", rng.uniform(0.7, 1.0))])
        clock.now += 6
    assert readings(monitor) == {}  # the baseline completes with the first call past the hour
    monitor.observe(call(output_tokens=120), [("relevance", 0.9)])
    same = readings(monitor)
    assert set(same) == {"input_tokens", "output_tokens", "finish_reason", "tool_calls",
                         "output_script", "evaluation_score/relevance"}  # fmt: skip
    assert max(same.values()) < 0.01  # the window is (nearly) the baseline itself
    # The next hour, from the same distributions: below the noise floor the docs give.
    for tokens in token_counts(rng, 600, 120):
        monitor.observe(call(output_tokens=tokens), [("relevance", rng.uniform(0.7, 1.0))])
        clock.now += 6
    steady = readings(monitor)
    assert steady["output_tokens"] < 0.02 and steady["evaluation_score/relevance"] < 0.02
    assert steady["finish_reason"] == pytest.approx(0.0, abs=1e-12)
    # Then the answers get four times longer, a fifth are cut off, and the scores fall.
    for tokens in token_counts(rng, 600, 480):
        truncated = rng.random() < 0.2
        monitor.observe(call(output_tokens=tokens, reason="length" if truncated else "stop"),
                        [("relevance", rng.uniform(0.3, 0.8))])  # fmt: skip
        clock.now += 6
    shifted = readings(monitor)
    assert shifted["output_tokens"] > 0.3
    assert shifted["finish_reason"] == pytest.approx(
        js_divergence({"stop": 0.8, "length": 0.2}, {"stop": 1.0}), abs=0.03
    )
    assert shifted["evaluation_score/relevance"] > 0.3
    assert shifted["input_tokens"] == pytest.approx(0.0, abs=1e-12)  # the prompts did not change
    kl = readings(monitor, "kl")
    assert "finish_reason" not in kl  # "length" was never in the baseline: KL is infinite
    assert kl["input_tokens"] == pytest.approx(0.0, abs=1e-12)


def test_the_window_slides_and_an_idle_window_reports_nothing() -> None:
    clock = Clock()
    monitor = DriftMonitor(Drift(window=600, min_samples=20), clock=clock)
    for _ in range(60):  # 10 minutes of baseline
        monitor.observe(call("Hello"))
        clock.now += 10
    monitor.observe(call("Hello"))
    for _ in range(60):  # 10 minutes of Cyrillic answers: the window now holds only those
        monitor.observe(call("Привет"))
        clock.now += 10
    assert readings(monitor)["output_script"] == pytest.approx(LN2)
    clock.now += 540  # 9 quiet minutes: under 20 calls left in the window
    assert readings(monitor) == {}


def test_a_baseline_waits_for_enough_calls() -> None:
    clock = Clock()
    monitor = DriftMonitor(Drift(window=60, min_samples=50), clock=clock)
    for _ in range(10):
        monitor.observe(call())
        clock.now += 60  # the window passes, but 10 calls are not a baseline
    assert readings(monitor) == {}
    for _ in range(40):
        monitor.observe(call())
    clock.now += 1
    for _ in range(50):
        monitor.observe(call())
    assert readings(monitor)["output_script"] == pytest.approx(0.0)


def test_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    monitor = DriftMonitor(Drift(window=60, min_samples=1), clock=Clock())
    with caplog.at_level(logging.WARNING, "llm_otel"):
        for i in range(MAX_MODELS + 20):
            monitor.observe(call(model=f"model-{i}"))
    followed = {a.get("gen_ai.request.model") for _, a in monitor.divergences()}
    assert len(monitor._models) == MAX_MODELS and "model-70" not in followed
    assert sum("at most 64 models" in r.getMessage() for r in caplog.records) == 1
    for i in range(MAX_VALUES + 20):
        monitor.observe(call(model="model-0", reason=f"reason-{i}"))
    counts = monitor._slices[-1].counts[("openai", "model-0", "finish_reason", None)]
    assert len(counts) == MAX_VALUES + 1 and counts["other"] == 21  # "stop" came first


# Baselines on file --------------------------------------------------------------------------


def test_a_learned_baseline_is_written_and_a_restart_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "baselines" / "drift.json"
    clock = Clock()
    first = DriftMonitor(Drift(window=60, min_samples=10, baseline=path), clock=clock)
    for _ in range(12):
        first.observe(call("Hello", output_tokens=50))
        clock.now += 6
    assert path.exists()
    document = json.loads(path.read_text())
    assert document["llm_otel_drift_baseline"] == 1
    entry = next(e for e in document["features"] if e["feature"] == "output_tokens")
    assert entry == {"provider": "openai", "model": "m", "feature": "output_tokens",
                     "evaluation": None, "counts": {"64": 11}}  # fmt: skip
    # A restarted process (or another replica) compares with the file from its first window.
    second = DriftMonitor(Drift(window=60, min_samples=10, baseline=path), clock=Clock())
    for _ in range(10):
        second.observe(call("Hello", output_tokens=500))
    assert readings(second)["output_tokens"] == pytest.approx(LN2)
    assert readings(second)["output_script"] == pytest.approx(0.0)


def test_pinning_the_current_window(tmp_path: Path) -> None:
    clock = Clock()
    monitor = DriftMonitor(Drift(window=600, min_samples=5), clock=clock)
    for _ in range(5):
        monitor.observe(call("Hello"), [("relevance", 0.9)])
    assert monitor.pin(tmp_path / "pinned.json") == 6  # 5 features and one score
    assert readings(monitor)["output_script"] == pytest.approx(0.0)
    loaded = DriftMonitor(Drift(min_samples=5, baseline=tmp_path / "pinned.json"))
    assert loaded._baseline == monitor._baseline
    with pytest.raises(OSError):
        monitor.pin(tmp_path / "pinned.json" / "not-a-directory")


def test_a_file_it_cannot_use_is_left_alone(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    path = tmp_path / "drift.json"
    path.write_text("{not json")
    clock = Clock()
    with caplog.at_level(logging.WARNING, "llm_otel"):
        monitor = DriftMonitor(Drift(window=10, min_samples=3, baseline=path), clock=clock)
    assert [r for r in caplog.records if "cannot be used" in r.getMessage()]
    for _ in range(5):
        monitor.observe(call())
        clock.now += 2.5
    assert readings(monitor)  # learned in memory
    assert path.read_text() == "{not json"  # and the user's file is untouched


# Embeddings ---------------------------------------------------------------------------------


def test_the_embedding_centroid_distance() -> None:
    clock = Clock()
    monitor = DriftMonitor(Drift(window=100, min_samples=10, embed=lambda t: [1.0]), clock=clock)
    for i in range(21):
        monitor.observe(call(), embedding=[1.0, 0.1 * (i % 2), 0.0])
        clock.now += 5
    (distance, attributes), = monitor.embedding_distances()  # fmt: skip
    assert distance == pytest.approx(0.0, abs=0.01)
    assert attributes == {"gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}
    for _ in range(25):  # the answers turn towards the third axis
        monitor.observe(call(), embedding=[1.0, 0.05, 1.0])
        clock.now += 5
    (distance, _), = monitor.embedding_distances()  # fmt: skip
    assert distance == pytest.approx(1 - 1 / math.sqrt(2), abs=0.01)
    monitor.observe(call(), embedding=[1.0, 2.0])  # another size: left out, not mixed in
    (again, _), = monitor.embedding_distances()  # fmt: skip
    assert again == pytest.approx(distance)


# Through the evaluation thread and the SDK ------------------------------------------------------


@pytest.fixture
def drift() -> Iterator[Any]:
    def install(setting: Any, evaluators: Any = (), rate: Any = 1.0) -> EvaluationRunner:
        runner = configure_evaluation(list(evaluators), rate, setting)
        assert runner is not None and runner.drift is not None
        return runner

    yield install
    configure_evaluation([], None, False)
    assert current_call_observer() is None


def gauge(telemetry: Telemetry) -> dict[tuple[str, str], float]:
    return {(p.attributes["llm_otel.drift.feature"], p.attributes["llm_otel.drift.measure"]):
            p.value for p in telemetry.points("llm_otel.drift.divergence")}  # fmt: skip


def test_drift_of_real_calls_reaches_the_gauge(
    client: openai.OpenAI, telemetry: Telemetry, drift: Any
) -> None:
    runner = drift(Drift(min_samples=6))
    english = [{"role": "user", "content": "Tell me about the weather in Oslo"}]
    for _ in range(6):  # the test server's echo model answers with the prompt
        client.chat.completions.create(model="echo", messages=english)
    assert runner.flush(5)
    assert gauge(telemetry) == {}  # no baseline yet
    assert pin_drift_baseline() == 5
    baseline = gauge(telemetry)
    assert set(baseline) == {(f, m) for f in ("input_tokens", "output_tokens", "finish_reason",
                             "tool_calls", "output_script") for m in ("js", "kl")}  # fmt: skip
    assert set(baseline.values()) == {0.0}
    russian = [{"role": "user", "content": "Расскажи о погоде в Осло"}]
    for _ in range(6):
        client.chat.completions.create(model="echo", messages=russian)
    assert runner.flush(5)
    shifted = gauge(telemetry)
    assert shifted[("output_script", "js")] == pytest.approx(
        js_divergence({"latin": 6, "cyrillic": 6}, {"latin": 6})
    )
    assert ("output_script", "kl") not in shifted
    assert shifted[("output_tokens", "js")] == 0.0  # the server's usage is fixed
    point = telemetry.points("llm_otel.drift.divergence")[0]
    assert point.attributes["gen_ai.provider.name"] == "openai"
    assert point.attributes["gen_ai.request.model"] == "echo"
    recorded = repr([p.attributes for p in telemetry.points("llm_otel.drift.divergence")])
    assert "Oslo" not in recorded and "Осло" not in recorded


def test_scores_and_a_failing_embedding(
    client: openai.OpenAI, telemetry: Telemetry, drift: Any
) -> None:
    def embed(text: str) -> list[float]:
        if "fail" in text:
            raise RuntimeError(f"cannot embed {text}")
        if "hang" in text:
            time.sleep(2)
        return [float(len(text)), 1.0]

    runner = drift(Drift(min_samples=2, embed=embed, embed_timeout=0.3),
                   [lambda c: 0.95], rate=1.0)  # fmt: skip
    for content in ("a short one", "another one", "please fail", "hang on"):
        started = time.perf_counter()
        client.chat.completions.create(model="echo",
                                       messages=[{"role": "user", "content": content}])  # fmt: skip
        assert time.perf_counter() - started < 0.5  # never waits for the evaluation thread
    assert runner.flush(5)
    assert pin_drift_baseline() == 7  # 5 features, the score, the embedding centroid
    assert gauge(telemetry)[("evaluation_score", "js")] == 0.0
    errors = {(p.attributes["gen_ai.evaluation.name"], p.attributes["error.type"]): p.value
              for p in telemetry.points("llm_otel.evaluation.errors")}  # fmt: skip
    assert errors == {("drift_embedding", "RuntimeError"): 1, ("drift_embedding", "timeout"): 1}
    (distance,) = telemetry.points("llm_otel.drift.embedding.distance")
    assert distance.value == pytest.approx(0.0, abs=1e-9)


def test_pinning_with_drift_off_is_a_clear_error() -> None:
    assert current_call_observer() is None
    with pytest.raises(RuntimeError, match="drift is off"):
        pin_drift_baseline()


# Settings ------------------------------------------------------------------------------------


def test_what_users_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert parse_drift(True, "x") == Drift() == parse_drift("on", "x")
    assert parse_drift(False, "x") is None and parse_drift("off", "x") is None
    assert parse_drift(tmp_path / "b.json", "x") == Drift(baseline=tmp_path / "b.json")
    assert parse_drift({"window": 60}, "x") == Drift(window=60)
    with caplog.at_level(logging.WARNING, "llm_otel"):
        assert parse_drift({"window": -1}, "configure(drift=...)") is None
        assert parse_drift(3, "configure(drift=...)") is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("window must be a positive number" in m for m in messages)
    assert any("=3 not understood" in m for m in messages)
    with pytest.raises(ValueError, match="min_samples"):
        Drift(min_samples=0)
    with pytest.raises(TypeError, match="embed must be callable"):
        Drift(embed="model")  # type: ignore[arg-type]


def test_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                         caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    assert drift_from_env() is None
    monkeypatch.setenv("LLM_OTEL_DRIFT", "on")
    monkeypatch.setenv("LLM_OTEL_DRIFT_WINDOW", "30m")
    monkeypatch.setenv("LLM_OTEL_DRIFT_MIN_SAMPLES", "50")
    assert drift_from_env() == Drift(window=1800, min_samples=50)
    monkeypatch.delenv("LLM_OTEL_DRIFT")
    monkeypatch.setenv("LLM_OTEL_DRIFT_BASELINE", str(tmp_path / "b.json"))  # implies on
    assert drift_from_env() == Drift(window=1800, min_samples=50, baseline=str(tmp_path / "b.json"))
    monkeypatch.setenv("LLM_OTEL_DRIFT", "false")
    assert drift_from_env() is None
    monkeypatch.setenv("LLM_OTEL_DRIFT", "1")
    monkeypatch.setenv("LLM_OTEL_DRIFT_WINDOW", "soon")
    monkeypatch.setenv("LLM_OTEL_DRIFT_MIN_SAMPLES", "-3")
    with caplog.at_level(logging.WARNING, "llm_otel"):
        assert drift_from_env() == Drift(baseline=str(tmp_path / "b.json"))
    assert len(caplog.records) == 2
    # configure() with nothing said reads it; drift alone (no evaluators) starts the runner.
    try:
        runner = configure_evaluation()
        assert runner is not None and runner.evaluators == () and runner.drift is not None
        assert configure_evaluation() is runner
        assert configure_evaluation(None, 0.5).drift is runner.drift  # type: ignore[union-attr]
    finally:
        configure_evaluation([], None, False)
    assert current_call_observer() is None
