"""What a new user writes in the first hour, accepted or rejected clearly (issue: hardening)."""

from __future__ import annotations

from typing import Any

import pytest

import llm_otel
from llm_otel.genai import ContentMode, policy_from_env
from tests.conftest import Telemetry


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (True, ContentMode.SPAN_ONLY),
        (False, ContentMode.NO_CONTENT),
        (1, ContentMode.SPAN_ONLY),
        (0, ContentMode.NO_CONTENT),
        ("span_and_event", ContentMode.SPAN_AND_EVENT),
    ],
)
def test_capture_content_accepts_bools(value: Any, mode: ContentMode) -> None:
    assert policy_from_env(value).mode is mode


def test_decorators_without_a_name_use_the_function_name(telemetry: Telemetry) -> None:
    @llm_otel.tool()
    def lookup(order_id: str) -> str:
        return order_id

    @llm_otel.tool(description="Looks up an order")
    def described(order_id: str) -> str:
        return order_id

    @llm_otel.workflow()
    def flow() -> str:
        return lookup("a") + described("b")

    @llm_otel.task()
    def step() -> None:
        pass

    @llm_otel.agent(model="gpt-4o-mini")
    def helper() -> None:
        step()

    assert flow() == "ab"
    helper()
    names = sorted(s.name for s in telemetry.spans())
    prefix = "test_decorators_without_a_name_use_the_function_name.<locals>."
    assert names == sorted(
        [
            f"execute_tool {prefix}lookup",
            f"execute_tool {prefix}described",
            f"invoke_workflow {prefix}flow",
            f"task {prefix}step",
            f"invoke_agent {prefix}helper",
        ]
    )
    described_span = next(s for s in telemetry.spans() if s.name.endswith("described"))
    assert described_span.attributes["gen_ai.tool.description"] == "Looks up an order"


def test_a_with_block_without_a_name_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="needs a name"), llm_otel.workflow():
        pass
    with pytest.raises(TypeError, match="takes a name"):
        llm_otel.tool(42)  # type: ignore[call-overload]


@pytest.mark.parametrize("bad", [-5, "banana", True, 2.5])
def test_a_bad_content_max_length_warns_once_and_keeps_the_default(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_otel.genai._content import DEFAULT_MAX_LENGTH

    with caplog.at_level("WARNING", logger="llm_otel"):
        policy = policy_from_env("SPAN_ONLY", bad)
    assert policy.max_length == DEFAULT_MAX_LENGTH
    assert len(caplog.records) == 1 and "content_max_length" in caplog.records[0].getMessage()
    assert policy.clean_text("x" * 10) == "x" * 10


def test_content_max_length_accepts_digits_as_text() -> None:
    assert policy_from_env("SPAN_ONLY", "20").max_length == 20


def _cli(*args: str) -> Any:
    import subprocess

    from tests.conftest import installed_command

    return subprocess.run(
        [installed_command("llm-otel"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_help_is_plain_text_and_version_is_there() -> None:
    from llm_otel._version import __version__

    shown = _cli("--help")
    assert shown.returncode == 0 and "``" not in shown.stdout and "llm-otel gpu" in shown.stdout
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"llm-otel {__version__}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["gpu", "--quiet"], "add --export"),
        (["gpu", "--interval", "-1"], "above 0"),
        (["gpu", "--interval", "0"], "above 0"),
        (["gpu", "--count", "-2"], "0 (forever) or more"),
    ],
)
def test_cli_rejects_what_would_run_forever_or_spin(args: list[str], says: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2
    assert says in result.stderr


def test_warnings_do_not_repeat_the_logger_name(caplog: pytest.LogCaptureFixture) -> None:
    """The logger is "llm_otel": a log format with %(name)s already says so."""
    with caplog.at_level("WARNING", logger="llm_otel"):
        policy_from_env("banana")
        policy_from_env("SPAN_ONLY", -1)
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert record.name == "llm_otel"
        assert not record.getMessage().startswith("llm_otel")


def test_instrument_accepts_library_names_and_warns_on_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llm_otel._configure import _instrument_names

    assert _instrument_names("openai", None) == {"llm_otel_openai"}
    assert _instrument_names(["google-genai", "llm_otel_groq"], None) == {
        "llm_otel_google_genai",
        "llm_otel_groq",
    }
    with caplog.at_level("WARNING", logger="llm_otel"):
        assert _instrument_names(["opnai"], None) == set()
    (record,) = caplog.records
    assert "'opnai'" in record.getMessage() and "openai" in record.getMessage()
