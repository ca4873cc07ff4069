"""scripts/gpu_training_check.py, the real-GPU check of the training callbacks, runs here on the
CPU (its GPU-only checks skipped), so it works the day a GPU machine is lent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_training_check_runs_on_the_cpu(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_training_check.py"), "--cpu", "--steps",
         "10", "--json", str(figures)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    found = json.loads(figures.read_text())
    assert found["device"] == "cpu" and found["lightning_losses_reported"] >= 1
