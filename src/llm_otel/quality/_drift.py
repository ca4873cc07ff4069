"""Drift: how far the distribution of cheap per-call features over the current window is from a
baseline, per provider and model, reported as the ``llm_otel.drift.divergence`` gauge.

It runs on the evaluation thread, on the calls sampled for online evaluation: each call adds one
count per feature (its token counts binned at the token-usage histogram's boundaries, its finish
reason, whether it called a tool, the answer's dominant script, each evaluation score in tenths)
to the current time slice. The current window is the last ``window`` seconds of slices; the
baseline is pinned from a file, or learned from the first ``window`` of traffic (at least
``min_samples`` calls) and then written to that file. The divergences are computed when the
metrics are collected, never on the request path. docs/quality.md argues for doing this in the
process rather than in PromQL.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from numbers import Real
from pathlib import Path
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import TOKEN_BUCKETS
from llm_otel.quality._call import EvaluatedCall
from llm_otel.semconv.evaluation import LLM_OTEL_DRIFT_FEATURE, LLM_OTEL_DRIFT_MEASURE

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_WINDOW",
    "FEATURES",
    "Drift",
    "DriftMonitor",
    "dominant_script",
    "js_divergence",
    "kl_divergence",
]

_logger = logging.getLogger("llm_otel")

FEATURES = ("input_tokens", "output_tokens", "finish_reason", "tool_calls", "output_script",
            "evaluation_score")  # fmt: skip
DEFAULT_WINDOW = 3600.0  # seconds
DEFAULT_MIN_SAMPLES = 200
SLICES = 12  # the window slides a twelfth at a time
MAX_MODELS = 64  # (provider, model) pairs followed; more are left out (one warning)
MAX_EVALUATIONS = 16  # evaluation names per model whose scores are followed
MAX_VALUES = 32  # distinct values of one feature; more are counted as "other"
MAX_DIMENSIONS = 8192  # of an embedding
FILE_FORMAT = 1

Key = tuple[str, str | None, str, str | None]  # provider, model, feature, evaluation name
ModelKey = tuple[str, str | None]


@dataclass(frozen=True)
class Drift:
    """Drift settings for ``configure(drift=...)``.

    ``window``: seconds of calls in the current window (and in a learned baseline).
    ``min_samples``: evaluated calls a window (and a learned baseline) must hold before a
    divergence is reported; fewer give noise (docs/quality.md has the noise floor).
    ``baseline``: a JSON file of pinned baselines. If it does not exist, the baselines learned
    from the first window are written there, so a restart or another replica uses the same ones.
    ``embed``: a function (sync or async) from an answer's text to its embedding (a sequence of
    floats), run on a helper thread with ``embed_timeout``; turns on
    ``llm_otel.drift.embedding.distance``."""

    window: float = DEFAULT_WINDOW
    min_samples: int = DEFAULT_MIN_SAMPLES
    baseline: str | os.PathLike[str] | None = None
    embed: Callable[[str], Any] | None = None
    embed_timeout: float = 10.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.window, bool)
            or not isinstance(self.window, Real)
            or not (math.isfinite(self.window) and self.window > 0)
        ):
            raise ValueError(f"window must be a positive number of seconds, not {self.window!r}")
        if (
            isinstance(self.min_samples, bool)
            or not isinstance(self.min_samples, int)
            or (self.min_samples < 1)
        ):
            raise ValueError(f"min_samples must be a positive integer, not {self.min_samples!r}")
        if self.baseline is not None and not isinstance(self.baseline, (str, os.PathLike)):
            raise TypeError(f"baseline must be a file path, not {type(self.baseline).__name__}")
        if self.embed is not None and not callable(self.embed):
            raise TypeError(f"embed must be callable, not {type(self.embed).__name__}")
        timeout = self.embed_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, Real) or not timeout > 0:
            raise ValueError(f"embed_timeout must be a positive number, not {timeout!r}")


# The measures.


def js_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence (natural log) of two distributions given as counts per value:
    0 when they are identical, ln 2 when they share no value."""
    total_p, total_q = sum(p.values()), sum(q.values())
    if total_p <= 0 or total_q <= 0:
        raise ValueError("a distribution with no counts")
    js = 0.0
    for value in p.keys() | q.keys():
        a, b = p.get(value, 0) / total_p, q.get(value, 0) / total_q
        m = (a + b) / 2
        if a > 0:
            js += a * math.log(a / m)
        if b > 0:
            js += b * math.log(b / m)
    return min(max(js / 2, 0.0), math.log(2))


def kl_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float | None:
    """Kullback-Leibler divergence (natural log) of ``p`` from ``q``; None where it is infinite
    (``p`` has a value ``q`` never had)."""
    total_p, total_q = sum(p.values()), sum(q.values())
    if total_p <= 0 or total_q <= 0:
        raise ValueError("a distribution with no counts")
    kl = 0.0
    for value, count in p.items():
        if count <= 0:
            continue
        b = q.get(value, 0) / total_q
        if b <= 0:
            return None
        a = count / total_p
        kl += a * math.log(a / b)
    return max(kl, 0.0)


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float | None:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return None if norm == 0 else 1.0 - dot / norm


# The features.

# Unicode blocks of the scripts told apart (start, end, name); other letters are "other".
_BLOCKS = sorted([
    (0x0041, 0x024F, "latin"), (0x1E00, 0x1EFF, "latin"), (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"), (0x0530, 0x058F, "armenian"), (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0x0900, 0x097F, "devanagari"),
    (0x0980, 0x09FF, "bengali"), (0x0E00, 0x0E7F, "thai"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x3040, 0x30FF, "kana"), (0x3400, 0x4DBF, "han"),
    (0x4E00, 0x9FFF, "han"), (0xAC00, 0xD7AF, "hangul"), (0xF900, 0xFAFF, "han"),
])  # fmt: skip
_STARTS = [start for start, _, _ in _BLOCKS]
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_SCRIPT_SAMPLE = 2000  # characters looked at
_CHARACTERS_SAMPLE = 250  # of those, classified (evenly spread)


def dominant_script(text: str) -> str:
    """The Unicode script most letters of ``text`` belong to (from 250 characters spread over
    its first 2000): latin, cyrillic, han, arabic, ...; "other" for letters of a script not
    told apart, "none" when there are no letters."""
    text = text[:_SCRIPT_SAMPLE]
    if text.isascii():
        return "latin" if _ASCII_LETTER.search(text) else "none"
    counts: dict[str, int] = {}
    for char in text[:: max(1, len(text) // _CHARACTERS_SAMPLE)]:
        if not char.isalpha():
            continue
        code = ord(char)
        at = bisect.bisect_right(_STARTS, code) - 1
        script = _BLOCKS[at][2] if at >= 0 and code <= _BLOCKS[at][1] else "other"
        counts[script] = counts.get(script, 0) + 1
    if not counts and _ASCII_LETTER.search(text):
        return "latin"
    return max(counts, key=counts.__getitem__) if counts else "none"


def _token_bin(count: int | None) -> str | None:
    if count is None or isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return None
    at = bisect.bisect_left(TOKEN_BUCKETS, count)
    return str(TOKEN_BUCKETS[at]) if at < len(TOKEN_BUCKETS) else "+Inf"


def _score_bin(score: float) -> str:
    if not 0.0 <= score <= 1.0:
        return "out_of_range"
    return f"{min(int(score * 10), 9) / 10:.1f}"  # 0.0 ... 0.9 (1.0 falls in 0.9)


def features(call: EvaluatedCall) -> Iterator[tuple[str, str]]:
    """(feature, value) for one finished call."""
    if call.error_type is not None:
        yield "finish_reason", "error"
        return
    value = _token_bin(call.input_tokens)
    if value is not None:
        yield "input_tokens", value
    value = _token_bin(call.output_tokens)
    if value is not None:
        yield "output_tokens", value
    reasons = call.finish_reasons
    yield "finish_reason", (str(reasons[0]).lower()[:40] if reasons else "none")
    messages = call.output_messages
    calls_tool = any(
        isinstance(part, dict) and part.get("type") == "tool_call"
        for message in messages for part in message.get("parts") or ()
    )  # fmt: skip
    yield "tool_calls", "yes" if calls_tool else "no"
    text = call.output_text
    if text:
        yield "output_script", dominant_script(text)


# The windows.


class _Slice:
    __slots__ = ("counts", "index", "vectors")

    def __init__(self, index: int) -> None:
        self.index = index
        self.counts: dict[Key, dict[str, int]] = {}
        self.vectors: dict[ModelKey, list[Any]] = {}  # [calls, summed vector]


class _Learning:
    __slots__ = ("calls", "counts", "first")

    def __init__(self, first: float) -> None:
        self.first = first
        self.calls = 0
        self.counts: dict[str, int] = {}


class _Centroid:
    __slots__ = ("calls", "first", "total")

    def __init__(self, first: float, dimensions: int) -> None:
        self.first = first
        self.calls = 0
        self.total = [0.0] * dimensions


def _add(counts: dict[str, int], value: str) -> None:
    if value not in counts and len(counts) >= MAX_VALUES:
        value = "other"
    counts[value] = counts.get(value, 0) + 1


def _attributes(key: Key | ModelKey) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {ga.GEN_AI_PROVIDER_NAME: key[0]}
    if key[1] is not None:
        attributes[ga.GEN_AI_REQUEST_MODEL] = key[1]
    if len(key) == 4:
        attributes[LLM_OTEL_DRIFT_FEATURE] = key[2]
        if key[3] is not None:
            attributes[ga.GEN_AI_EVALUATION_NAME] = key[3]
    return attributes


class DriftMonitor:
    """Windows of feature counts per provider and model, their baselines, and the divergences
    between them. :meth:`observe` runs on the evaluation thread; :meth:`divergences` and
    :meth:`embedding_distances` when the metrics are collected; :meth:`pin` when the user asks.
    Memory is bounded: at most 64 models, 16 evaluation names each, 32 values per feature."""

    def __init__(self, settings: Drift, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._slice_length = settings.window / SLICES
        self._lock = threading.Lock()
        self._slices: deque[_Slice] = deque()
        self._models: set[ModelKey] = set()
        self._evaluations: dict[ModelKey, set[str]] = {}
        self._baseline: dict[Key, dict[str, int]] = {}
        self._learning: dict[Key, _Learning] = {}
        self._centroids: dict[ModelKey, list[float]] = {}
        self._learning_centroids: dict[ModelKey, _Centroid] = {}
        self._warned: set[str] = set()
        self._path = Path(settings.baseline) if settings.baseline is not None else None
        self._writable = self._path is not None
        if self._path is not None and self._path.exists():
            self._writable = self._load(self._path)

    @property
    def embed(self) -> Callable[[str], Any] | None:
        return self.settings.embed

    # The evaluation thread.

    def observe(self, call: EvaluatedCall, scores: Iterable[tuple[str, float]] = (),
                embedding: Sequence[float] | None = None) -> None:  # fmt: skip
        """Count one evaluated call (its features, its evaluations' scores, its embedding)."""
        model: ModelKey = (call.provider, call.request_model)
        values: list[tuple[str, str, str | None]] = [(f, v, None) for f, v in features(call)]
        score_values: list[tuple[str, str, str | None]] = []
        now = self._clock()
        learned: list[str] = []
        with self._lock:
            if not self._follows(model):
                return
            names = self._evaluations.setdefault(model, set())
            for name, score in scores:
                if name in names or len(names) < MAX_EVALUATIONS:
                    names.add(name)
                    score_values.append(("evaluation_score", _score_bin(score), name))
            current = self._slice(now)
            for feature, value, evaluation in values + score_values:
                key: Key = (model[0], model[1], feature, evaluation)
                _add(current.counts.setdefault(key, {}), value)
                if key not in self._baseline and self._learn(key, value, now):
                    learned.append(f"{feature}/{evaluation}" if evaluation else feature)
            if embedding is not None and self._embedding_ok(embedding, model):
                self._add_vector(current, model, embedding, now, learned)
        if learned:
            _logger.info("llm-otel drift: baseline of %s %s learned (%s)", model[0],
                         model[1] or "", ", ".join(learned))  # fmt: skip
            self._write()

    def _follows(self, model: ModelKey) -> bool:
        if model in self._models:
            return True
        if len(self._models) >= MAX_MODELS:
            self._warn_once("models", "llm-otel drift follows at most %d models; %s %s and "
                            "later ones are left out", MAX_MODELS, *model)  # fmt: skip
            return False
        self._models.add(model)
        return True

    def _slice(self, now: float) -> _Slice:
        index = math.floor(now / self._slice_length)
        slices = self._slices
        if not slices or slices[-1].index != index:
            slices.append(_Slice(index))
        while slices[0].index <= index - SLICES:
            slices.popleft()
        return slices[-1]

    def _learn(self, key: Key, value: str, now: float) -> bool:
        """Add to a baseline being learned; True when it is complete (and frozen)."""
        learning = self._learning.get(key)
        if learning is None:
            learning = self._learning[key] = _Learning(now)
        _add(learning.counts, value)
        learning.calls += 1
        settings = self.settings
        if now - learning.first < settings.window or learning.calls < settings.min_samples:
            return False
        self._baseline[key] = learning.counts
        del self._learning[key]
        return True

    def _embedding_ok(self, embedding: Sequence[float], model: ModelKey) -> bool:
        dimensions = len(embedding)
        expected = self._centroids.get(model)
        if expected is None and model in self._learning_centroids:
            expected = self._learning_centroids[model].total
        if not 0 < dimensions <= MAX_DIMENSIONS or (
            expected is not None and len(expected) != dimensions
        ):
            self._warn_once("dimensions", "llm-otel drift: an embedding of %d dimensions was left "
                            "out (the baseline has %s; at most %d)", dimensions,
                            len(expected) if expected is not None else "none",
                            MAX_DIMENSIONS)  # fmt: skip
            return False
        return True

    def _add_vector(self, current: _Slice, model: ModelKey, embedding: Sequence[float],
                    now: float, learned: list[str]) -> None:  # fmt: skip
        entry = current.vectors.get(model)
        if entry is None:
            entry = current.vectors[model] = [0, [0.0] * len(embedding)]
        entry[0] += 1
        total = entry[1]
        for i, x in enumerate(embedding):
            total[i] += x
        if model in self._centroids:
            return
        centroid = self._learning_centroids.get(model)
        if centroid is None:
            centroid = self._learning_centroids[model] = _Centroid(now, len(embedding))
        centroid.calls += 1
        for i, x in enumerate(embedding):
            centroid.total[i] += x
        settings = self.settings
        if now - centroid.first >= settings.window and centroid.calls >= settings.min_samples:
            self._centroids[model] = [x / centroid.calls for x in centroid.total]
            del self._learning_centroids[model]
            learned.append("embedding")

    def _warn_once(self, what: str, message: str, *args: Any) -> None:
        if what not in self._warned:
            self._warned.add(what)
            _logger.warning(message, *args)

    # Collection.

    def _window(self) -> tuple[dict[Key, dict[str, int]], dict[ModelKey, list[Any]]]:
        """The current window's counts and summed embeddings (copies)."""
        counts: dict[Key, dict[str, int]] = {}
        vectors: dict[ModelKey, list[Any]] = {}
        with self._lock:
            self._slice(self._clock())  # drop slices that left the window
            for part in self._slices:
                for key, values in part.counts.items():
                    into = counts.setdefault(key, {})
                    for value, n in values.items():
                        into[value] = into.get(value, 0) + n
                for model, (calls, total) in part.vectors.items():
                    entry = vectors.get(model)
                    if entry is None:
                        vectors[model] = [calls, list(total)]
                    else:
                        entry[0] += calls
                        entry[1] = [x + y for x, y in zip(entry[1], total, strict=True)]
        return counts, vectors

    def divergences(self) -> list[tuple[float, dict[str, AttributeValue]]]:
        """JS (and KL where finite) of every feature whose window and baseline are big enough."""
        counts, _ = self._window()
        with self._lock:
            baseline = dict(self._baseline)
        readings: list[tuple[float, dict[str, AttributeValue]]] = []
        for key, window in counts.items():
            base = baseline.get(key)
            if base is None or sum(window.values()) < self.settings.min_samples:
                continue
            attributes = _attributes(key)
            readings.append((js_divergence(window, base),
                             {**attributes, LLM_OTEL_DRIFT_MEASURE: "js"}))  # fmt: skip
            kl = kl_divergence(window, base)
            if kl is not None:
                readings.append((kl, {**attributes, LLM_OTEL_DRIFT_MEASURE: "kl"}))
        return readings

    def embedding_distances(self) -> list[tuple[float, dict[str, AttributeValue]]]:
        _, vectors = self._window()
        with self._lock:
            centroids = dict(self._centroids)
        readings: list[tuple[float, dict[str, AttributeValue]]] = []
        for model, (calls, total) in vectors.items():
            centroid = centroids.get(model)
            if centroid is None or calls < self.settings.min_samples:
                continue
            distance = cosine_distance([x / calls for x in total], centroid)
            if distance is not None:
                readings.append((distance, _attributes(model)))
        return readings

    # Baselines on file.

    def pin(self, path: str | os.PathLike[str] | None = None) -> int:
        """Make the current window the baseline of every feature it holds ``min_samples``
        calls of, and write the baselines to ``path`` (default: the configured file; none:
        kept in memory). Returns how many baselines were pinned."""
        counts, vectors = self._window()
        enough = self.settings.min_samples
        with self._lock:
            pinned = 0
            for key, values in counts.items():
                if sum(values.values()) >= enough:
                    self._baseline[key] = values
                    self._learning.pop(key, None)
                    pinned += 1
            for model, (calls, total) in vectors.items():
                if calls >= enough:
                    self._centroids[model] = [x / calls for x in total]
                    self._learning_centroids.pop(model, None)
                    pinned += 1
            if path is not None:
                self._path, self._writable = Path(path), True
        self._write(must=path is not None or self._path is not None)
        return pinned

    def _write(self, *, must: bool = False) -> None:
        """Write the baselines (atomically: a temporary file renamed over the old one)."""
        path = self._path
        if path is None or not self._writable:
            return
        with self._lock:
            features = [
                {"provider": key[0], "model": key[1], "feature": key[2], "evaluation": key[3],
                 "counts": dict(values)}
                for key, values in sorted(self._baseline.items(), key=lambda kv: str(kv[0]))
            ]  # fmt: skip
            document = {
                "llm_otel_drift_baseline": FILE_FORMAT,
                "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "window_seconds": self.settings.window,
                "features": features,
                "embeddings": [
                    {"provider": model[0], "model": model[1], "centroid": centroid}
                    for model, centroid in sorted(self._centroids.items(), key=str)
                ],
            }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=path.name, dir=path.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1)
            os.replace(temporary, path)
        except OSError as exc:
            if must:
                raise
            self._warn_once("write", "llm-otel drift: cannot write the baseline file %s: %s",
                            path, exc.strerror or type(exc).__name__)  # fmt: skip

    def _load(self, path: Path) -> bool:
        """Read pinned baselines; on a file it cannot use, one warning and False (the baselines
        are then learned in memory and the file is left as it is)."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("llm_otel_drift_baseline") != FILE_FORMAT:
                raise ValueError("not an llm-otel drift baseline (format 1)")
            for entry in document["features"]:
                if entry["feature"] not in FEATURES:
                    raise ValueError(f"unknown feature {entry['feature']!r}")
                counts = {str(k): int(v) for k, v in entry["counts"].items() if int(v) > 0}
                if counts:
                    key: Key = (str(entry["provider"]), entry.get("model"), entry["feature"],
                                entry.get("evaluation"))  # fmt: skip
                    self._baseline[key] = counts
            for entry in document.get("embeddings", ()):
                centroid = [float(x) for x in entry["centroid"]]
                if 0 < len(centroid) <= MAX_DIMENSIONS:
                    self._centroids[(str(entry["provider"]), entry.get("model"))] = centroid
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            self._baseline.clear()
            self._centroids.clear()
            _logger.warning("llm-otel drift: the baseline file %s cannot be used (%s); baselines "
                            "are learned from the first window instead and the file is left "
                            "as it is", path, exc)  # fmt: skip
            return False
        return True
