"""What the LangChain instrumentation adds to a chain run (the repo .venv has LangChain).

    python bench/langchain.py [--calls 300] [--rounds 7]

A three-step chain (prompt | ChatOpenAI | parser) over the openai SDK with an in-process
transport (no network, no server), against the SDK's real TracerProvider with a
BatchSpanProcessor and an in-memory metric reader. Variants, interleaved per round:

- ``baseline``: nothing instrumented;
- ``openai only``: llm-otel's openai instrumentation (the model span, no chain spans);
- ``langchain + openai``: the usual set-up: chain and step spans, the model call's span from the
  openai instrumentation (the callback records nothing for it);
- ``langchain only``: the openai SDK not instrumented, the model call recorded from LangChain's
  callbacks.

Prints microseconds per chain run (median over rounds, min..max), the overhead over the
baseline, and spans per run (a variant that records nothing is not measured as free).

For instruction counts (this machine's wall clock moves by more than the overhead), run one
variant under callgrind at two run counts and divide the difference by the count difference:

    valgrind --tool=callgrind python bench/langchain.py --only "langchain + openai" --calls 5
    valgrind --tool=callgrind python bench/langchain.py --only "langchain + openai" --calls 25
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import main, measure
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from scenarios import http_library
from worker import _completion

from llm_otel.instrumentation.langchain import LangChainInstrumentor

VARIANTS = ("baseline", "openai only", "langchain + openai", "langchain only")


def make_chain() -> Any:
    http = http_library("openai")
    body = _completion()

    def handler(request: Any) -> Any:
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    model = ChatOpenAI(
        model="gpt-4o-mini",
        api_key="k",  # type: ignore[arg-type]
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
    return prompt | model | StrOutputParser()


def timed(variant: str, calls: int) -> tuple[float, float]:
    """Microseconds per run, and spans exported per run. The chain is made after instrumenting,
    as in an app: the openai SDK binds its raw-response methods (which langchain-openai calls)
    when first used."""

    def make() -> Callable[[], Any]:
        chain = make_chain()
        return lambda: chain.invoke({"q": "where is my parcel?"})

    return measure(variant, LangChainInstrumentor, make, calls)


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], VARIANTS, timed, calls=300)
