"""The built-in evaluators: cheap, offline checks whose explanations never quote content."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Literal

from llm_otel.quality._call import EvaluatedCall
from llm_otel.quality._evaluator import Detection, EvaluationResult, Evaluator
from llm_otel.quality._schema import schema_problem
from llm_otel.redaction import KINDS, find_sensitive

__all__ = [
    "BUILTIN",
    "JsonOutput",
    "OutputComplete",
    "PromptInjection",
    "Refusal",
    "SensitiveData",
]

# Bounded work per call: evaluators look at the first this many characters of each text.
MAX_TEXT = 100_000


class _Builtin(Evaluator):
    quotes_content = False


class SensitiveData(_Builtin):
    """Sensitive values (the redactor's kinds: e-mail, phone, card, secret, IP address) in what
    was sent and what came back. Score 1.0 when none, 0.0 otherwise; one detection per kind
    and place."""

    name = "sensitive_data"

    def __init__(self, kinds: Iterable[str] = KINDS,
                 targets: Iterable[str] = ("input", "output")) -> None:  # fmt: skip
        self.kinds = tuple(kinds)
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; known: {KINDS}")
        self.targets = tuple(targets)
        if set(self.targets) - {"input", "output"}:
            raise ValueError(f"targets are 'input' and/or 'output', not {self.targets}")

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        found: list[Detection] = []
        texts = {"input": call.input_text, "output": call.output_text}
        for target in self.targets:
            text = texts[target][:MAX_TEXT]
            if text:
                found += [Detection(kind, target) for kind in find_sensitive(text, self.kinds)]  # type: ignore[arg-type]
        if not found:
            return EvaluationResult(score=1.0, label="clean")
        where = ", ".join(f"{d.kind} in {d.target}" for d in found)
        return EvaluationResult(score=0.0, label="detected", explanation=f"found {where}",
                                detections=tuple(found))  # fmt: skip


# Heuristics for text that tries to override the app's instructions (injection) or to talk
# the model out of its rules (jailbreak). Phrases, not words: "ignore" alone is ordinary.
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(?:previous|prior|above|"
    r"earlier|preceding|all|any|the|your|system)\b[^.\n]{0,20}?\b(?:instructions?|prompts?|"
    r"rules|directions|guidelines)\b"
    r"|\b(?:reveal|print|show|repeat|output|leak|tell me)\b[^.\n]{0,30}?\b(?:your|the)\s+"
    r"(?:system\s+prompt|initial\s+instructions|hidden\s+instructions|instructions\s+above)"
    r"|<\|im_start\|>|<\|system\|>|\[/?INST\]|^\s*#{2,}\s*(?:system|instruction)s?\b"
    r"|\bnew\s+instructions?\s*:|\bend\s+of\s+(?:system\s+)?prompt\b",
    re.IGNORECASE | re.MULTILINE,
)
_JAILBREAK = re.compile(
    r"\bDAN\b|\bdo\s+anything\s+now\b|\bjailbr(?:ea|o)k"
    r"|\bdeveloper\s+mode\b|\bgod\s+mode\b"
    r"|\b(?:pretend|act|behave|roleplay|role-play)\b[^.\n]{0,60}?\b(?:no|without|free\s+of|"
    r"ignor\w*)\s+(?:any\s+)?(?:restrictions?|limits?|limitations|rules|filters?|guidelines|"
    r"censorship|ethics)"
    r"|\byou\s+are\s+(?:no\s+longer|not)\s+(?:bound|restricted|limited)\b",
    re.IGNORECASE,
)


# Every phrasing above contains one of these (checked in C before the slow patterns run).
_INJECTION_WORDS = ("instruction", "prompt", "rules", "direction", "guideline", "<|", "inst]")
_JAILBREAK_WORDS = ("do anything", "jailbr", "developer mode", "god mode", "restriction", "limit",
                    "rules", "filter", "guideline", "censor", "ethics", "you are no")  # fmt: skip


class PromptInjection(_Builtin):
    """Prompt-injection and jailbreak phrasing in the input messages (user and tool text, where
    untrusted text comes in; not the system instructions). Score 1.0 none, 0.5 one kind, 0.0
    both (like every built-in's: 1.0 is good); a heuristic to count and alert on, not a filter."""

    name = "prompt_injection"

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        text = call.input_text[:MAX_TEXT]
        if not text:
            return None
        lowered = text.lower()
        found = tuple(
            Detection(kind, "input")
            for kind, words, pattern in (("prompt_injection", _INJECTION_WORDS, _INJECTION),
                                         ("jailbreak", _JAILBREAK_WORDS, _JAILBREAK))
            if (any(w in lowered for w in words) or (kind == "jailbreak" and "DAN" in text))
            and pattern.search(text)
        )  # fmt: skip
        if not found:
            return EvaluationResult(score=1.0, label="clean")
        kinds = " and ".join(d.kind.replace("_", " ") for d in found)
        explanation = f"{kinds} phrasing in the input"
        return EvaluationResult(score=1.0 - len(found) / 2, label="suspected",
                                explanation=explanation, detections=found)  # fmt: skip


_REFUSAL = re.compile(
    r"^\W*(?:I'?m|I\s+am)\s+(?:sorry|afraid)\b[^.\n]{0,40}?\b(?:can(?:no|')t|cannot|unable|"
    r"won'?t|not\s+able)"
    r"|^\W*I\s+(?:can(?:no|')t|cannot|won'?t|am\s+unable\s+to|'m\s+unable\s+to|am\s+not\s+able"
    r"\s+to|must\s+decline\s+to)\s+(?:help|assist|provide|comply|do\s+that|answer|fulfil)"
    r"(?!\s+but\b)"
    r"|^\W*(?:sorry|unfortunately),?\s+(?:but\s+)?I\s+(?:can(?:no|')t|cannot|won'?t|am\s+unable)"
    r"|\bas\s+an\s+AI(?:\s+language\s+model)?,?\s+I\s+(?:can(?:no|')t|cannot|am\s+not\s+able|"
    r"don'?t\s+have\s+the\s+ability)",
    re.IGNORECASE,
)


class Refusal(_Builtin):
    """The model declined: its answer opens with a refusal, or the provider stopped it with
    ``content_filter``. Score 0.0 refused, 1.0 answered."""

    name = "refusal"

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        if call.error_type is not None:
            return None
        if "content_filter" in call.finish_reasons:
            return EvaluationResult(score=0.0, label="refused", explanation="content filter",
                                    detections=(Detection("refusal", "output"),))  # fmt: skip
        text = call.output_text
        if not text:
            return None
        # The opening of the answer (and of each paragraph: "Sure... \n\nI can't ...").
        if any(_REFUSAL.search(p[:300]) for p in text[:2000].split("\n\n")):
            return EvaluationResult(score=0.0, label="refused",
                                    detections=(Detection("refusal", "output"),))  # fmt: skip
        return EvaluationResult(score=1.0, label="answered")


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


class JsonOutput(_Builtin):
    """For calls that asked for JSON (``gen_ai.output.type=json``) or a JSON schema: is the
    answer valid JSON (a fenced ```json block is accepted), and does it follow the schema?
    Score 1.0 valid, 0.0 not; detections ``invalid_json`` / ``schema_mismatch``."""

    name = "json_output"

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        schema = call.output_schema
        if call.error_type is not None or (call.output_type != "json" and schema is None):
            return None
        if "tool_calls" in call.finish_reasons or "length" in call.finish_reasons:
            return None  # no answer yet (a tool call), or cut short: output_complete says so
        text = call.output_text
        fenced = _FENCE.match(text)
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except ValueError:
            return self._failed("invalid_json", "the output is not valid JSON")
        problem = schema_problem(value, schema) if schema is not None else None
        if problem:
            return self._failed("schema_mismatch", problem)
        return EvaluationResult(score=1.0, label="valid")

    @staticmethod
    def _failed(kind: str, explanation: str) -> EvaluationResult:
        return EvaluationResult(score=0.0, label=kind, explanation=explanation,
                                detections=(Detection(kind, "output"),))  # fmt: skip


class OutputComplete(_Builtin):
    """Was the answer cut short (finish reason ``length``) or empty (no text and no tool call)?
    Score 1.0 complete, 0.0 truncated or empty; detections ``truncated`` / ``empty_output``."""

    name = "output_complete"

    def evaluate(self, call: EvaluatedCall) -> EvaluationResult | None:
        if call.error_type is not None or call.operation not in ("chat", "text_completion"):
            return None
        kind: Literal["truncated", "empty_output"] | None = None
        if "length" in call.finish_reasons:
            kind = "truncated"
        elif not call.output_text.strip() and not _has_tool_call(call):
            kind = "empty_output"
        if kind is None:
            return EvaluationResult(score=1.0, label="complete")
        return EvaluationResult(score=0.0, label=kind,
                                detections=(Detection(kind, "output"),))  # fmt: skip


def _has_tool_call(call: EvaluatedCall) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "tool_call"
        for message in call.output_messages
        for part in message.get("parts") or ()
    )


BUILTIN: dict[str, type[Evaluator]] = {
    e.name: e for e in (SensitiveData, PromptInjection, Refusal, JsonOutput, OutputComplete)
}
"""The built-in evaluators by name (what ``LLM_OTEL_EVALUATORS`` takes)."""
