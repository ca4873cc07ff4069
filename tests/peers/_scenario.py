"""Running a peers scenario in a fresh process: instrumentors are process singletons, and some
vendors' do not record again after an uninstrument() in the same process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def in_fresh_process(module: str, *args: Any) -> dict[str, Any]:
    """``module.scenario(*args)`` run in a new interpreter; what it returned (JSON)."""
    code = f"import json; from {module} import scenario; print(json.dumps(scenario(*{args!r})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen
