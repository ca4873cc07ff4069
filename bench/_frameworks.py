"""What bench/langchain.py and bench/openai_agents.py share: a span exporter that only counts,
and the command line that times each variant, interleaved per round, against the baseline."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

Timed = Callable[[str, int], tuple[float, float]]
"""``timed(variant, calls)``: microseconds per run, and spans exported per run."""


class Counting(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def main(description: str, variants: Sequence[str], timed: Timed, calls: int) -> None:
    """``--only VARIANT`` runs one variant once (for callgrind); else every variant, ``--rounds``
    times, printing the median per run, the spread, the overhead over ``variants[0]`` (the
    baseline) and spans per run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=variants, help="one variant, once (for callgrind)")
    args = parser.parse_args()
    if args.only:
        micros, per_run = timed(args.only, args.calls)
        print(f"{args.only}: {micros:.0f} µs/run, {per_run:.1f} spans/run")
        return
    times: dict[str, list[float]] = {v: [] for v in variants}
    spans: dict[str, float] = {}
    for _ in range(args.rounds):
        for variant in variants:
            micros, per_run = timed(variant, args.calls)
            times[variant].append(micros)
            spans[variant] = per_run
    base = statistics.median(times[variants[0]])
    print(f"{'variant':<20} {'µs/run':>8} {'min..max':>15} {'overhead':>9} {'spans/run':>10}")
    for variant in variants:
        median = statistics.median(times[variant])
        spread = f"{min(times[variant]):.0f}..{max(times[variant]):.0f}"
        overhead = "" if variant == variants[0] else f"{median - base:+.0f}"
        print(f"{variant:<20} {median:>8.0f} {spread:>15} {overhead:>9} {spans[variant]:>10.1f}")
