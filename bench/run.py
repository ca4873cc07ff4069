"""Overhead of llm-otel against the peers, side by side, in one run.

    python bench/run.py                      # set up the virtualenvs (cached) and run
    python bench/run.py --rounds 7 --calls 1000 --variants llm_otel,manual

Each variant runs in its own virtualenv (~/.cache/llm-otel/bench/<variant>), since the peers pin
conflicting versions: baseline (no instrumentation), manual (a hand-written minimal span with the
same attributes and metric records), llm_otel, openllmetry (opentelemetry-instrumentation-openai),
openinference (openinference-instrumentation-openai), otel-official
(opentelemetry-instrumentation-openai-v2) and openlit. Rounds are interleaved (every variant
once per round, in a shuffled order) and each variant's overhead in a round is its time minus the
baseline's in that round; the table shows the median over rounds and the spread (min..max).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LLM_OTEL_CACHE", Path.home() / ".cache" / "llm-otel")) / "bench"
PEERS = {
    "openllmetry": ["opentelemetry-instrumentation-openai"],
    "openinference": ["openinference-instrumentation-openai"],
    # util-genai 1.2+ renamed a module openai-v2 2.4b0 imports; its requirement does not say so.
    "otel-official": [
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-util-genai==1.1b0",
        "httpx",
    ],
    # Unpinned, pip resolves openlit 1.34, which imports opentelemetry._events (gone from the
    # OTel API since) and fails at import.
    "openlit": ["openlit>=1.45"],
}
VARIANTS = ["baseline", "manual", "llm_otel", *PEERS]


def venv_name(variant: str) -> str:
    """Ours, the hand-written span and the main baseline share the llm-otel venv."""
    return "llm_otel" if variant in ("baseline", "manual", "llm_otel") else variant


def venv_python(variant: str) -> Path:
    """The interpreter for a variant (creating its virtualenv the first time)."""
    name = venv_name(variant)
    env = CACHE / name
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        packages = ["-e", str(ROOT)] if name == "llm_otel" else PEERS[name]
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "openai", "opentelemetry-sdk", *packages],
            check=True,
        )
    return python


def versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m\n"
        "for p in ('openai','opentelemetry-sdk','llm-otel','opentelemetry-instrumentation-openai',"
        "'openinference-instrumentation-openai','opentelemetry-instrumentation-openai-v2',"
        "'openlit'):\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: pass"
    )
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False
    ).stdout


def run_once(variant: str, content: str, calls: int, venv: str | None = None) -> dict[str, float]:
    """Per-call µs of one variant; ``venv`` runs the (uninstrumented) variant in another venv."""
    python = venv_python(venv or variant)
    result = subprocess.run(
        [
            str(python),
            str(ROOT / "bench" / "worker.py"),
            variant,
            "--content",
            content,
            "--calls",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{variant} ({content}) failed:\n{result.stderr[-2000:]}")
    line = result.stdout.strip().splitlines()[-1]
    return dict(json.loads(line)["us_per_call"])


def print_table(
    overheads: dict[tuple[str, str, str], list[float]],
    variants: list[str],
    contents: list[str],
    rounds: int,
    calls: int,
) -> None:
    """Markdown table: median overhead per call (µs) and its spread, per scenario and variant."""
    print(
        f"\nOverhead per call over no instrumentation, µs: median of {rounds} interleaved "
        f"rounds (min..max), {calls} calls per scenario per round\n"
    )
    shown = [v for v in variants if v != "baseline"]
    print("| content | scenario | " + " | ".join(shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for content in contents:
        for scenario in ("chat sync", "stream sync", "chat async", "stream async"):
            cells = []
            for variant in shown:
                values = overheads.get((content, scenario, variant))
                if not values:
                    cells.append("—")
                    continue
                cells.append(
                    f"{statistics.median(values):.0f} ({min(values):.0f}..{max(values):.0f})"
                )
            print(f"| {content} | {scenario} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--content", default="off,on")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if "baseline" not in variants:
        variants.insert(0, "baseline")
    for variant in dict.fromkeys(venv_python(v) for v in variants):
        print(f"# {variant.parent.parent.name}: " + versions(variant).replace("\n", ", "))

    overheads: dict[tuple[str, str, str], list[float]] = {}
    failures: dict[str, str] = {}
    for content in args.content.split(","):
        for round_no in range(args.rounds):
            # Every variant, and a baseline in every virtualenv (a peer may pin another
            # openai), in a shuffled order: overhead = variant - baseline of the same venv.
            jobs = [(v, None) for v in variants if v != "baseline"]
            jobs += [("baseline", venv) for venv in sorted({venv_name(v) for v in variants})]
            random.shuffle(jobs)
            times: dict[str, dict[str, float]] = {}
            baselines: dict[str, dict[str, float]] = {}
            for variant, venv in jobs:
                if variant in failures:
                    continue
                try:
                    result = run_once(variant, content, args.calls, venv)
                except RuntimeError as exc:
                    failures[venv or variant] = str(exc).splitlines()[-1]
                    continue
                if venv is not None:
                    baselines[venv] = result
                else:
                    times[variant] = result
            for variant, scenarios in times.items():
                spans_per_call = scenarios.pop("spans per call", 0.0)
                if spans_per_call < 0.99:
                    failures[variant] = (
                        f"made {spans_per_call:.2f} spans per call: not instrumenting"
                    )
                    continue
                base = baselines.get(venv_name(variant), {})
                for scenario, us in scenarios.items():
                    if scenario in base:
                        key = (content, scenario, variant)
                        overheads.setdefault(key, []).append(us - base[scenario])
            print(f"# content {content}: round {round_no + 1}/{args.rounds} done", flush=True)

    print_table(overheads, variants, args.content.split(","), args.rounds, args.calls)
    for variant, why in failures.items():
        print(f"\n{variant} failed: {why}")
    if args.json:
        raw: dict[str, Any] = {"|".join(k): v for k, v in overheads.items()}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
