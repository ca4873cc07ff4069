"""The Python constants in llm_otel.semconv and the semconv/ registry name the same things."""

from __future__ import annotations

import re
from pathlib import Path

from llm_otel.semconv import cost, gpu, manual

REGISTRY = Path(__file__).resolve().parent.parent / "semconv" / "model"


def _registry_names() -> set[str]:
    names: set[str] = set()
    for path in REGISTRY.glob("*.yaml"):
        text = path.read_text()
        names |= set(re.findall(r"^\s+- id: (llm_otel\.[\w.]+)\s*$", text, re.M))
        names |= set(re.findall(r"^\s+metric_name: ([\w.]+)\s*$", text, re.M))
    return names


def test_every_constant_is_in_the_registry_and_back() -> None:
    constants = {getattr(m, name) for m in (cost, gpu, manual) for name in m.__all__}
    assert constants == _registry_names()


def test_our_names_never_use_official_namespaces() -> None:
    for name in _registry_names():
        assert name.startswith("llm_otel."), name
