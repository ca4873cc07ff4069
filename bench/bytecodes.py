"""Where llm-otel's own Python work per call goes: bytecodes executed per call, by function.

``bench/icount.py`` says how many instructions a call costs; this says which of our functions
run them, in seconds instead of minutes: the worker's measured calls run under a tracer that
counts every bytecode executed in llm-otel's and OpenTelemetry's code (``f_trace_opcodes``),
and the table lists them per call, by function (``--lines``: by line). The counts are exact and
repeat from run to run; they leave out work done in C (a dict built, an SDK's C accelerators),
so they point at what to change, and icount.py measures whether it paid: in the 2026-12-04 work
on issue 15, one bytecode fewer was worth 60 to 110 instructions when nothing took its place.
Work moved into C helpers is not free: ``map()`` over an ``attrgetter`` costs ~100 ns an element
where a specialized attribute read costs ~38 ns, so a rewrite that cut a stream's bytecodes by a
fifth that way cost more instructions, not fewer (docs/performance.md). Measure before keeping.

    python bench/bytecodes.py llm_otel --scenario "chat sync"
    python bench/bytecodes.py llm_otel --scenario "stream sync" --content on --lines --top 40
    python bench/bytecodes.py manual --scenario "chat sync"     # the SDK's share alone

It runs in the repository's own virtualenv (``.venv/bin/python bench/bytecodes.py ...``).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker

Tracer = Callable[[FrameType, str, Any], Any]


def _owner(filename: str) -> str | None:
    if "llm_otel" in filename:
        return "llm-otel"
    if "opentelemetry" in filename:
        return "otel"
    return None


def _name(frame: FrameType, lines: bool) -> str:
    code = frame.f_code
    path = code.co_filename.split("site-packages/")[-1].split("/src/")[-1]
    line = f":{frame.f_lineno}" if lines else ""
    return f"{path}:{code.co_firstlineno} {code.co_name}{line}"


def count(variant: str, content: bool, scenario: str, calls: int, lines: bool) -> tuple[
    collections.Counter[tuple[str, str]], int
]:  # fmt: skip
    """Bytecodes executed in the measured calls, by (owner, function); and the calls made."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Tracer | None:
        owner = _owner(frame.f_code.co_filename)
        if owner is None:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False

        def local(frame: FrameType, event: str, arg: Any) -> Tracer:
            if event == "opcode":
                counts[owner, _name(frame, lines)] += 1
            return local

        return local

    def window(fn: Callable[[], object], times: int) -> None:
        sys.settrace(tracer)
        try:
            worker._repeat(fn, times)
        finally:
            sys.settrace(None)

    worker.window = window  # the measured calls only, as icount.py counts them
    results = worker.run(variant, content, calls, scenario)
    if not results.get(scenario):
        raise SystemExit(f"{variant!r} has no scenario {scenario!r}")
    if variant != "baseline" and results["spans per call"] < 1:
        raise SystemExit(f"{variant!r} exported fewer spans than calls: not instrumenting")
    return counts, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=["llm_otel", "manual", "baseline"])
    parser.add_argument("--scenario", default="chat sync")
    parser.add_argument("--content", choices=["off", "on"], default="off")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--top", type=int, default=30, help="rows shown (llm-otel's)")
    parser.add_argument("--lines", action="store_true", help="by line, not by function")
    args = parser.parse_args()
    counts, calls = count(args.variant, args.content == "on", args.scenario, args.calls, args.lines)
    totals: collections.Counter[str] = collections.Counter()
    for (owner, _), n in counts.items():
        totals[owner] += n
    print(
        f"{args.variant}, {args.scenario}, content {args.content}: bytecodes per call: "
        + ", ".join(f"{owner} {n / calls:,.0f}" for owner, n in sorted(totals.items()))
    )
    ours = [(n, name) for (owner, name), n in counts.items() if owner == "llm-otel"]
    for n, name in sorted(ours, reverse=True)[: args.top]:
        print(f"{n / calls:9.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
