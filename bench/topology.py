"""What the agent -> gateways topology holds on this machine: spans per second through the agent
at rising offered rates, and its memory when the gateways stop answering (the memory limiter's
job). The load comes from telemetrygen (the Collector project's load generator, built once into
~/.cache/llm-otel/bin); the agent and both gateways run our configs (tests/e2e/topology.py) and
the gateways export what they keep (10 %) to the stack's Jaeger.

    scripts/stack.sh start
    python bench/topology.py [--seconds 10] [--rates 2000,5000,10000,20000,0] [--limit-mib 256]

A rate of 0 is telemetrygen unthrottled. Every figure is read from the Collectors' own metrics
(otelcol_receiver_accepted_spans / _refused_spans, otelcol_process_cpu_seconds and _memory_rss).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.topology import Topology, scrape  # noqa: E402

TELEMETRYGEN = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
TELEMETRYGEN_VERSION = "v0.161.0"  # the first release of it the Go proxy here serves after 0.159
WORKERS = 8  # telemetrygen exports synchronously per worker: fewer cannot load the agent


def telemetrygen() -> str:
    cache = Path(os.environ.get("LLM_OTEL_CACHE", Path.home() / ".cache" / "llm-otel")) / "bin"
    binary = cache / f"telemetrygen-{TELEMETRYGEN_VERSION}"
    if not binary.exists():
        print(f"building telemetrygen {TELEMETRYGEN_VERSION} (about a minute) ...", flush=True)
        with tempfile.TemporaryDirectory() as gobin:
            env = {**os.environ, "GOBIN": gobin, "GOSUMDB": "off"}
            subprocess.run(["go", "install", f"{TELEMETRYGEN}@{TELEMETRYGEN_VERSION}"],
                           env=env, check=True)  # fmt: skip
            cache.mkdir(parents=True, exist_ok=True)
            (Path(gobin) / "telemetrygen").rename(binary)
    return str(binary)


def total(address: str, metric: str) -> float:
    return sum(float(value) for _, value in scrape(address, metric, timeout=15))


class Peak:
    """The highest value of a gauge, sampled every 0.2 s in a thread while in the block."""

    def __init__(self, address: str, metric: str) -> None:
        self.address, self.metric, self.value = address, metric, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError):
                self.value = max(self.value, total(self.address, self.metric))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def load(topology: Topology, rate: float, seconds: float, *extra: str,
         reachable: bool = True) -> dict[str, float]:  # fmt: skip
    """Run telemetrygen (WORKERS workers at ``rate`` each, traces of 2 spans) for ``seconds``: what
    the agent accepted and refused and the gateways received, per second; the agent's CPU
    (cores) and peak RSS."""
    agent = topology.agent_telemetry
    gateways = list(topology.gateway_telemetry.values())

    def counters() -> tuple[float, float, float, float]:
        return (total(agent, "otelcol_receiver_accepted_spans"),
                total(agent, "otelcol_receiver_refused_spans"),
                sum(total(g, "otelcol_receiver_accepted_spans") for g in gateways if reachable),
                total(agent, "otelcol_process_cpu_seconds"))  # fmt: skip

    before = counters()
    started = time.monotonic()
    with Peak(agent, "otelcol_process_memory_rss") as rss:
        command = [telemetrygen(), "traces", "--otlp-endpoint", topology.agent_grpc,
                   "--otlp-insecure", "--workers", str(WORKERS), "--rate", str(rate),
                   "--duration", f"{seconds}s", "--child-spans", "1", *extra]  # fmt: skip
        generator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:  # refused, it retries until its own timeout; cut it short
            generator.wait(timeout=seconds + 5)
        except subprocess.TimeoutExpired:
            generator.kill()
            generator.wait()
        time.sleep(2)  # what the agent still had in flight
    elapsed = time.monotonic() - started - 2
    after = counters()
    accepted, refused, delivered, cpu = (b - a for a, b in zip(before, after, strict=True))
    return {"accepted/s": accepted / elapsed, "refused/s": refused / elapsed,
            "at gateways/s": delivered / elapsed, "agent CPU": cpu / (elapsed + 2),
            "agent RSS MiB": rss.value / 2**20}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--rates",
        default="250,500,1000,2000",
        help="telemetrygen --rate per worker (2 workers); 0 = unthrottled",
    )
    parser.add_argument("--limit-mib", type=int, default=256,
                        help="the agent's LLM_OTEL_COLLECTOR_MEMORY_LIMIT_MIB")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        env = {"LLM_OTEL_COLLECTOR_MEMORY_LIMIT_MIB": str(args.limit_mib),
               "GOMEMLIMIT": f"{int(args.limit_mib * 0.8)}MiB"}  # fmt: skip
        topology = Topology(Path(workdir), sampling_percent=10, agent_env=env).start()
        try:
            print(f"agent limit {args.limit_mib} MiB; {os.cpu_count()} CPUs shared by the agent, "
                  "2 gateways, Jaeger and the load generator")  # fmt: skip
            header = ("--rate", "accepted/s", "refused/s", "at gateways/s", "agent CPU",
                      "agent RSS MiB")  # fmt: skip
            print(" | ".join(header))
            for rate in (float(r) for r in args.rates.split(",")):
                row = load(topology, rate, args.seconds)
                offered = f"{rate:.0f}" if rate else "unthrottled"
                cells = [
                    f"{row[h]:.2f}" if h == "agent CPU" else f"{row[h]:.0f}" for h in header[1:]
                ]
                print(" | ".join([offered, *cells]))
            # The gateways stop answering (SIGSTOP: the connections stay open, nothing is read):
            # the agent's queues fill, and the memory limiter must hold its memory. Spans of
            # 1 MB each, one per request (gRPC's 4 MiB message limit), so memory is what runs
            # out first, before the queues' 1000-batch capacity.
            for gateway in topology.gateways.values():
                assert gateway.process is not None
                gateway.process.send_signal(signal.SIGSTOP)
            try:
                row = load(topology, 0, args.seconds * 2, "--size", "1", "--batch-size", "1",
                           reachable=False)  # fmt: skip
            finally:
                for gateway in topology.gateways.values():
                    assert gateway.process is not None
                    gateway.process.send_signal(signal.SIGCONT)
            print(
                f"gateways stopped, 1 MB spans unthrottled for {args.seconds * 2:.0f} s: accepted "
                f"{row['accepted/s']:.0f}/s, refused {row['refused/s']:.0f}/s, agent RSS peak "
                f"{row['agent RSS MiB']:.0f} MiB (limit {args.limit_mib} MiB)"
            )
        finally:
            topology.stop()


if __name__ == "__main__":
    main()
