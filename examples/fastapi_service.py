"""An LLM-backed HTTP service with no telemetry code: run it under ``opentelemetry-instrument``.

    OPENAI_BASE_URL=... OPENAI_API_KEY=... OTEL_SERVICE_NAME=support-bot \\
        opentelemetry-instrument uvicorn examples.fastapi_service:app --port 8000

FastAPI's instrumentation (opentelemetry-instrumentation-fastapi) makes the HTTP server span;
llm-otel makes the LLM call's span under it, plus the GenAI and (with the gpu extra) GPU metrics.

    POST /ask  {"question": "...", "model": "gpt-4o-mini", "stream": false}
"""

from __future__ import annotations

import openai
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="support-bot")
# The SDK retries 429s and 5xx twice, as it does by default: llm-otel shows each retry.
client = openai.AsyncOpenAI()


class Question(BaseModel):
    question: str
    model: str = "gpt-4o-mini"
    stream: bool = False


class Answer(BaseModel):
    answer: str
    model: str


@app.post("/ask")
async def ask(body: Question) -> Answer:
    messages = [
        {"role": "system", "content": "You are a helpful support assistant."},
        {"role": "user", "content": body.question},
    ]
    try:
        if body.stream:
            stream = await client.chat.completions.create(
                model=body.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return Answer(answer="".join(parts), model=body.model)
        reply = await client.chat.completions.create(model=body.model, messages=messages)
        return Answer(answer=reply.choices[0].message.content or "", model=reply.model)
    except openai.APIStatusError as exc:
        raise HTTPException(status_code=502, detail=f"LLM error {exc.status_code}") from exc


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
