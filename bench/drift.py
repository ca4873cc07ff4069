# ruff: noqa: RUF001  (text in another script, on purpose)
"""What drift monitoring costs, and how much divergence chance alone gives.

1. The cost of counting one call in the drift windows (on the evaluation thread), for a 2,000-
   and a 20,000-character answer in Latin and in another script, and of computing every
   divergence at a metric collection.
2. The noise floor: the Jensen-Shannon divergence between two samples of N calls drawn from the
   *same* distribution (what a window shows with no drift at all), for the features' typical
   numbers of values, as the mean and 99th percentile over many trials. An alert threshold must
   sit well above it.

    python bench/drift.py [--trials 400]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from opentelemetry.trace import INVALID_SPAN_CONTEXT  # noqa: E402

from llm_otel.genai import CompletedCall, LLMRequest, LLMResponse, text_part  # noqa: E402
from llm_otel.quality import Drift, DriftMonitor, EvaluatedCall, js_divergence  # noqa: E402

LATIN = "The checkout service returned 502 errors between 14:05 and 14:20; retry later. "
CYRILLIC = "Сервис оформления заказа возвращал ошибки 502 с 14:05 до 14:20; повторите позже. "


def sample_call(text: str, size: int, model: str = "gpt-4o-mini") -> EvaluatedCall:
    answer = (text * (size // len(text) + 1))[:size]
    request = LLMRequest(operation="chat", provider="openai", model=model,
                         input_messages=[{"role": "user", "parts": [text_part("Hi")]}])  # fmt: skip
    response = LLMResponse(finish_reasons=["stop"], input_tokens=900, output_tokens=size // 4,
                           output_messages=[{"role": "assistant",
                                             "parts": [text_part(answer)]}])  # fmt: skip
    return EvaluatedCall(CompletedCall(request, response, None, INVALID_SPAN_CONTEXT))


def cost(calls: int) -> None:
    print("Counting one call (µs, median of 5 rounds):")
    for name, text in (("latin", LATIN), ("cyrillic", CYRILLIC)):
        for size in (2000, 20000):
            call = sample_call(text, size)
            rounds = []
            for _ in range(5):
                monitor = DriftMonitor(Drift(window=3600, min_samples=10))
                started = time.perf_counter()
                for _ in range(calls):
                    monitor.observe(call, [("relevance", 0.8), ("sensitive_data", 1.0)])
                rounds.append((time.perf_counter() - started) / calls * 1e6)
            print(f"  {name:9} {size:6} chars: {statistics.median(rounds):6.1f}")
    monitor = DriftMonitor(Drift(window=3600, min_samples=10))
    for i in range(10):  # 10 models, a full baseline each, 12 slices of window
        for _ in range(200):
            monitor.observe(sample_call(LATIN, 400, f"model-{i}"), [("relevance", 0.8)])
    monitor.pin()
    started = time.perf_counter()
    points = monitor.divergences()
    print(f"Collection with 10 models: {len(points)} points in "
          f"{(time.perf_counter() - started) * 1e3:.2f} ms")  # fmt: skip


def noise(trials: int) -> None:
    rng = random.Random(1)
    shapes = {
        "2 values (tool_calls 80/20)": [0.8, 0.2],
        "4 values (output_tokens)": [0.1, 0.5, 0.35, 0.05],
        "10 values (scores, uniform)": [0.1] * 10,
    }
    print("\nJS divergence between two samples of the same distribution (mean / p99):")
    print(f"  {'distribution':30}" + "".join(f"{'N=' + str(n):>16}" for n in (50, 200, 1000)))
    for label, weights in shapes.items():
        row = []
        values = [str(i) for i in range(len(weights))]
        for n in (50, 200, 1000):
            found = []
            for _ in range(trials):
                a: dict[str, int] = {}
                b: dict[str, int] = {}
                for value in rng.choices(values, weights, k=n):
                    a[value] = a.get(value, 0) + 1
                for value in rng.choices(values, weights, k=n):
                    b[value] = b.get(value, 0) + 1
                found.append(js_divergence(a, b))
            found.sort()
            p99 = found[min(len(found) - 1, math.ceil(0.99 * len(found)) - 1)]
            row.append(f"{statistics.fmean(found):.4f}/{p99:.4f}")
        print(f"  {label:30}" + "".join(f"{cell:>16}" for cell in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    cost(args.calls)
    noise(args.trials)


if __name__ == "__main__":
    main()
