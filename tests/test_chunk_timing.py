"""``chunk_timing``: every chunk gap by default, one in N for gateways, none when off."""

from __future__ import annotations

import itertools
import logging
from array import array
from collections.abc import Iterator

import openai
import pytest

from llm_otel import _env
from llm_otel.genai import _chunks
from llm_otel.genai._chunks import CHUNK_TIMING_ENV, chunk_timing, parse_chunk_timing
from tests.conftest import USER, Telemetry

PER_CHUNK = "gen_ai.client.operation.time_per_output_chunk"


@pytest.fixture(autouse=True)
def _fresh_setting() -> Iterator[None]:
    _chunks.reset_chunk_timing()
    _env._warned.clear()
    yield
    _chunks.reset_chunk_timing()


def _gaps_recorded(client: openai.OpenAI, telemetry: Telemetry, model: str) -> tuple[int, int]:
    """(chunks the stream had, time-per-chunk points recorded for it)."""
    before = sum(p.count for p in telemetry.points(PER_CHUNK))
    chunks = sum(1 for _ in client.chat.completions.create(model=model, messages=USER, stream=True))
    after = sum(p.count for p in telemetry.points(PER_CHUNK))
    return chunks, after - before


def test_every_gap_by_default(client: openai.OpenAI, telemetry: Telemetry) -> None:
    chunks, recorded = _gaps_recorded(client, telemetry, "long-stream")
    assert chunks > 100
    assert recorded == chunks - 1


def test_one_gap_in_n_from_a_random_start(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHUNK_TIMING_ENV, "10")
    for _ in range(12):
        chunks, recorded = _gaps_recorded(client, telemetry, "long-stream")
        gaps = chunks - 1
        assert recorded in (gaps // 10, -(-gaps // 10))  # every 10th gap, whatever the start
    (ttfc,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 12  # time to first chunk is per stream, never thinned


def test_sampled_gaps_keep_the_distribution() -> None:
    _chunks.set_chunk_timing(4)
    times = array("d", itertools.accumulate(range(1000), initial=0.0))  # gaps 0.0 ... 999.0
    starts = set()
    for _ in range(200):
        kept = list(_chunks.chunk_gaps(times))
        assert len(kept) == 250
        assert all(b - a == 4.0 for a, b in itertools.pairwise(kept))
        starts.add(kept[0])
    assert starts == {0.0, 1.0, 2.0, 3.0}  # a random start: no chunk position is favoured
    _chunks.set_chunk_timing(1)
    assert list(_chunks.chunk_gaps(times)) == [float(i) for i in range(1000)]
    _chunks.set_chunk_timing(0)
    assert list(_chunks.chunk_gaps(times)) == []


def test_off_records_no_gap_but_time_to_first_chunk(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    _chunks.set_chunk_timing("off")
    _, recorded = _gaps_recorded(client, telemetry, "long-stream")
    assert recorded == 0
    assert [p.count for p in telemetry.points("gen_ai.client.operation.time_to_first_chunk")] == [1]


def test_configure_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHUNK_TIMING_ENV, "5")
    assert chunk_timing() == 5
    _chunks.set_chunk_timing(0)
    assert chunk_timing() == 0
    _chunks.set_chunk_timing(None)  # left out: the earlier setting stays
    assert chunk_timing() == 0
    _chunks.reset_chunk_timing()
    monkeypatch.setenv(CHUNK_TIMING_ENV, "20")  # a changed variable is read again
    assert chunk_timing() == 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (10, 10), (0, 0), ("25", 25), (" 3 ", 3), (True, 1), (False, 0), ("every", 1),
     ("off", 0), ("OFF", 0), (4.0, 4)],
)  # fmt: skip
def test_what_users_write_is_accepted(value: object, expected: int) -> None:
    assert parse_chunk_timing(value, "chunk_timing") == expected


@pytest.mark.parametrize("value", [-1, "-3", "ten", 2.5, "0.1", [10], None, ""])
def test_bad_values_warn_once_and_keep_every_gap(
    value: object, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert parse_chunk_timing(value, "chunk_timing") is None
        assert parse_chunk_timing(value, "chunk_timing") is None
    assert len(caplog.records) == 1
    assert "chunk_timing" in caplog.text and "recording every gap" in caplog.text
    _chunks.set_chunk_timing(value if value is not None else "bad")
    assert chunk_timing() == 1
    caplog.clear()
    monkeypatch.setenv(CHUNK_TIMING_ENV, "bogus")
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        _chunks.reset_chunk_timing()
        assert chunk_timing() == 1
        assert chunk_timing() == 1
    assert caplog.text.count(CHUNK_TIMING_ENV) == 1


def test_configure_sets_it_and_names_a_bad_value() -> None:
    from tests.test_configure import _run

    script = """
    import logging, llm_otel
    from llm_otel.genai._chunks import chunk_timing
    logging.basicConfig()
    llm_otel.configure(service_name="gateway", chunk_timing="10", instrument=False)
    assert chunk_timing() == 10, chunk_timing()
    llm_otel.configure(chunk_timing=False)  # a later call changes it too
    assert chunk_timing() == 0, chunk_timing()
    llm_otel.configure(chunk_timing="lots")
    assert chunk_timing() == 1, chunk_timing()
    print("ok")
    """
    none = {f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "METRICS", "LOGS")}
    result = _run(script, none)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr.count("chunk_timing='lots' is not a number of chunks") == 1
