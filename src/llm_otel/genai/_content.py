"""Content capture: whether prompts and responses are recorded, and how they are cut and redacted.

Content is off by default. ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` turns it on, on
the span (``SPAN_ONLY``), as the ``gen_ai.client.inference.operation.details`` log record
(``EVENT_ONLY``) or both (``SPAN_AND_EVENT``); ``true``/``false`` from older packages are read as
``SPAN_ONLY``/``NO_CONTENT``. Every text value passes the redactor first and is then cut to
``max_length`` characters, so a secret can never survive by being split at the cut.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_otel._guard import report_internal_error

__all__ = [
    "CAPTURE_ENV",
    "DEFAULT_MAX_LENGTH",
    "MAX_LENGTH_ENV",
    "REDACTION_ENV",
    "REDACTION_FAILED",
    "ContentMode",
    "ContentPolicy",
    "Redactor",
    "default_policy",
    "policy_from_env",
    "set_default_policy",
]

_logger = logging.getLogger("llm_otel")

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_LENGTH_ENV = "LLM_OTEL_CONTENT_MAX_LENGTH"
REDACTION_ENV = "LLM_OTEL_CONTENT_REDACTION"
DEFAULT_MAX_LENGTH = 16384
REDACTION_FAILED = "[REDACTION FAILED]"
_TRUNCATED = "...[truncated {} chars]"

Redactor = Callable[[str], str]
"""Takes one text value (a message part, tool arguments, ...) and returns what may be recorded."""


class ContentMode(enum.Enum):
    """Where message content is recorded."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @classmethod
    def parse(cls, value: str | bool | int | None) -> ContentMode:
        """Read the environment variable's value (or what a user passes in code: a bool, 1/0);
        unknown values log a warning and mean off."""
        if isinstance(value, bool):
            return cls.SPAN_ONLY if value else cls.NO_CONTENT
        if isinstance(value, int) and value in (0, 1):
            return cls.SPAN_ONLY if value else cls.NO_CONTENT
        if not isinstance(value, str):
            if value is not None:
                _logger.warning(
                    "capture_content=%r is not a bool or one of NO_CONTENT, SPAN_ONLY, "
                    "EVENT_ONLY, SPAN_AND_EVENT; content capture stays off",
                    value,
                )
            return cls.NO_CONTENT
        if not value.strip():
            return cls.NO_CONTENT
        text = value.strip().upper()
        if text in ("TRUE", "1", "YES", "ON"):
            return cls.SPAN_ONLY
        if text in ("FALSE", "0", "NO", "OFF"):
            return cls.NO_CONTENT
        try:
            return cls(text)
        except ValueError:
            _logger.warning(
                "%s=%r is not one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, "
                "SPAN_AND_EVENT, true, false; content capture stays off",
                CAPTURE_ENV,
                value,
            )
            return cls.NO_CONTENT


_ON_SPAN = (ContentMode.SPAN_ONLY, ContentMode.SPAN_AND_EVENT)
_IN_EVENT = (ContentMode.EVENT_ONLY, ContentMode.SPAN_AND_EVENT)


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """The content rules one instrumentation applies to every call."""

    mode: ContentMode = ContentMode.NO_CONTENT
    max_length: int = DEFAULT_MAX_LENGTH
    """Characters kept per text value; 0 keeps everything."""
    redactor: Redactor | None = None
    # Read on every call: worked out once from the mode (plain reads, not properties).
    on_span: bool = dataclasses.field(init=False, repr=False, compare=False)
    """Whether content goes on the span."""
    in_event: bool = dataclasses.field(init=False, repr=False, compare=False)
    """Whether content goes in the operation-details event."""
    enabled: bool = dataclasses.field(init=False, repr=False, compare=False)
    """Whether any content is recorded."""

    def __post_init__(self) -> None:
        mode = self.mode
        object.__setattr__(self, "on_span", mode in _ON_SPAN)
        object.__setattr__(self, "in_event", mode in _IN_EVENT)
        object.__setattr__(self, "enabled", mode is not ContentMode.NO_CONTENT)

    def clean_text(self, text: str) -> str:
        """Redact, then truncate one text value."""
        if self.redactor is not None:
            try:
                text = self.redactor(text)
                if not isinstance(text, str):
                    raise TypeError(f"redactor returned {type(text).__name__}, not str")
            except Exception as exc:
                # Never record what the redactor was meant to hide.
                report_internal_error("content redactor", exc)
                return REDACTION_FAILED
        limit = self.max_length
        if limit and len(text) > limit:
            return text[:limit] + _TRUNCATED.format(len(text) - limit)
        return text

    def clean(self, value: Any) -> Any:
        """Apply :meth:`clean_text` to every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.clean_text(value)
        if isinstance(value, dict):
            # An output message whose finish reason is unknown (a stream closed or abandoned
            # early) has none: left out rather than invented.
            return {
                k: (v if k in _STRUCTURAL_KEYS else self.clean(v))
                for k, v in value.items()
                if v is not None or k != "finish_reason"
            }
        if isinstance(value, (list, tuple)):
            return [self.clean(v) for v in value]
        return value

    def attribute_text(self, value: Any) -> str:
        """A content attribute's value: a text cleaned as it is, anything else serialized."""
        return self.clean_text(value) if isinstance(value, str) else self.serialize(value)

    def serialize(self, value: Any) -> str:
        """Clean a messages/parts value and encode it as the JSON string the conventions use."""
        if self.redactor is None:
            # Without a redactor, cleaning only cuts long texts and drops unknown finish reasons:
            # when the whole JSON is within the limit, no text in it is over it, and a
            # `"finish_reason": null` key (never inside a JSON string, whose quotes are escaped)
            # shows whether there is one to drop. The common case encodes once, without a walk.
            encoded = _ENCODER.encode(value)
            limit = self.max_length
            if (not limit or len(encoded) <= limit) and _NULL_FINISH not in encoded:
                return encoded
        return _ENCODER.encode(self.clean(value))


_NULL_FINISH = '"finish_reason": null'

# Keys whose values are schema structure, not user content: never redacted or cut.
_STRUCTURAL_KEYS = frozenset(
    {"role", "type", "finish_reason", "id", "name", "mime_type", "modality"}
)


def _json_default(value: Any) -> Any:
    """What JSON holds of a value it has no encoding for: an SDK model's fields, bytes as text,
    else the value's repr."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            pass
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return repr(value)


# One encoder for every value (json.dumps with options builds an encoder per call; encode() only
# reads the instance, so threads can share it).
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_default)


def policy_from_env(
    mode: ContentMode | str | bool | None = None,
    max_length: int | str | None = None,
    redactor: Redactor | None = None,
) -> ContentPolicy:
    """Build a policy from explicit values, falling back to the environment."""
    if mode is None:
        resolved = ContentMode.parse(os.environ.get(CAPTURE_ENV))
    elif isinstance(mode, ContentMode):
        resolved = mode
    else:
        resolved = ContentMode.parse(mode)
    if max_length is None:
        raw: Any = os.environ.get(MAX_LENGTH_ENV, "").strip()
        source = MAX_LENGTH_ENV
    else:
        raw, source = max_length, "content_max_length"
    max_length = _max_length(raw, source)
    if redactor is None:
        redactor = _redactor_from_env()
    return ContentPolicy(mode=resolved, max_length=max_length, redactor=redactor)


def _max_length(raw: Any, source: str) -> int:
    """A non-negative integer (or its digits as text); anything else warns once and gives the
    default, like the environment variable."""
    if raw == "" or raw is None:
        return DEFAULT_MAX_LENGTH
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
    if value is None or value < 0:
        _logger.warning(
            "%s=%r is not a non-negative integer; using %d",
            source,
            raw,
            DEFAULT_MAX_LENGTH,
        )
        return DEFAULT_MAX_LENGTH
    return value


def _redactor_from_env() -> Redactor | None:
    """``LLM_OTEL_CONTENT_REDACTION=default`` or a comma-separated list of built-in kinds."""
    raw = os.environ.get(REDACTION_ENV, "").strip()
    if not raw or raw.lower() in ("none", "false", "off"):
        return None
    from llm_otel.redaction import DEFAULT_KINDS, PatternRedactor

    kinds = DEFAULT_KINDS if raw.lower() == "default" else [k.strip() for k in raw.split(",")]
    try:
        return PatternRedactor(kinds)
    except ValueError as exc:
        # Failing closed: content that was meant to be redacted must not be recorded as is.
        _logger.warning("%s=%r: %s; every captured text is withheld", REDACTION_ENV,
                        raw, exc)  # fmt: skip
        return _withhold_everything


def _withhold_everything(text: str) -> str:
    return REDACTION_FAILED


_default: ContentPolicy | None = None


def default_policy() -> ContentPolicy:
    """The content policy of every instrumentation not given one of its own: the environment's
    until :func:`set_default_policy` (``llm_otel.configure()``) says otherwise. Read at record
    time, so settings made after the instrumentation was applied (an app's ``configure()``
    under ``opentelemetry-instrument``, a second ``configure()``) hold for every later call."""
    policy = _default
    if policy is None:
        policy = _default_from_env()
    return policy


def _default_from_env() -> ContentPolicy:
    global _default
    policy = _default = policy_from_env()
    return policy


def set_default_policy(policy: ContentPolicy | None) -> None:
    """Make ``policy`` the default (None: the environment's again, read on next use)."""
    global _default
    _default = policy
