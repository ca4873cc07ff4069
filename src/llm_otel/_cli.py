"""``llm-otel`` command line: ``llm-otel gpu`` prints live GPU metrics and can export them;
``llm-otel alert-relay`` receives Alertmanager's notifications, logs them and forwards them to chat
webhooks; ``llm-otel traces`` lists and shows LLM traces from Jaeger."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

__all__ = ["main"]

_COLUMNS = ("gpu", "id", "name", "util", "mem used/total", "mem", "power", "energy", "temp",
            "sm clock", "throttle")  # fmt: skip


_DESCRIPTION = (
    "OpenTelemetry for LLM applications. 'llm-otel gpu' prints live GPU metrics and can export "
    "them over OTLP; 'llm-otel alert-relay' receives Alertmanager notifications, logs them and "
    "forwards them to Slack, WeCom, DingTalk, Feishu or any webhook; 'llm-otel traces' lists a "
    "service's LLM traces in Jaeger and shows one as a tree with its calls, tokens, cost and "
    "conversation."
)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (forever) or more, not {text}")
    return value


def _parsed_by(module: str, name: str) -> Callable[[str], Any]:
    """An argparse type from one of our parsers (imported when first used), whose ValueError
    carries the message for the person who typed the argument."""

    def parse(text: str) -> Any:
        try:
            return getattr(importlib.import_module(module), name)(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_target = _parsed_by("llm_otel._alert_relay", "parse_target")
_duration = _parsed_by("llm_otel._traces", "parse_duration")
_time = _parsed_by("llm_otel._traces", "parse_time")


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'NAME: VALUE', not {text!r}")
    return name.strip(), value.strip()


def _listen(text: str) -> str:
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    from llm_otel._version import __version__

    parser = argparse.ArgumentParser(prog="llm-otel", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"llm-otel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    gpu = commands.add_parser("gpu", help="print live NVML GPU metrics (and export them)")
    gpu.add_argument("--interval", type=_positive, default=2.0, help="seconds between refreshes")
    gpu.add_argument(
        "--count", type=_count, default=0, help="refreshes before exiting (0: forever)"
    )
    gpu.add_argument(
        "--export",
        action="store_true",
        help="also export over OTLP as configured by the OTEL_* variables (a GPU-host sidecar)",
    )
    gpu.add_argument("--quiet", action="store_true", help="no table (only with --export)")
    relay = commands.add_parser(
        "alert-relay",
        help="receive Alertmanager webhooks, log them, forward them to chat webhooks",
        description="Receives Alertmanager's webhook notifications, appends each to a JSON-lines "
        "log, prints one line per notification and forwards a readable message to every --to "
        "target in its own format; answers 502 when a target fails, so Alertmanager retries. "
        "Signed robots read their secret from LLM_OTEL_RELAY_DINGTALK_SECRET or "
        "LLM_OTEL_RELAY_FEISHU_SECRET.",
    )
    relay.add_argument("--listen", type=_listen, default="127.0.0.1:9095", help="HOST:PORT")
    relay.add_argument(
        "--to",
        type=_target,
        action="append",
        default=[],
        metavar="KIND=URL",
        help="forward to URL; KIND: webhook (Alertmanager's JSON as is), slack, wecom, dingtalk, "
        "feishu (repeatable)",
    )
    relay.add_argument("--log", help="append every notification to this JSON-lines file")
    relay.add_argument(
        "--max-log-bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="rotate the log to LOG.1 at this size (default 10 MiB)",
    )
    traces = commands.add_parser(
        "traces",
        help="list a service's LLM traces in Jaeger, or show one",
        description="Lists the recent traces of a service in Jaeger (one line each: root span, "
        "LLM calls, tokens, estimated cost, slowest call, errors), or shows one trace as a tree "
        "of spans with per-call model, duration, time to first chunk, tokens, cost, finish "
        "reasons and errors, its totals, and the captured messages as a transcript. Exit codes: "
        "0 found, 1 nothing matched, 2 bad arguments, 3 Jaeger unreachable or failing.",
    )
    traces.add_argument("trace_id", nargs="?", help="show this trace (an id from the list)")
    traces.add_argument("--service", "-s", help="list this service's traces")
    traces.add_argument("--model", help="only traces with a call to this model")
    traces.add_argument("--provider", help="only traces with a call to this provider")
    traces.add_argument("--errors", action="store_true", help="only traces with an error")
    traces.add_argument("--min-duration", type=_duration, help="e.g. 2s: traces at least this long")
    traces.add_argument("--since", type=_duration, default=None, help="e.g. 1h: this recent")
    traces.add_argument(
        "--start",
        type=_time,
        help="traces from this time (2026-12-02T14:00, UTC if no zone; or 2h)",
    )
    traces.add_argument("--end", type=_time, help="traces until this time (same forms)")
    traces.add_argument("--conversation", help="only this gen_ai.conversation.id")
    traces.add_argument("--user", help="only this user.id")
    traces.add_argument("--limit", type=_count, default=20, help="at most this many (default 20)")
    traces.add_argument(
        "--jaeger",
        default=os.environ.get("LLM_OTEL_JAEGER_URL", "http://127.0.0.1:16686"),
        help="Jaeger's query URL (default $LLM_OTEL_JAEGER_URL or http://127.0.0.1:16686)",
    )
    traces.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="send this header to Jaeger, e.g. 'Authorization: Bearer ...' (repeatable)",
    )
    traces.add_argument("--ca-file", help="trust this CA bundle for an https Jaeger")
    traces.add_argument("--insecure", action="store_true", help="do not verify Jaeger's TLS")
    traces.add_argument("--no-content", action="store_true", help="do not print messages")
    traces.add_argument("--json", action="store_true", help="JSON for scripts")
    args = parser.parse_args(argv)
    if args.command == "traces":
        if not args.trace_id and not args.service:
            traces.error("give a TRACE_ID to show, or --service NAME to list")
        from llm_otel._traces import time_range

        try:
            args.start, args.end = time_range(args.since, args.start, args.end)
        except ValueError as exc:
            traces.error(str(exc))
        from llm_otel._traces_cli import run_traces

        return run_traces(args)
    if args.command == "alert-relay":
        from llm_otel._alert_relay import run

        if args.max_log_bytes < 1024:
            relay.error("--max-log-bytes must be at least 1024")
        return run(args.listen, args.to, args.log, args.max_log_bytes)
    if args.quiet and not args.export:
        gpu.error("--quiet prints nothing and, without --export, sends nothing: add --export")
    return _gpu(args.interval, args.count, args.export, args.quiet)


def _gpu(interval: float, count: int, export: bool, quiet: bool) -> int:
    from llm_otel._configure import _ExportSettings, with_host_name
    from llm_otel.gpu import GPUMetrics

    table = InMemoryMetricReader()
    readers: list[Any] = [table]
    if export:
        exporter = _ExportSettings(None, None, None).exporter("metrics")
        if exporter is not None:
            readers.append(
                PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)
            )
    service = os.environ.get("OTEL_SERVICE_NAME") or "llm-otel-gpu"
    provider = MeterProvider(
        resource=with_host_name(Resource.create({SERVICE_NAME: service})), metric_readers=readers
    )
    gpus = GPUMetrics(provider)
    if gpus.session is None:
        provider.shutdown()
        return 1
    refreshes = 0
    try:
        while True:
            rows = _rows(table)
            if not quiet:
                _print_table(rows, clear=sys.stdout.isatty() and count != 1)
            refreshes += 1
            if count and refreshes >= count:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        provider.shutdown()
        gpus.shutdown()
    return 0


def _rows(reader: InMemoryMetricReader) -> list[dict[str, str]]:
    values: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    identity: dict[str, dict[str, Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    gpu_id = str(attrs.get("hw.id"))
                    identity.setdefault(gpu_id, attrs)
                    detail = str(
                        attrs.get("hw.gpu.task")
                        or attrs.get("llm_otel.gpu.clock.domain")
                        or attrs.get("llm_otel.gpu.throttle.reason")
                        or ""
                    )
                    values[gpu_id][(metric.name, detail)] = float(point.value)  # type: ignore[union-attr]
    rows = []
    for gpu_id, v in values.items():
        attrs = identity[gpu_id]

        def get(name: str, detail: str = "", v: dict[tuple[str, str], float] = v) -> float | None:
            return v.get((name, detail))

        used, total = get("hw.gpu.memory.usage"), get("hw.gpu.memory.limit")
        throttled = [d for (n, d), x in v.items() if n == "llm_otel.gpu.clock.throttled" and x]
        rows.append({
            "gpu": str(attrs.get("llm_otel.gpu.index", "?")),
            "id": gpu_id,
            "name": str(attrs.get("hw.name", "")),
            "util": _fmt(get("hw.gpu.utilization", "general"), 100, "%"),
            "mem used/total": (
                f"{used / 2**30:.1f}/{total / 2**30:.1f} GiB"
                if used is not None and total is not None else "-"
            ),
            "mem": _fmt(get("hw.gpu.memory.utilization"), 100, "%"),
            "power": _fmt(get("hw.power"), 1, " W"),
            "energy": _fmt(get("hw.energy"), 1e-3, " kJ"),
            "temp": _fmt(get("llm_otel.gpu.temperature"), 1, " °C"),
            "sm clock": _fmt(get("llm_otel.gpu.clock.frequency", "sm"), 1e-6, " MHz"),
            "throttle": ",".join(throttled) or "-",
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["gpu"], r["id"]))


def _fmt(value: float | None, scale: float, unit: str) -> str:
    return "-" if value is None else f"{value * scale:.0f}{unit}"


def _print_table(rows: list[dict[str, str]], clear: bool) -> None:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in _COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in _COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in _COLUMNS) for r in rows]
    if not rows:
        lines.append("(no GPU)")
    print(("\033[2J\033[H" if clear else "") + "\n".join(lines), flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
