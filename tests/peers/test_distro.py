"""opentelemetry-distro installed next to llm-otel (both register a distro and a configurator).

With the quickstart's choice (``OTEL_PYTHON_DISTRO=llm_otel``, ``OTEL_PYTHON_CONFIGURATOR=
llm_otel``) a start prints nothing about the configurator that was not chosen; the loader's
other messages, and its notice when the other configurator is the chosen one, stay.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.conftest import installed_command

APP = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__module__)"


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    environ.update(
        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        LLM_OTEL_GPU_METRICS="false", **env,
    )  # fmt: skip
    return subprocess.run(
        [installed_command("opentelemetry-instrument"), sys.executable, "-c", APP],
        env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_opentelemetry_distro_is_installed_here() -> None:
    pytest.importorskip("opentelemetry.distro")


def test_choosing_llm_otel_prints_nothing_about_the_other_configurator() -> None:
    result = _start(OTEL_PYTHON_DISTRO="llm_otel", OTEL_PYTHON_CONFIGURATOR="llm_otel")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "opentelemetry.sdk.trace"  # a configurator did run
    assert "Configuration of" not in result.stderr
    assert result.stderr == ""


def test_choosing_the_other_configurator_is_still_reported() -> None:
    result = _start(OTEL_PYTHON_DISTRO="llm_otel", OTEL_PYTHON_CONFIGURATOR="configurator")
    assert result.returncode == 0, result.stderr
    assert "Configuration of llm_otel not loaded" in result.stderr
