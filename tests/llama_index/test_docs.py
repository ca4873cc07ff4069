"""The documented LlamaIndex snippets (```` ```python llama_index ```` in docs/*.md) run with the
real LlamaIndex: each as a fresh process against the loopback OpenAI server, exporting to an OTLP
receiver, must exit 0 with nothing on stderr and deliver the query's spans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver
from tests.test_docs import PYTHON, Block

SNIPPETS = [b for b in PYTHON if b.marker == "llama_index"]


def test_there_are_llama_index_snippets() -> None:
    assert SNIPPETS


@pytest.mark.parametrize("block", SNIPPETS, ids=[b.id for b in SNIPPETS])
def test_documented_llama_index_snippet_runs(
    block: Block, server: OpenAITestServer, tmp_path: Path
) -> None:
    receiver = OTLPReceiver().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
        env.update(OPENAI_API_BASE=server.base_url, OPENAI_BASE_URL=server.base_url,
                   OPENAI_API_KEY="test-key", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                   LLM_OTEL_GPU_METRICS="false")  # fmt: skip
        command = [sys.executable, "-c", block.code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120, check=False)  # fmt: skip
        assert result.returncode == 0, f"{block.id}\n{result.stderr}"
        assert result.stderr == "", f"{block.id} wrote to stderr:\n{result.stderr}"
        names = {span["name"] for span in receiver.spans}
        assert {"invoke_workflow RetrieverQueryEngine", "retrieval VectorIndexRetriever",
                "chat gpt-4o-mini"} <= names, names  # fmt: skip
    finally:
        receiver.stop()
