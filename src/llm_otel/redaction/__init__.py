"""Built-in redactors for captured message content.

    import llm_otel
    from llm_otel.redaction import PatternRedactor

    llm_otel.configure(capture_content="SPAN_ONLY", content_redactor=PatternRedactor())

or, with no code, ``LLM_OTEL_CONTENT_REDACTION=default`` (or a comma-separated list of kinds).
A redactor runs on every text value before anything is recorded or truncated; each replacement
is counted in ``llm_otel.redaction.count`` by kind. Kinds: ``email``, ``phone``,
``credit_card`` (Luhn-checked), ``secret`` (API keys and tokens of OpenAI, Anthropic, AWS,
GitHub, Slack, Google; JWTs; bearer tokens; PEM private keys), ``ip_address`` (IPv4, IPv6).
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

from llm_otel._version import __version__
from llm_otel.semconv.redaction import LLM_OTEL_REDACTION_COUNT, LLM_OTEL_REDACTION_KIND

__all__ = ["DEFAULT_KINDS", "KINDS", "PatternRedactor", "find_sensitive"]

_SECRETS = [
    r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
]
_PATTERNS: dict[str, re.Pattern[str]] = {
    "secret": re.compile("|".join(f"(?:{p})" for p in _SECRETS)),
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "credit_card": re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
    "ip_address": re.compile(
        r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
        r"(?![\w.:])"
    ),
    "phone": re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?"
        r"(?:\(\d{1,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}|\d{2,4}[\s.-]\d{3,4}[\s.-]?\d{3,4})(?!\w)"
    ),
}
# The order matters: a token may contain digits that look like a phone or card number.
KINDS = ("secret", "email", "credit_card", "ip_address", "phone")
DEFAULT_KINDS = KINDS


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if i % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _is_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


_VALIDATORS: dict[str, Callable[[str], bool]] = {"credit_card": _luhn, "ip_address": _is_ip}

# Cheap tests that a text may hold a value of a kind (substring searches and simple scans run
# in C); the full patterns, slow on long text, run only when one passes.
_SECRET_MARKS = ("sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AIza", "eyJ",
                 "PRIVATE KEY")  # fmt: skip
_DIGIT_RUN = re.compile(r"\d[\d\s().+-]{5,}\d")  # a card or phone number has one
_IP_HINT = re.compile(r"\d\.\d{1,3}\.\d|:[0-9A-Fa-f]{0,4}:")


def _may_hold(kind: str, text: str) -> bool:
    if kind == "secret":
        return any(mark in text for mark in _SECRET_MARKS) or "bearer" in text.lower()
    if kind == "email":
        return "@" in text
    if kind in ("credit_card", "phone"):
        return _DIGIT_RUN.search(text) is not None
    if kind == "ip_address":
        return _IP_HINT.search(text) is not None
    return True


def find_sensitive(text: str, kinds: Iterable[str] = KINDS) -> dict[str, int]:
    """How many values of each kind ``text`` holds (kinds with none left out), found as the
    redactor finds them: in KINDS order, a value counted once under the first kind it is."""
    found: dict[str, int] = {}
    chosen = set(kinds)
    for kind in KINDS:
        if kind not in chosen:
            continue
        if not _may_hold(kind, text):
            continue
        validate = _VALIDATORS.get(kind)
        pieces: list[str] = []
        last = 0
        for match in _PATTERNS[kind].finditer(text):
            if validate is not None and not validate(match.group(0)):
                continue
            found[kind] = found.get(kind, 0) + 1
            pieces += [text[last : match.start()], " "]
            last = match.end()
        if pieces:
            text = "".join(pieces) + text[last:]
    return found


class PatternRedactor:
    """Replaces sensitive values with ``[KIND]`` markers (``replacement`` may use ``{kind}``)."""

    def __init__(
        self,
        kinds: Iterable[str] = DEFAULT_KINDS,
        *,
        replacement: str = "[{kind}]",
        extra: dict[str, str] | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        chosen = list(kinds)
        unknown = set(chosen) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kinds {sorted(unknown)}; known: {KINDS}")
        self._rules: list[tuple[str, re.Pattern[str]]] = [
            (kind, _PATTERNS[kind]) for kind in KINDS if kind in chosen
        ]
        self._rules += [(kind, re.compile(pattern)) for kind, pattern in (extra or {}).items()]
        self._replacement = replacement
        self._meter_provider = meter_provider
        self._counter: Any = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        counts: dict[str, int] = {}
        for kind, pattern in self._rules:
            text = self._substitute(text, kind, pattern, counts)
        if counts:
            counter = self._counter or self._make_counter()
            for kind, n in counts.items():
                counter.add(n, {LLM_OTEL_REDACTION_KIND: kind})
        return text

    def _substitute(
        self, text: str, kind: str, pattern: re.Pattern[str], counts: dict[str, int]
    ) -> str:
        if pattern is _PATTERNS.get(kind) and not _may_hold(kind, text):
            return text  # a built-in kind this text cannot hold (the user's own always run)
        validate = _VALIDATORS.get(kind)
        marker = self._replacement.format(kind=kind.upper())

        def replace(match: re.Match[str]) -> str:
            if validate is not None and not validate(match.group(0)):
                return match.group(0)  # looked like one, is not (Luhn, address syntax)
            counts[kind] = counts.get(kind, 0) + 1
            return marker

        return pattern.sub(replace, text)

    def _make_counter(self) -> Any:
        with self._lock:
            if self._counter is None:
                meter = metrics.get_meter("llm_otel", __version__, self._meter_provider)
                self._counter = meter.create_counter(
                    LLM_OTEL_REDACTION_COUNT,
                    unit="{redaction}",
                    description="Sensitive values replaced in captured content before recording.",
                )
        return self._counter
