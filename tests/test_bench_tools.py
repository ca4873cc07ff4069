"""bench/bytecodes.py, the quick per-function profile of our own work per call, keeps working."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_icount_pairs_each_layout_with_the_baseline_of_the_same_layout() -> None:
    """``bench/icount.py --seeds --shifts``: a hash seed and a type shift move the variant and
    the uninstrumented baseline alike (the same dict layouts, the same version tags for the
    classes both import), so each layout's figure is taken over its own baseline."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from icount import over_baseline
    finally:
        sys.path.remove(str(ROOT / "bench"))
    values = [((0, 0), 110.0), ((1, 0), 125.0), ((1, 0), 127.0), ((0, 1), 90.0), ((2, 0), 1.0)]
    base = [((0, 0), 10.0), ((1, 0), 20.0), ((0, 1), 30.0), ((3, 0), 0.0)]
    # (2, 0) has no baseline: left out; the rest in layout order
    assert over_baseline(values, base) == [100.0, 60.0, 106.0]


def test_a_type_shift_moves_the_version_tag_of_every_class_the_worker_meets_after_it() -> None:
    """``LLM_OTEL_BENCH_TYPE_SHIFT=K`` (``icount.py --shifts``): bench/worker.py makes K classes
    before it imports anything else, so a class first looked up after it has a version tag K
    higher, and each of its attributes another slot in CPython's method cache."""
    testcapi = pytest.importorskip("_testcapi")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import worker, _testcapi\n"
        "class Later: pass\n"
        "getattr(Later, 'anything', None)\n"
        "print(_testcapi.type_get_version(Later))"
    )
    tags = {}
    for shift in (0, 5):
        env = {**os.environ, "PYTHONHASHSEED": "0", "LLM_OTEL_BENCH_TYPE_SHIFT": str(shift)}
        out = subprocess.run(
            [sys.executable, "-c", script, str(ROOT / "bench")],
            capture_output=True, text=True, timeout=120, check=True, env=env,
        ).stdout  # fmt: skip
        tags[shift] = int(out.split()[-1])
    assert testcapi.type_get_version(int) != 0
    assert tags[5] - tags[0] == 5, tags


_PRELOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
sys.argv = ["worker"] + sys.argv[2:]
import worker

mode = sys.argv[1]
tp, mp, lp = worker.providers()
variant = "llm_otel" if mode == "instrumented" else mode
wrap = worker.instrument(variant, False, tp, mp, lp, preload=mode != "instrumented")
client, _ = worker.make_clients()
create = client.chat.completions.create
calls = [
    lambda: create(model="gpt-4o-mini", messages=worker.MESSAGES),
    lambda: list(create(model="gpt-4o-mini", messages=worker.MESSAGES, stream=True)),
]
for stream, call in enumerate(calls):
    wrap(call, bool(stream)) if wrap else call()
tp.force_flush()
data = mp.bench_reader.get_metrics_data()  # None: no point at all
scopes = sorted(
    scope.scope.name
    for resource in (data.resource_metrics if data else [])
    for scope in resource.scope_metrics
    if any(metric.data.data_points for metric in scope.metrics)
)
print(json.dumps({"modules": sorted(sys.modules), "spans": tp.drop_exporter.exported,
                  "scopes": scopes}))
"""


def test_preloading_ours_carries_what_instrumenting_imports_and_runs_nothing_of_it() -> None:
    """``--preload-ours`` (bench/worker.py, bench/icount.py): the baseline and the hand-written
    span run after llm-otel was instrumented and uninstrumented, so they carry every module an
    instrumented run imports (importing the instrumentors alone misses ~36: what instrumenting
    imports), and nothing of llm-otel's runs in their calls: no span, no metric point of its."""

    def run(mode: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _PRELOAD, str(ROOT / "bench"), mode],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip
        return json.loads(out.strip().splitlines()[-1])

    instrumented, baseline, manual = run("instrumented"), run("baseline"), run("manual")
    assert instrumented["spans"] == 2 and instrumented["scopes"] != [], instrumented
    assert (baseline["spans"], baseline["scopes"]) == (0, [])
    assert (manual["spans"], manual["scopes"]) == (2, ["manual"])
    assert set(baseline["modules"]) == set(instrumented["modules"])
    assert set(manual["modules"]) == set(instrumented["modules"])


# One process per variant: instrument the client, make one chat call and one 20-chunk stream,
# print what each left (the span's name, kind and attributes; each metric point's name, unit,
# attributes, and count, with the sum for what is not a time).
_RECORDS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import worker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

variant, content = sys.argv[2], sys.argv[3] == "on"
worker.SERVED.update(json.loads(sys.argv[4]))
worker.content_env(variant, content)
spans = InMemorySpanExporter()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(spans))
manual = variant == "manual"
client, _ = worker.make_clients()
out = {}
for stream in (False, True):
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    if manual:
        wrapper = worker.manual_wrapper(tp, mp, content)
    else:
        from llm_otel.instrumentation.openai import OpenAIInstrumentor
        if stream:
            OpenAIInstrumentor().uninstrument()
        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    kwargs = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    create = client.chat.completions.create  # looked up once instrumented
    call = lambda: create(model="gpt-4o-mini", messages=worker.MESSAGES, **kwargs)
    if manual:
        wrapper(call, stream)
    else:
        result = call()
        if stream:
            for _ in result:
                pass
    (span,) = spans.get_finished_spans()
    spans.clear()
    attributes = {
        key: "<time>" if key.endswith("time_to_first_chunk") else
        list(value) if isinstance(value, tuple) else value
        for key, value in span.attributes.items()
    }
    points = []
    for metric in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics:
        for point in metric.data.data_points:
            total = getattr(point, "sum", getattr(point, "value", None))
            points.append([metric.name, metric.unit, sorted(point.attributes.items()),
                           getattr(point, "count", 1), None if metric.unit == "s" else total])
    out["stream" if stream else "chat"] = {
        "name": span.name, "kind": str(span.kind), "attributes": attributes,
        "points": sorted(points, key=str),
    }
print(json.dumps(out, sort_keys=True))
"""


@pytest.mark.parametrize("content", ["off", "on"])
@pytest.mark.parametrize(
    "served",
    [
        {},  # what the benchmark measures with
        {  # other values: a yardstick that wrote the measured ones in would not match
            "id": "chatcmpl-other",
            "finish_reason": "length",
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            "completion_fields": {"system_fingerprint": "fp_2", "service_tier": "default"},
            "chunk_fields": {"system_fingerprint": "fp_2", "service_tier": "default"},
        },
    ],
    ids=["measured", "other-values"],
)
def test_the_hand_written_span_makes_llm_otels_records(content: str, served: dict) -> None:
    """bench's ``manual`` variant is the yardstick of issue 15's goal 1 (llm-otel's overhead at
    equal work): it must leave the records llm-otel leaves, a chat call and a stream, content
    off and on, reading from the response every value the server decides."""

    def records(variant: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _RECORDS, str(ROOT / "bench"), variant, content,
             json.dumps(served)],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip
        return json.loads(out.strip().splitlines()[-1])

    ours, manual = records("llm_otel"), records("manual")
    assert ours["chat"]["attributes"]["gen_ai.response.id"] == served.get("id", "chatcmpl-bench")
    assert len(ours["stream"]["points"]) == 6, ours["stream"]["points"]  # 19 gaps in one point
    assert manual == ours


# One process per set of parts switched off (bench/ablate.py): three chat calls, then what the
# run left: the recent-call table's size, whether httpx's send is watched, the spans per call.
_ABLATED = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import ablate
import worker
ablate.switch_off(ablate.parse(sys.argv[2]))
result = worker.run("llm_otel", False, 3, "chat sync", False)
from llm_otel.genai import _recent
send = worker.http_library("openai").Client.send  # what the client's HTTP client inherits
print(json.dumps([_recent.size_bytes(), hasattr(send, "__wrapped__"), result["spans per call"]]))
"""


@pytest.mark.parametrize(
    ("parts", "left"),
    [
        ("none", [True, True]),
        ("recent", [False, True]),
        ("attempts", [True, False]),
        ("recent,attempts,headroom,coexist", [False, False]),
    ],
)
def test_ablate_switches_off_what_it_names_and_nothing_else(parts: str, left: list[bool]) -> None:
    """bench/ablate.py, which measured what llm-otel's parts beyond the conventions' records
    cost a call: each part named is off (nothing remembered; no transport watched), the others
    still run, and every call still makes its one span."""
    out = subprocess.run(
        [sys.executable, "-c", _ABLATED, str(ROOT / "bench"), parts],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    table_bytes, watched, spans = json.loads(out.strip().splitlines()[-1])
    assert [table_bytes > 0, watched, spans] == [*left, 1.0], out


def test_ablate_refuses_a_part_it_does_not_know() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ablate.py"), "recent,tables", "--", "llm_otel"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "unknown part(s) tables" in done.stderr, done.stderr
