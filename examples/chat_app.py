"""An ordinary OpenAI app with no telemetry code: run it under ``opentelemetry-instrument``.

    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=test \\
        opentelemetry-instrument python examples/chat_app.py

Makes six calls: chat, streamed chat (with usage), a tool call, the Responses API, embeddings,
and one that fails with HTTP 429. Each becomes exactly one GenAI span.
"""

from __future__ import annotations

import openai

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def main() -> None:
    client = openai.OpenAI(max_retries=0)
    question = [{"role": "user", "content": "Say hello"}]

    reply = client.chat.completions.create(model="gpt-4o-mini", messages=question, temperature=0.2)
    print("chat:", reply.choices[0].message.content)

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=question, stream=True, stream_options={"include_usage": True}
    )
    print("stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    tool = client.chat.completions.create(model="tool-model", messages=question, tools=TOOLS)
    print("tool call:", tool.choices[0].message.tool_calls[0].function.name)

    response = client.responses.create(model="gpt-4o-mini", input="Say hello")
    print("responses:", response.output_text)

    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    print("embeddings:", len(embedding.data[0].embedding), "dimensions")

    try:
        client.chat.completions.create(model="error-429", messages=question)
    except openai.RateLimitError as exc:
        print("rate limited:", exc.status_code)


if __name__ == "__main__":
    main()
