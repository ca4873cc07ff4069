"""Every documented snippet meant to run does run: the ```` ```python run ```` blocks of README.md
and docs/*.md, each as a fresh process against the local OpenAI and Anthropic test servers
and an OTLP receiver, must exit 0 with nothing on stderr (no traceback, no llm-otel warning) and
export what they record. A Python block that is not to be run says so with
```` ```python norun ````; an unmarked one fails this suite, so a new snippet cannot be
forgotten. ```` ```python training ```` blocks need torch and run in tests/training/;
```` ```python llama_index ```` blocks need LlamaIndex and run in tests/llama_index/.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.anthropic_server import AnthropicTestServer
from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)[ \t]*(.*?)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    marker: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match and match.group(1):
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            code = "\n".join(lines[i + 1 : end]) + "\n"
            yield Block(path, i + 1, match.group(1), match.group(2), code)
            i = end
        i += 1


PYTHON = [b for path in DOCUMENTS for b in _blocks(path) if b.language == "python"]
RUN = [b for b in PYTHON if b.marker == "run"]


def test_every_python_block_says_whether_it_runs() -> None:
    unmarked = [b.id for b in PYTHON if b.marker not in ("run", "norun", "training", "llama_index")]
    # `training`: run with torch, transformers and lightning, by tests/training/test_docs.py;
    # `llama_index`: run with LlamaIndex (openai < 3), by tests/llama_index/test_docs.py
    assert unmarked == [], "mark each ```python block `run` (tested) or `norun`"
    assert len(RUN) >= 10  # the suite is not silently emptied


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[AnthropicTestServer]:
    server = AnthropicTestServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_documented_snippet_runs(
    block: Block, server: OpenAITestServer, anthropic_server: AnthropicTestServer, tmp_path: Path
) -> None:
    for module in re.findall(r"^(?:from|import) (langchain\w*|agents)\b", block.code, re.M):
        # The langchain and openai-agents extras, in .venv (not in .venv-oldest).
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{block.id} needs {module}, not installed in this venv")
    receiver = OTLPReceiver().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
        env.update(
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="test-key",
            ANTHROPIC_BASE_URL=anthropic_server.base_url,
            ANTHROPIC_API_KEY="test-key",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            LLM_OTEL_GPU_METRICS="false",  # no GPU here: its one notice is not the snippet's
        )
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{block.id}\n{result.stderr}"
        assert result.stderr == "", f"{block.id} wrote to stderr:\n{result.stderr}"
        if "configure(" in block.code and ("llm_call(" in block.code or "openai" in block.code):
            assert receiver.spans, f"{block.id}: nothing reached the OTLP receiver"
    finally:
        receiver.stop()
