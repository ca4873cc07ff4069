"""What online evaluation costs: each built-in evaluator's time per call (on the evaluation
thread), and what a sampled call adds on the request path (its content built in memory, the
hand-over to the queue).

    python bench/evaluators.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.trace import INVALID_SPAN_CONTEXT  # noqa: E402

from llm_otel.genai import CompletedCall, LLMRequest, LLMResponse, text_part  # noqa: E402
from llm_otel.quality import BUILTIN, EvaluatedCall, configure_evaluation  # noqa: E402

PROMPT = "Summarise the attached ticket for the on-call engineer and suggest a next step. " * 6
ANSWER = "The customer reports intermittent 502 errors from the checkout service since 14:05. " * 4


def sample_call(size: int) -> EvaluatedCall:
    prompt = (PROMPT * (size // len(PROMPT) + 1))[:size]
    request = LLMRequest(
        operation="chat",
        provider="openai",
        model="gpt-4o-mini",
        input_messages=[{"role": "user", "parts": [text_part(prompt)]}],
    )
    request.attributes["gen_ai.output.type"] = "json"
    response = LLMResponse(
        finish_reasons=["stop"],
        output_messages=[
            {"role": "assistant", "parts": [text_part('{"summary": "' + ANSWER + '"}')]}
        ],
    )
    return EvaluatedCall(CompletedCall(request, response, None, INVALID_SPAN_CONTEXT))


def per_evaluator(rounds: int) -> None:
    print("| evaluator | µs per call, 500-char prompt | µs per call, 20,000-char prompt |")
    print("|---|---|---|")
    for name, make in BUILTIN.items():
        evaluator = make()
        cells = []
        for size in (500, 20_000):
            times = []
            for _ in range(rounds):
                call = sample_call(size)  # fresh: the text views are cached per call
                started = time.perf_counter()
                evaluator.evaluate(call)
                times.append(time.perf_counter() - started)
            cells.append(f"{statistics.median(times) * 1e6:.1f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |")


def request_path(calls: int) -> None:
    import openai
    from tests.conftest import make_telemetry
    from tests.servers.openai_server import OpenAITestServer

    from llm_otel.genai import ContentMode, ContentPolicy

    server = OpenAITestServer().start()
    results = {}
    try:
        for label, rate, mode in (
            ("evaluation off", None, ContentMode.NO_CONTENT),
            ("every call sampled (built-ins)", 1.0, ContentMode.NO_CONTENT),
            ("content capture on, no evaluation", None, ContentMode.SPAN_ONLY),
        ):
            make_telemetry(ContentPolicy(mode))
            runner = configure_evaluation("default", rate) if rate else configure_evaluation([])
            client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
            messages = [{"role": "user", "content": PROMPT}]
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                client.chat.completions.create(model="gpt-test", messages=messages)
                times.append(time.perf_counter() - started)
                if runner is not None:
                    runner.flush(5)  # the evaluation thread's work is not timed here
            results[label] = statistics.median(times) * 1e6
            from llm_otel.instrumentation.openai import OpenAIInstrumentor

            OpenAIInstrumentor().uninstrument()
    finally:
        configure_evaluation([])
        server.stop()
    base = results["evaluation off"]
    for label, value in results.items():
        print(f"{label}: median {value:.0f} µs per call ({value - base:+.0f} µs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    per_evaluator(args.rounds)
    request_path(args.calls)


if __name__ == "__main__":
    main()
