"""The documented training snippets (```` ```python training ```` in docs/*.md) run with the real
frameworks: each as a fresh process, exporting to an OTLP receiver, must exit 0 and deliver its
run's span."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.otlp_receiver import OTLPReceiver
from tests.test_docs import PYTHON, Block

TRAINING = [b for b in PYTHON if b.marker == "training"]


def test_there_are_training_snippets() -> None:
    assert len(TRAINING) >= 2


@pytest.mark.parametrize("block", TRAINING, ids=[b.id for b in TRAINING])
def test_documented_training_snippet_runs(block: Block, tmp_path: Path) -> None:
    receiver = OTLPReceiver().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, LLM_OTEL_GPU_METRICS="false")
        command = [sys.executable, "-c", block.code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300, check=False)  # fmt: skip
        assert result.returncode == 0, f"{block.id}\n{result.stderr}"
        assert "llm_otel" not in result.stderr, f"{block.id} warned:\n{result.stderr}"
        names = {span["name"] for span in receiver.spans}
        assert any(name.startswith("training_run ") for name in names), names
        assert any(name.startswith("training_epoch ") for name in names), names
    finally:
        receiver.stop()
