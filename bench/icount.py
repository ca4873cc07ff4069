"""Per-call cost in instructions, without the noise of a shared machine's clock.

    python bench/icount.py                                  # every variant (virtualenvs as run.py)
    python bench/icount.py --variants baseline,manual,llm_otel --calls 10,60

Each (variant, content, scenario) runs ``bench/worker.py`` twice under valgrind's callgrind, with
N1 and N2 calls (both after the same 20 warm-up calls). Callgrind counts the measured calls
only: the worker runs them inside ``sys.call_tracing`` and callgrind collects inside that
function alone (``--collect-atstart=no --toggle-collect=sys_call_tracing``), so start-up,
imports, the warm-up and shutdown are not counted at all. The difference of the two counts
divided by N2 - N1 is the cost of one call, with what the first measured call does once
cancelled out. (Counting the whole process and relying on the difference to cancel start-up
was not enough: start-up itself differs between two runs of the same code, by up to 11M
instructions here, which is ±200k per call over 50 calls.) The table shows each
variant's cost over the uninstrumented baseline of its own virtualenv, in thousands of
instructions per call, and marks a variant that exported fewer spans than calls as not
instrumenting (a variant that does nothing must not look free), and in the content-on rows a
variant whose spans never carried the prompt as capturing no content (its switch did not take).

Runs are deterministic: a fixed hash seed (the same dict and set layouts) and no timed export
(the worker's batch processor exports when full and at shutdown), so runs of the same code
agree within 13k instructions per chat call (7,373k to 7,386k over seven runs in two
virtualenvs, some with every heap address moved by allocating before the worker starts), and a
change of over 15k is real. Instruction counts are not time (a cache miss costs more than an
add), but they repeat where wall-clock rounds here move by hundreds of microseconds: compare
variants and changes with them, and confirm with bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, VARIANTS, venv_name, venv_python
from scenarios import EXTRA_SCENARIOS
from worker import SHIFT_VARIABLE

SCENARIOS = ("chat sync", "stream sync", "chat async", "stream async")
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(
    variant: str,
    content: str,
    scenario: str,
    calls: int,
    venv: str | None = None,
    gc: str = "on",
    seed: int = 0,
    shift: int = 0,
    preload: bool = False,
) -> tuple[int, dict[str, float]]:
    """(instructions executed, the worker's results: spans per call made, whether content was
    seen) for one worker run; ``venv`` runs the (uninstrumented) variant in another variant's
    virtualenv; ``seed``: its PYTHONHASHSEED; ``shift``: classes made before anything is
    imported (bench/worker.py, ``LLM_OTEL_BENCH_TYPE_SHIFT``), which moves the type cache's
    layout; ``preload``: the worker's ``--preload-ours``."""
    python = venv_python(venv or variant)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             # Count the measured calls only (the worker runs them inside sys.call_tracing).
             "--collect-atstart=no", "--toggle-collect=sys_call_tracing",
             str(python), str(ROOT / "bench" / "worker.py"), variant, "--content", content,
             "--calls", str(calls), "--scenario", scenario, "--gc", gc,
             *(["--preload-ours"] if preload else [])],
            capture_output=True, text=True, check=False, cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": str(seed), SHIFT_VARIABLE: str(shift)},
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{variant} {scenario} ({content}) failed:\n{result.stderr[-2000:]}")
    found = _COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    if int(found.group(1)) < 100_000 * calls:  # a chat call is millions of instructions
        raise RuntimeError(
            f"callgrind counted {found.group(1)} instructions in the measured window of {calls} "
            f"calls: {python} has no symbol for sys_call_tracing (a Python built without "
            f"symbols), so the window was never opened"
        )
    return int(found.group(1)), json.loads(result.stdout.strip().splitlines()[-1])["us_per_call"]


def per_call(
    variant: str,
    content: str,
    scenario: str,
    n1: int,
    n2: int,
    venv: str | None = None,
    gc: str = "on",
    seed: int = 0,
    shift: int = 0,
    preload: bool = False,
) -> tuple[float, dict[str, float]]:
    """(instructions per call, the worker's results) from one N1/N2 pair of runs."""
    low, _ = instructions(variant, content, scenario, n1, venv, gc, seed, shift, preload)
    high, results = instructions(variant, content, scenario, n2, venv, gc, seed, shift, preload)
    return (high - low) / (n2 - n1), results


Layout = tuple[int, int]
"""(hash seed, type shift): what sets a run's dict, set and type-cache layouts."""


def over_baseline(
    values: list[tuple[Layout, float]], base: list[tuple[Layout, float]]
) -> list[float]:
    """A variant's cost over the baseline, one figure per layout: each layout's median minus
    the baseline's median for the same layout (a hash seed sets the dict and set layouts of
    both; a type shift, the version tags of every class imported after it)."""
    mine, theirs = _median_by_layout(values), _median_by_layout(base)
    return [value - theirs[key] for key, value in sorted(mine.items()) if key in theirs]


def _median_by_layout(values: list[tuple[Layout, float]]) -> dict[Layout, float]:
    by_layout: dict[Layout, list[float]] = {}
    for key, value in values:
        by_layout.setdefault(key, []).append(value)
    return {key: statistics.median(seen) for key, seen in by_layout.items()}


def print_table(
    cost: dict[tuple[str, str, str], list[tuple[Layout, float]]],
    silent: set[tuple[str, str, str]],
    contentless: set[tuple[str, str, str]],
    variants: list[str],
    contents: list[str],
    scenarios: list[str],
) -> None:
    """Markdown: one row per (content, scenario), one column per variant, and llm-otel's cost
    over the hand-written equal-work span's where both were measured. A cell is the mean over
    the layouts (hash seeds x type shifts) of the cost over the baseline, with its (min..max)
    when there are several."""
    shown = [v for v in variants if v != "baseline"]
    ratio = "llm_otel" in shown and "manual" in shown
    header = [*shown, "llm_otel ÷ manual"] if ratio else shown
    print("| content | scenario | " + " | ".join(header) + " |")
    print("|---|---|" + "---|" * (len(shown) + ratio))
    for content in contents:
        for scenario in scenarios:
            cells, means = [], {}
            for variant in shown:
                key = (content, scenario, variant)
                base = cost.get((content, scenario, f"baseline@{venv_name(variant)}"))
                over = over_baseline(cost[key], base) if key in cost and base else []
                if not over:
                    cells.append("—")
                elif key in silent:
                    cells.append("not instrumenting")
                elif key in contentless:
                    cells.append("captured no content")
                else:
                    means[variant] = statistics.mean(over)
                    cell = f"{means[variant] / 1000:,.0f}"
                    if len(over) > 1:
                        cell += f" ({min(over) / 1000:,.0f}..{max(over) / 1000:,.0f})"
                    cells.append(cell)
            if ratio:
                both = "llm_otel" in means and means.get("manual")
                cells.append(f"{means['llm_otel'] / means['manual']:.2f}" if both else "—")
            print(f"| {content} | {scenario} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--contents", default="off,on")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--calls", default="10,60", help="N1,N2")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1,
        help="valgrind runs in parallel (counts do not depend on the load; wall time does)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="measure each cell this many times per seed (runs are deterministic: more than "
        "one only confirms it)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", default="0",
        help="PYTHONHASHSEED values, comma-separated: each cell is measured once per seed and "
        "the table shows the mean (min..max). A seed fixes the dict and set layouts, and they "
        "move a chat call by ~6k instructions (standard deviation over seeds) whatever the code "
        "does; so does a change of the source tree's path. Four seeds compare two trees to "
        "~3k; one cannot tell a 5k change from layout",
    )  # fmt: skip
    parser.add_argument(
        "--shifts", default="0",
        help="type shifts, comma-separated: each cell is measured once per seed and shift. A "
        "shift of K makes K classes before the worker imports anything, which moves the version "
        "tag of every class imported after (openai's, pydantic's, the SDK's, ours) and with it "
        "which (class, attribute) pairs share a slot of CPython's 4,096-entry method cache: "
        "two lookups that share one miss it every time. Shifts 0..8 moved a 20-chunk stream's "
        "difference to the hand-written span over 88k whatever the code does "
        "(docs/performance.md, ninth pass); compare streams over several",
    )  # fmt: skip
    parser.add_argument(
        "--gc", choices=["on", "off"], default="on",
        help="off: no garbage collection in the measured calls. With it on, where a collection "
        "falls moves a run of the same code by up to 13k instructions per call; off, runs of "
        "the same code agree within ~2k (but what the variant's allocations cost the collector "
        "is left out)",
    )  # fmt: skip
    parser.add_argument(
        "--preload-ours", action="store_true",
        help="the baseline of llm-otel's virtualenv and the hand-written span run with llm-otel "
        "instrumented and uninstrumented first (bench/worker.py --preload-ours), so they carry "
        "its modules and objects as the llm-otel run does: importing them alone moved the "
        "hand-written 20-chunk stream by +41k instructions (the allocator's frees, not work)",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    variants = args.variants.split(",")
    n1, n2 = (int(n) for n in args.calls.split(","))
    scenarios = args.scenarios.split(",")
    contents = args.contents.split(",")
    shifts = [int(shift) for shift in args.shifts.split(",")]
    layouts = [(int(seed), shift) for seed in args.seeds.split(",") for shift in shifts]
    cost: dict[tuple[str, str, str], list[tuple[Layout, float]]] = {}
    silent: set[tuple[str, str, str]] = set()
    contentless: set[tuple[str, str, str]] = set()
    venvs = sorted({venv_name(v) for v in variants})
    # (variant, content, scenario, venv, layout)
    jobs: list[tuple[str, str, str, str | None, Layout]] = []
    for layout in layouts:
        for _ in range(args.repeat):
            for scenario in scenarios:
                # The uninstrumented cost in each virtualenv: content switches change nothing.
                jobs += [("baseline", "off", scenario, venv, layout) for venv in venvs]
                for content in contents:
                    for variant in variants:
                        if variant == "baseline" or (
                            variant == "manual"
                            and ("async" in scenario or scenario in EXTRA_SCENARIOS)
                        ):
                            continue  # the hand-written span is for the sync chat client only
                        jobs.append((variant, content, scenario, None, layout))

    def measure(job: tuple[str, str, str, str | None, Layout]) -> None:
        variant, content, scenario, venv, layout = job
        seed, shift = layout
        preload = args.preload_ours and (variant == "manual" or venv == venv_name("llm_otel"))
        value, results = per_call(
            variant, content, scenario, n1, n2, venv, args.gc, seed, shift, preload
        )
        if venv is not None:
            for each in contents:
                cost.setdefault((each, scenario, f"baseline@{venv}"), []).append((layout, value))
            return
        key = (content, scenario, variant)
        cost.setdefault(key, []).append((layout, value))
        if results.get("spans per call", 0.0) < 1:
            silent.add(key)
        if content == "on" and not results.get("content seen"):
            contentless.add(key)  # its switch did not take: not like for like
        print(f"{content:3} {scenario:12} {variant:14} seed {seed} shift {shift} "
              f"{value / 1000:10.1f}k "
              f"instructions/call", file=sys.stderr)  # fmt: skip

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each job is two valgrind runs
        list(pool.map(measure, jobs))  # list(): a failed run's exception is raised here
    print(
        f"\nThousands of instructions per call over the uninstrumented baseline of the same "
        f"virtualenv (callgrind, {n2} - {n1} calls; mean over hash seeds {args.seeds} and type "
        f"shifts {args.shifts}, min..max; garbage collector {args.gc}"
        + ("; baseline and manual with llm-otel preloaded" if args.preload_ours else "")
        + ")\n"
    )
    print_table(cost, silent, contentless, variants, contents, scenarios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
