"""``llm-otel traces``: GenAI-aware trace inspection over Jaeger's query API.

Lists a service's recent traces, one line each with its LLM calls, tokens, estimated cost, slowest
call and errors; shows one trace as a tree of spans with the GenAI facts of each, per-trace
totals, and (when content was captured) the messages as a chat transcript. Works against any
Jaeger that serves the HTTP query API (``/api/traces``): the stack's, a container, a production
one behind auth headers or TLS. ``--json`` for scripts.

Exit codes: 0 found; 1 nothing matched (no trace, unknown trace id); 2 bad arguments; 3 Jaeger
unreachable or answering with an error.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_UNREACHABLE",
    "Jaeger",
    "JaegerError",
    "Span",
    "TraceSummary",
    "parse_trace",
    "summarize",
]

EXIT_NOT_FOUND = 1
EXIT_UNREACHABLE = 3

# The operations that are one call to a model (gen_ai.operation.name).
LLM_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "create_response"}
)
_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
                   "d": 86400.0}  # fmt: skip


class JaegerError(Exception):
    """Jaeger could not be reached, or answered with an error; the message says which."""


def parse_duration(text: str) -> float:
    """``500ms``, ``2s``, ``1.5m``, ``1h``, ``7d`` -> seconds; ValueError otherwise."""
    text = text.strip()
    for unit in sorted(_DURATION_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            number = text[: -len(unit)]
            try:
                value = float(number)
            except ValueError:
                break
            if value < 0 or value != value:  # noqa: PLR0124 (nan)
                break
            return value * _DURATION_UNITS[unit]
    raise ValueError(f"expected a duration such as 500ms, 2s, 5m, 1h or 2d, not {text!r}")


@dataclass
class Jaeger:
    """Jaeger's HTTP query API (v1 JSON: ``/api/services``, ``/api/traces``)."""

    url: str = "http://127.0.0.1:16686"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        url = self.url.rstrip("/") + path + query
        request = urllib.request.Request(url, headers={"accept": "application/json",
                                                       **self.headers})  # fmt: skip
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.ssl_context
            ) as answer:
                body = answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and path.startswith("/api/traces/"):
                return None
            detail = exc.read(500).decode(errors="replace").strip()
            raise JaegerError(f"Jaeger at {self.url} answered HTTP {exc.code} to {path}: "
                              f"{detail or exc.reason}") from None  # fmt: skip
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise JaegerError(f"cannot reach Jaeger at {self.url}: {reason}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise JaegerError(
                f"{url} did not answer JSON: is {self.url} Jaeger's query endpoint "
                "(the UI/API port, 16686 by default)?"
            ) from None

    def services(self) -> list[str]:
        return sorted(self._get("/api/services").get("data") or [])

    def find(
        self,
        service: str,
        tags: Mapping[str, str],
        *,
        min_duration: float | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"service": service, "limit": limit}
        if tags:
            params["tags"] = json.dumps(dict(tags))
        if min_duration:
            params["minDuration"] = f"{int(min_duration * 1e6)}us"
        if start is not None:
            params["start"] = int(start * 1e6)
        if end is not None:
            params["end"] = int(end * 1e6)
        return list(self._get("/api/traces", params).get("data") or [])

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        answer = self._get(f"/api/traces/{urllib.parse.quote(trace_id)}")
        traces = (answer or {}).get("data") or []
        return traces[0] if traces else None


# ---------------------------------------------------------------- the model of a trace


@dataclass
class Span:
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    start: float  # seconds since the epoch
    duration_ms: float
    tags: dict[str, Any]
    children: list[Span] = field(default_factory=list)

    @property
    def gen_ai_operation(self) -> str | None:
        value = self.tags.get("gen_ai.operation.name")
        return str(value) if value is not None else None

    @property
    def is_llm_call(self) -> bool:
        return self.gen_ai_operation in LLM_OPERATIONS

    @property
    def model(self) -> str | None:
        value = self.tags.get("gen_ai.response.model") or self.tags.get("gen_ai.request.model")
        return str(value) if value is not None else None

    @property
    def error(self) -> str | None:
        if "error.type" in self.tags:
            return str(self.tags["error.type"])
        if self.tags.get("error") in (True, "true") or self.tags.get("otel.status_code") == "ERROR":
            return str(self.tags.get("otel.status_description") or "error")
        return None

    def number(self, key: str) -> float | None:
        value = self.tags.get(key)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def integer(self, key: str) -> int | None:
        """A count attribute (tokens), or None when the span has none."""
        value = self.number(key)
        return None if value is None else int(value)

    def listing(self, key: str) -> list[Any]:
        """An array attribute (Jaeger stores them as JSON text)."""
        value = self.tags.get(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return [value]
        return list(value) if isinstance(value, list) else []

    def as_dict(self, content: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "service": self.service,
            "operation": self.operation,
            "start": _iso(self.start),
            "duration_ms": round(self.duration_ms, 3),
        }
        if self.gen_ai_operation:
            ttfc = self.number("gen_ai.response.time_to_first_chunk")
            out.update({
                "gen_ai.operation.name": self.gen_ai_operation,
                "model": self.model,
                "provider": self.tags.get("gen_ai.provider.name"),
                "time_to_first_chunk_ms": None if ttfc is None else round(ttfc * 1000, 3),
                "input_tokens": self.integer("gen_ai.usage.input_tokens"),
                "output_tokens": self.integer("gen_ai.usage.output_tokens"),
                "cost_usd": self.number("llm_otel.usage.cost"),
                "finish_reasons": self.listing("gen_ai.response.finish_reasons"),
            })  # fmt: skip
            if content:
                out["messages"] = transcript(self)
        out["error"] = self.error
        return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def parse_trace(data: Mapping[str, Any]) -> tuple[str, list[Span]]:
    """(trace id, root spans with their children) of one trace in Jaeger's JSON."""
    processes = data.get("processes") or {}
    spans: dict[str, Span] = {}
    for raw in data.get("spans") or []:
        parent = next((r["spanID"] for r in raw.get("references") or []
                       if r.get("refType") == "CHILD_OF"), None)  # fmt: skip
        process = processes.get(raw.get("processID"), {})
        spans[raw["spanID"]] = Span(
            span_id=raw["spanID"],
            parent_id=parent,
            service=process.get("serviceName", "?"),
            operation=raw.get("operationName", "?"),
            start=raw.get("startTime", 0) / 1e6,
            duration_ms=raw.get("duration", 0) / 1e3,
            tags={t["key"]: t.get("value") for t in raw.get("tags") or []},
        )
    roots: list[Span] = []
    for span in spans.values():
        parent = spans.get(span.parent_id) if span.parent_id else None
        (parent.children if parent else roots).append(span)
    for span in spans.values():
        span.children.sort(key=lambda s: s.start)
    roots.sort(key=lambda s: s.start)
    return str(data.get("traceID", "")), roots


def walk(spans: Iterable[Span]) -> Iterable[Span]:
    for span in spans:
        yield span
        yield from walk(span.children)


@dataclass
class TraceSummary:
    trace_id: str
    start: str
    duration_ms: float
    root: str
    services: list[str]
    llm_calls: int
    models: list[str]
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    slowest_call: str | None
    slowest_call_ms: float | None
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(trace_id: str, roots: Sequence[Span]) -> TraceSummary:
    every = list(walk(roots))
    calls = [s for s in every if s.is_llm_call]
    costs = [c for c in (s.number("llm_otel.usage.cost") for s in calls) if c is not None]
    slowest = max(calls, key=lambda s: s.duration_ms, default=None)
    start = min((s.start for s in every), default=0.0)
    end = max((s.start + s.duration_ms / 1000 for s in every), default=0.0)
    root = roots[0] if roots else None
    return TraceSummary(
        trace_id=trace_id,
        start=_iso(start),
        duration_ms=round((end - start) * 1000, 3),
        root=f"{root.service}: {root.operation}" if root else "?",
        services=sorted({s.service for s in every}),
        llm_calls=len(calls),
        models=sorted({m for m in (s.model for s in calls) if m}),
        input_tokens=sum(s.integer("gen_ai.usage.input_tokens") or 0 for s in calls),
        output_tokens=sum(s.integer("gen_ai.usage.output_tokens") or 0 for s in calls),
        cost_usd=round(sum(costs), 9) if costs else None,
        slowest_call=f"{slowest.operation}" if slowest else None,
        slowest_call_ms=round(slowest.duration_ms, 3) if slowest else None,
        errors=sum(1 for s in every if s.error),
    )


# ---------------------------------------------------------------- content as a transcript


def _messages(span: Span, key: str) -> list[dict[str, Any]]:
    value = span.tags.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [{"role": "?", "parts": [{"type": "text", "content": value}]}]
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def transcript(span: Span) -> list[dict[str, Any]]:
    """The captured messages of an LLM span, in order: system instructions, input, output.
    Each is ``{"role": ..., "parts": [...]}`` as the GenAI conventions write them."""
    out: list[dict[str, Any]] = []
    system = span.tags.get("gen_ai.system_instructions")
    if system is not None:
        parts = json.loads(system) if isinstance(system, str) and system.startswith("[") else None
        out.append({"role": "system",
                    "parts": parts or [{"type": "text", "content": str(system)}]})  # fmt: skip
    out += _messages(span, "gen_ai.input.messages")
    out += _messages(span, "gen_ai.output.messages")
    return out


def parse_time(text: str, now: float | None = None) -> float:
    """An ISO 8601 time (``2026-12-02T14:00``, ``2026-12-02 14:00:00+01:00``; UTC without a
    zone) or a duration ago (``90m``) -> epoch seconds; ValueError otherwise."""
    try:
        return (time.time() if now is None else now) - parse_duration(text)
    except ValueError:
        pass
    text = text.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not take the Z
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected a time such as 2026-12-02T14:00 (UTC), 2026-12-02T14:00+01:00 or a "
            f"duration ago such as 90m, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def time_range(
    since: float | None, start: float | None, end: float | None, now: float | None = None
) -> tuple[float | None, float | None]:
    """(start, end) in epoch seconds: ``--since`` is the last so many seconds; ``--start`` and
    ``--end`` are times (either may be left open). ValueError for an empty range."""
    if since is not None:
        if start is not None:
            raise ValueError("--since and --start both say where the range starts: give one")
        start = (time.time() if now is None else now) - since
    if start is not None and end is not None and end <= start:
        raise ValueError("the range ends before it starts")
    if start is not None and end is None:
        end = time.time() if now is None else now
    return start, end
