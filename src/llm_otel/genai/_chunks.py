"""How many of a stream's chunk gaps become ``time_per_output_chunk`` metric points.

The conventions record one point per chunk after the first, and each point costs the OTel SDK
~100k instructions (it cleans and hashes the attributes again on every record): more than the
rest of a 20-chunk stream's telemetry together. A gateway streaming thousands of responses a
second can keep one gap in N instead (``configure(chunk_timing=N)`` or ``LLM_OTEL_CHUNK_TIMING``):
every N-th gap of each stream from a random start, so the distribution, and with it every
quantile, stays what it was, while the histogram's count becomes about 1/N of the chunks.
``0`` records none (time to first chunk is still recorded). The default, 1, is every gap.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from itertools import islice
from operator import sub
from typing import Any

from llm_otel._env import warn_once

__all__ = [
    "CHUNK_TIMING_ENV",
    "chunk_gaps",
    "chunk_timing",
    "parse_chunk_timing",
    "set_chunk_timing",
]

CHUNK_TIMING_ENV = "LLM_OTEL_CHUNK_TIMING"
_EVERY = 1

_configured: int | None = None  # configure(chunk_timing=...); None: the environment's
_from_env: int | None = None  # the variable's setting, read at the first stream's end


def parse_chunk_timing(value: Any, source: str) -> int | None:
    """One gap in N as a non-negative integer: an int, its text, ``"every"``/``True`` (1) or
    ``"off"``/``False`` (0); None, with one warning naming ``source``, for anything else."""
    every: int | None = None
    if isinstance(value, bool):
        every = int(value)
    elif isinstance(value, int):
        every = value
    elif isinstance(value, float) and value.is_integer():
        every = int(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        named = {"every": 1, "all": 1, "on": 1, "true": 1, "off": 0, "none": 0, "false": 0}
        every = named.get(text)
        if every is None and text.isdigit():
            every = int(text)
    if every is None or every < 0:
        warn_once(
            source,
            value,
            "%s=%r is not a number of chunks (1: every chunk gap, N: one in N, 0: none); "
            "recording every gap",
        )
        return None
    return every


def set_chunk_timing(value: Any) -> None:
    """``configure(chunk_timing=...)``: None leaves the current setting."""
    global _configured
    if value is not None:
        parsed = parse_chunk_timing(value, "chunk_timing")
        _configured = _EVERY if parsed is None else parsed


def reset_chunk_timing() -> None:
    """Back to the environment's setting, read again on next use (tests)."""
    global _configured, _from_env
    _configured = _from_env = None


def chunk_timing() -> int:
    """One gap in how many is recorded: configure()'s setting, else the environment's (read
    once, as the OTEL_* variables are: reading an unset one from os.environ costs ~8k
    instructions), else 1."""
    if _configured is not None:
        return _configured
    if _from_env is not None:
        return _from_env
    return _read_env()


def _read_env() -> int:
    global _from_env
    raw = os.environ.get(CHUNK_TIMING_ENV, "")
    parsed = parse_chunk_timing(raw, CHUNK_TIMING_ENV) if raw.strip() else _EVERY
    _from_env = every = _EVERY if parsed is None else parsed
    return every


def chunk_gaps(times: Sequence[float]) -> Iterable[float]:
    """The gaps to record between a stream's chunk arrival ``times`` (in order): all of them
    (computed in C as they are consumed, never held), none, or every N-th from a random start."""
    every = chunk_timing()
    if every == 0 or len(times) < 2:
        return ()
    gaps = map(sub, islice(times, 1, None), times)
    return gaps if every == 1 else list(gaps)[random.randrange(every) :: every]
