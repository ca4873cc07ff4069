"""bench/worker.py with parts of llm-otel switched off: what each part costs a call.

Issue 15's goal 1 measures llm-otel against a hand-written span making the same records. Beyond
those records llm-otel does work the conventions do not ask for; this runs the worker with some
of it off, so callgrind can say what each part costs (docs/performance.md, tenth pass):

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        python bench/ablate.py recent,attempts -- \\
        llm_otel --scenario "chat sync" --calls 60 --gc off

Parts, comma-separated (``none``: nothing off, the same imports; run every variant compared,
``manual`` included, through this script, so that only what runs differs):

- ``recent``: the recent-call table (feedback by response id): nothing is remembered.
- ``attempts``: the HTTP attempt watcher: no transport is wrapped, so no retries and no
  rate-limit headroom are recorded.
- ``headroom``: the rate-limit headroom alone (attempts are still watched, retries recorded).
- ``coexist``: the check for another GenAI instrumentation's wrapper or span: never found.

The worker's type shift (``LLM_OTEL_BENCH_TYPE_SHIFT``) is made by importing the worker, before
llm-otel is imported here. The arguments after ``--`` are the worker's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PARTS = ("recent", "attempts", "headroom", "coexist")


def _nothing(*args: Any) -> None:
    return None


def _never(*args: Any) -> bool:
    return False


def switch_off(parts: set[str]) -> None:
    """Switch the named parts of llm-otel off (before anything is instrumented)."""
    from llm_otel.genai import _attempts, _invocation, _wrapper

    if "recent" in parts:
        _invocation.remember = _nothing  # type: ignore[assignment]
    if "attempts" in parts:
        for transport in _attempts._TRANSPORTS:
            _attempts._TRANSPORTS[transport] = ()
    if "headroom" in parts:
        _invocation.HEADROOM_PROVIDERS = frozenset()
    if "coexist" in parts:
        _wrapper.traced_elsewhere = _never  # type: ignore[assignment]


def parse(text: str) -> set[str]:
    parts = {part.strip() for part in text.split(",") if part.strip()} - {"none"}
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(
            f"unknown part(s) {', '.join(sorted(unknown))}: choose from {', '.join(PARTS)} or none"
        )
    return parts


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: ablate.py PARTS -- WORKER-ARGUMENTS (see the docstring)")
    parts = parse(argv[0])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import worker  # makes the type shift, before llm-otel is imported

    switch_off(parts)
    sys.argv = [worker.__file__, *argv[2:]]
    return worker.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
