"""bench/bytecodes.py, the quick per-function profile of our own work per call, keeps working."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bytecodes_counts_our_functions_per_call() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bytecodes.py"), "llm_otel", "--calls", "5",
         "--top", "50"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    totals = re.search(r"llm-otel ([\d,]+), otel ([\d,]+)", out)
    assert totals, out
    ours = int(totals.group(1).replace(",", ""))
    assert 100 < ours < 20_000, out  # a chat call runs some of our code, not none, not a flood
    assert "genai/_invocation.py" in out and "__init__" in out, out


def test_bytecodes_refuses_a_scenario_the_variant_lacks() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bytecodes.py"), "manual", "--scenario",
         "chat async", "--calls", "2"],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0 and "no scenario" in done.stderr, done.stderr


def test_worker_runs_with_the_collector_off_after_the_warm_up() -> None:
    """``bench/icount.py --gc off`` runs the worker so: the measured calls see no collection
    (the collector is off) and still record one span each."""
    script = (
        "import gc, json, sys; sys.path.insert(0, sys.argv[1]); import worker\n"
        "seen = []\n"
        "worker.window = lambda fn, n: (seen.append(gc.isenabled()), worker._repeat(fn, n))\n"
        "r = worker.run('llm_otel', False, 5, 'chat sync', sys.argv[2] == 'on')\n"
        "print(json.dumps([seen, r['spans per call']]))"
    )
    for collect in ("on", "off"):
        out = subprocess.run(
            [sys.executable, "-c", script, str(ROOT / "bench"), collect],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip
        assert out.strip().splitlines()[-1] == f"[[{str(collect == 'on').lower()}], 1.0]", out


def test_icount_pairs_each_seed_with_the_baseline_of_the_same_seed() -> None:
    """``bench/icount.py --seeds``: a hash seed moves the variant and the uninstrumented baseline
    alike (the same dict layouts), so each seed's figure is taken over its own baseline."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from icount import over_baseline
    finally:
        sys.path.remove(str(ROOT / "bench"))
    values = [(0, 110.0), (1, 125.0), (1, 127.0), (2, 90.0)]
    base = [(0, 10.0), (1, 20.0), (3, 0.0)]
    assert over_baseline(values, base) == [100.0, 106.0]  # seed 2 has no baseline: left out
