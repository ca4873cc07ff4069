"""Batch jobs in the app (issue 22, part 1): the span tree (items under the job, LLM calls under
items, from threads and tasks too), item failures that do not end the job, the counters, the
gauges (progress, remaining, throughput, ETA, last progress) on a fake clock, resumed jobs,
the decorator, and bad input."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

import llm_otel
from llm_otel import BatchJob, batch_job, current_job
from tests.conftest import Telemetry


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def counts(telemetry: Telemetry) -> dict[tuple[str, str | None], int]:
    return {(p.attributes["llm_otel.job.item.outcome"], p.attributes.get("error.type")): p.value
            for p in telemetry.points("llm_otel.job.items")}  # fmt: skip


def gauges(telemetry: Telemetry, job: str) -> dict[str, float]:
    found = {}
    for name in ("remaining", "progress", "throughput", "eta", "last_progress"):
        for point in telemetry.points(f"llm_otel.job.{name}"):
            if point.attributes["llm_otel.job.name"] == job:
                found[name] = point.value
    return found


def test_a_job_its_items_and_their_llm_calls(client: openai.OpenAI, telemetry: Telemetry) -> None:
    tickets = ["t-1", "t-2", "t-3", "t-4"]
    with batch_job("summaries", total=len(tickets), job_id="2026-12-03") as job:
        assert current_job() is job
        for ticket in tickets:
            try:
                with job.item(ticket):
                    if ticket == "t-3":
                        raise TimeoutError("the source system did not answer")
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": ticket}]
                    )
            except TimeoutError:
                continue  # the job goes on
    assert current_job() is None
    spans = {s.name: s for s in telemetry.spans()}
    run = spans["batch_job summaries"]
    assert run.attributes["llm_otel.job.name"] == "summaries"
    assert run.attributes["llm_otel.job.id"] == "2026-12-03"
    assert run.attributes["llm_otel.job.items.total"] == 4
    assert (
        run.attributes["llm_otel.job.items.ok"],
        run.attributes["llm_otel.job.items.failed"],
    ) == (3, 1)
    assert run.status.is_ok  # items failed, the job did not
    items = [s for s in telemetry.spans() if s.name == "batch_item summaries"]
    assert [s.attributes["llm_otel.job.item.id"] for s in items] == tickets
    assert all(s.parent.span_id == run.context.span_id for s in items)
    failed = next(s for s in items if s.attributes["llm_otel.job.item.id"] == "t-3")
    assert failed.attributes["error.type"] == "TimeoutError" and not failed.status.is_ok
    calls = [s for s in telemetry.spans() if s.name.startswith("chat ")]
    assert len(calls) == 3
    assert {c.parent.span_id for c in calls} == {
        s.context.span_id for s in items if s is not failed
    }
    assert counts(telemetry) == {("ok", None): 3, ("failed", "TimeoutError"): 1}
    (runs,) = telemetry.points("llm_otel.job.runs")
    assert runs.value == 1 and runs.attributes["llm_otel.job.item.outcome"] == "ok"


def test_items_from_threads_and_tasks_nest_under_the_job(telemetry: Telemetry) -> None:
    def work(job: BatchJob, i: int) -> None:
        with job.item(i), llm_otel.task("step"):
            pass

    with batch_job("threads", total=8) as job, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: work(job, i), range(8)))

    async def main() -> None:
        async def one(job: BatchJob, i: int) -> None:
            async with job.item(i):
                with llm_otel.task("step"):
                    await asyncio.sleep(0.01)

        async with batch_job("tasks", total=8) as job:
            await asyncio.gather(*(one(job, i) for i in range(8)))

    asyncio.run(main())
    spans = telemetry.spans()
    for name in ("threads", "tasks"):
        run = next(s for s in spans if s.name == f"batch_job {name}")
        items = {s.context.span_id: s for s in spans if s.name == f"batch_item {name}"}
        assert len(items) == 8
        assert all(s.parent.span_id == run.context.span_id for s in items.values())
        steps = [s for s in spans if s.name == "task step" and s.context.trace_id
                 == run.context.trace_id]  # fmt: skip
        assert len(steps) == 8 and {s.parent.span_id for s in steps} == set(items)


def test_a_job_that_raises_fails_and_ends_its_span(telemetry: Telemetry) -> None:
    with pytest.raises(RuntimeError), batch_job("broken", total=3) as job:
        with job.item("a"):
            pass
        raise RuntimeError("disk full")
    (run,) = [s for s in telemetry.spans() if s.name == "batch_job broken"]
    assert run.attributes["error.type"] == "RuntimeError" and not run.status.is_ok
    (runs,) = telemetry.points("llm_otel.job.runs")
    assert runs.attributes["llm_otel.job.item.outcome"] == "failed"
    assert runs.attributes["error.type"] == "RuntimeError"
    assert gauges(telemetry, "broken") == {}  # no longer running: no gauges


def test_the_gauges_on_a_fake_clock(telemetry: Telemetry) -> None:
    clock, wall = Clock(), Clock()
    wall.now = 1_764_000_000.0
    job = BatchJob("embeddings", total=1000, clock=clock, wall_clock=wall)
    with job:
        assert gauges(telemetry, "embeddings") == {
            "remaining": 1000, "progress": 0.0, "throughput": 0.0, "last_progress": wall.now,
        }  # no ETA before any progress  # fmt: skip
        for _ in range(120):  # 2 items a second for a minute
            clock.now += 0.5
            wall.now += 0.5
            job.record()
        found = gauges(telemetry, "embeddings")
        assert found["remaining"] == 880 and found["progress"] == pytest.approx(0.12)
        assert found["throughput"] == pytest.approx(2.0)
        assert found["eta"] == pytest.approx(440.0)
        assert found["last_progress"] == wall.now
        clock.now += 30  # half a minute with nothing finished
        found = gauges(telemetry, "embeddings")
        assert found["throughput"] == pytest.approx(1.0)  # the last minute holds 60 of them
        assert found["eta"] == pytest.approx(880.0)
        clock.now += 31
        found = gauges(telemetry, "embeddings")
        assert found["throughput"] == 0.0 and "eta" not in found
        job.record(False, error_type="RateLimitError", count=5)
    assert counts(telemetry) == {("ok", None): 120, ("failed", "RateLimitError"): 5}
    assert gauges(telemetry, "embeddings") == {}


def test_a_resumed_job_keeps_correct_totals(telemetry: Telemetry) -> None:
    with batch_job("backfill", total=100, done=60, job_id="retry-2") as job:
        assert gauges(telemetry, "backfill")["progress"] == pytest.approx(0.6)
        for i in range(60, 100):
            with job.item(i):
                pass
        found = gauges(telemetry, "backfill")
        assert found["remaining"] == 0 and found["progress"] == pytest.approx(1.0)
    (run,) = [s for s in telemetry.spans() if s.name == "batch_job backfill"]
    assert run.attributes["llm_otel.job.items.done_before"] == 60
    assert run.attributes["llm_otel.job.items.ok"] == 40
    assert counts(telemetry) == {("ok", None): 40}  # the earlier run counted its own 60


def test_two_runs_of_one_job_at_once_add_up(telemetry: Telemetry) -> None:
    with batch_job("shard", total=10) as one, batch_job("shard", total=30, done=10) as two:
        one.record(count=5)
        two.record(count=5)
        found = gauges(telemetry, "shard")
        assert found["remaining"] == 5 + 15 and found["progress"] == pytest.approx(20 / 40)


def test_the_decorator_and_a_total_known_later(telemetry: Telemetry) -> None:
    @batch_job("nightly", job_id="n-1")
    def nightly(items: list[int]) -> int:
        job = current_job()
        assert job is not None
        job.set_total(len(items))
        for i in items:
            with job.item(i):
                pass
        return job.ok

    @batch_job("nightly-async", item_spans=False)
    async def nightly_async() -> int:
        job = current_job()
        assert job is not None
        async with job.item():
            pass
        return job.ok

    assert nightly([1, 2, 3]) == 3
    assert nightly([4]) == 1  # each call is a new run
    assert asyncio.run(nightly_async()) == 1
    runs = [s for s in telemetry.spans() if s.name == "batch_job nightly"]
    assert [r.attributes["llm_otel.job.items.total"] for r in runs] == [3, 1]
    assert not [s for s in telemetry.spans() if s.name == "batch_item nightly-async"]
    assert nightly.__name__ == "nightly"


def test_an_interrupt_finishes_no_item(telemetry: Telemetry) -> None:
    job = BatchJob("interrupted", total=2)
    with pytest.raises(KeyboardInterrupt), job, job.item("a"):
        raise KeyboardInterrupt
    assert job.ok == job.failed == 0
    assert not telemetry.points("llm_otel.job.items")
    (item,) = [s for s in telemetry.spans() if s.name == "batch_item interrupted"]
    assert item.end_time is not None  # ended all the same


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": ""}, "needs a name"),
        ({"name": "j", "total": -1}, "total must be a whole number"),
        ({"name": "j", "total": 1.5}, "total must be a whole number"),
        ({"name": "j", "done": True}, "done must be a whole number"),
        ({"name": "j", "total": 5, "done": 6}, "more than total"),
    ],
)
def test_bad_input_is_a_clear_error(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch_job(**arguments)


def test_a_job_object_runs_once(telemetry: Telemetry) -> None:
    job = BatchJob("once")
    with job, pytest.raises(RuntimeError, match="already running"), job:
        pass
    with pytest.raises(ValueError, match="count must be"):
        job.record(count=0)
