"""A minimal OTLP/HTTP (protobuf) receiver on 127.0.0.1: what an exporter really sent.

Decodes ``/v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with the OTLP protobuf definitions
and keeps flat views: spans as dicts (name, kind, ids, attributes), metric names with their
data points, log records. ``python -m tests.servers.otlp_receiver PORT`` prints what arrives
(the demo).
"""

from __future__ import annotations

import gzip
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.servers.loopback import Handler

__all__ = ["OTLPReceiver", "attributes"]

_MESSAGES = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}


def _value(any_value: dict[str, Any]) -> Any:
    if "arrayValue" in any_value:
        return [_value(v) for v in any_value["arrayValue"].get("values", [])]
    if "intValue" in any_value:
        return int(any_value["intValue"])
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in any_value:
            return any_value[key]
    return any_value


def attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    """OTLP key/value list as a plain dict."""
    return {item["key"]: _value(item.get("value", {})) for item in items or ()}


class OTLPReceiver:
    """Collects OTLP/HTTP exports; ``on_spans`` etc. are optional print hooks for the demo."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> None:
        self.spans: list[dict[str, Any]] = []
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        self.logs: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self._echo = echo
        self._lock = threading.Lock()
        receiver = self

        class Receiver(Handler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                message_type = _MESSAGES.get(self.path)
                if message_type is None:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                message = message_type()
                message.ParseFromString(body)
                receiver._ingest(self.path, MessageToDict(message))
                reply = message_type.__name__.replace("Request", "Response")
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()
                del reply

        self._server = ThreadingHTTPServer((host, port), Receiver)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _ingest(self, path: str, data: dict[str, Any]) -> None:
        with self._lock:
            if path == "/v1/traces":
                for rs in data.get("resourceSpans", []):
                    self.resources.append(attributes(rs.get("resource", {}).get("attributes")))
                    for ss in rs.get("scopeSpans", []):
                        for span in ss.get("spans", []):
                            flat = {
                                "name": span["name"],
                                "kind": span.get("kind"),
                                "trace_id": span.get("traceId"),
                                "span_id": span.get("spanId"),
                                "parent_span_id": span.get("parentSpanId"),
                                "status": span.get("status", {}),
                                "scope": ss.get("scope", {}).get("name"),
                                "attributes": attributes(span.get("attributes")),
                            }
                            self.spans.append(flat)
                            if self._echo:
                                _print_span(flat)
            elif path == "/v1/metrics":
                for rm in data.get("resourceMetrics", []):
                    for sm in rm.get("scopeMetrics", []):
                        for metric in sm.get("metrics", []):
                            kind = next(
                                k
                                for k in metric
                                if k not in ("name", "unit", "description", "metadata")
                            )
                            points = metric[kind].get("dataPoints", [])
                            for point in points:
                                point["attributes"] = attributes(point.get("attributes"))
                                point["unit"] = metric.get("unit")
                            self.metrics.setdefault(metric["name"], []).extend(points)
                            if self._echo:
                                _print_metric(metric["name"], metric.get("unit"), points)
            else:
                for rl in data.get("resourceLogs", []):
                    for sl in rl.get("scopeLogs", []):
                        for record in sl.get("logRecords", []):
                            record["attributes"] = attributes(record.get("attributes"))
                            self.logs.append(record)


def _print_span(span: dict[str, Any]) -> None:
    print(f"\nspan  {span['name']}  ({span['kind']}, status={span['status'] or 'UNSET'})")
    for key, value in sorted(span["attributes"].items()):
        print(f"      {key} = {value}")


def _print_metric(name: str, unit: str | None, points: list[dict[str, Any]]) -> None:
    for point in points:
        labels = ", ".join(
            f"{k}={v}"
            for k, v in sorted(point["attributes"].items())
            if k.startswith(("gen_ai.token", "gen_ai.request.model", "error"))
        )
        print(
            f"metric {name} [{unit}] count={point.get('count')} sum={point.get('sum')} {{{labels}}}"
        )


if __name__ == "__main__":  # pragma: no cover - the demo's printer
    import sys
    import time

    receiver = OTLPReceiver(port=int(sys.argv[1]) if len(sys.argv) > 1 else 4318, echo=True)
    receiver.start()
    print(f"OTLP/HTTP receiver on {receiver.endpoint}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()
