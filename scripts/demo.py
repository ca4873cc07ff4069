"""The demo: an unmodified OpenAI app under ``opentelemetry-instrument``, its spans and metrics
printed as an OTLP receiver gets them.

Starts the OpenAI-compatible test server and an OTLP/HTTP receiver on loopback, runs
examples/chat_app.py with zero code changes, and prints every span (with its gen_ai.*
attributes) and metric point that arrived. (The Collector/Jaeger/Prometheus stack replaces the
receiver once collector-config/ lands.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.openai_server import OpenAITestServer  # noqa: E402
from tests.otlp_receiver import OTLPReceiver  # noqa: E402


def main() -> int:
    server = OpenAITestServer().start()
    receiver = OTLPReceiver(echo=True).start()
    print(f"OpenAI-compatible test server: {server.base_url}")
    print(f"OTLP/HTTP receiver:            {receiver.endpoint}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="demo-key",
        OTEL_SERVICE_NAME="llm-otel-demo",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=os.environ.get(
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY"
        ),
    )
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    command = [instrument or "opentelemetry-instrument", sys.executable, "examples/chat_app.py"]
    print("\n$ " + " ".join(["opentelemetry-instrument", "python", "examples/chat_app.py"]))
    print("--- the app's own output ---")
    result = subprocess.run(command, env=env, cwd=ROOT, check=False)
    time.sleep(1.5)  # the final metric export happens at the app's exit
    print("\n--- summary ---")
    print(f"{len(receiver.spans)} spans, {len(receiver.metrics)} metrics received")
    for name, points in sorted(receiver.metrics.items()):
        print(f"  {name}: {len(points)} points")
    server.stop()
    receiver.stop()
    return result.returncode or (0 if len(receiver.spans) == 6 else 1)


if __name__ == "__main__":
    sys.exit(main())
