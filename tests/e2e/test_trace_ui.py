"""A trace view in a browser: the stack's Zipkin (its server bundles the web UI, which Jaeger's Go
module does not) shows an LLM call's trace, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import eventually
from tests.servers.openai_server import OpenAITestServer

pytestmark = pytest.mark.e2e
ZIPKIN = "http://127.0.0.1:9411"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def zipkin_traces(service: str) -> list[list[dict[str, Any]]]:
    query = urllib.parse.urlencode({"serviceName": service, "limit": 10})
    with urllib.request.urlopen(f"{ZIPKIN}/api/v2/traces?{query}", timeout=10) as answer:
        return list(json.loads(answer.read()))


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of an 8-bit PNG: enough to tell a page from a blank."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (scripts/test.sh installs it)")
def test_zipkin_shows_the_llm_trace_in_a_browser(stack: None, tmp_path: Path) -> None:
    llm = OpenAITestServer().start()
    service = f"e2e-ui-{uuid.uuid4().hex[:8]}"
    script = textwrap.dedent(f"""
        import openai, llm_otel
        config = llm_otel.configure(service_name={service!r}, endpoint="http://127.0.0.1:4318",
                                    gpu=False)
        client = openai.OpenAI(base_url={llm.base_url!r}, api_key="k", max_retries=0)
        with llm_otel.workflow("answer-question"):
            client.chat.completions.create(model="gpt-4o-mini",
                messages=[{{"role": "user", "content": "hi"}}])
        config.shutdown()
    """)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        llm.stop()
    (trace,) = eventually(lambda: zipkin_traces(service), 60, "the trace in Zipkin")
    names = {span.get("name") for span in trace}
    assert names == {"answer-question", "chat gpt-4o-mini"}
    call = next(s for s in trace if s["name"] == "chat gpt-4o-mini")
    assert call["tags"]["gen_ai.usage.input_tokens"] == "12"
    url = f"{ZIPKIN}/zipkin/traces/{call['traceId']}"
    browser = [_chromium() or "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
               "--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=15000"]  # fmt: skip
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert "chat gpt-4o-mini" in dom and service in dom  # rendered by the UI's JavaScript
    shot = tmp_path / "trace.png"
    subprocess.run([*browser, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)  # fmt: skip
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1400, 900)
    assert len(set(pixels[i : i + 3] for i in range(0, len(pixels), 997))) > 20  # not a blank page
    saved = Path(os.environ.get("LLM_OTEL_SCREENSHOTS", tmp_path))
    saved.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, saved / "zipkin-llm-trace.png")
