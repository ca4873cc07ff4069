"""NVML GPU metrics against a fake NVML: values, units, identity, MIG, unsupported fields,
errors mid-collection, lost GPUs, no NVML at all; and the three ways to turn them on."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llm_otel.gpu import GPUInstrumentor, GPUMetrics, _nvml
from tests.conftest import installed_command
from tests.fakes.fake_nvml import (
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_UNKNOWN,
    FakeGPU,
    FakeNVML,
    two_gpus_one_with_mig,
)
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYNVML = str(ROOT / "tests" / "fakes" / "fakenvml")
GIB = 1024**3


class Collected:
    def __init__(self, nvml: FakeNVML) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.gpus = GPUMetrics(self.provider, nvml=nvml)

    def collect(self) -> dict[str, Any]:
        """{metric name: (unit, [(value, attributes), ...])} from one collection."""
        out: dict[str, Any] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points = [(p.value, dict(p.attributes)) for p in metric.data.data_points]
                    out[metric.name] = (metric.unit, points)
        return out


def _value(points: list[Any], **match: Any) -> Any:
    found = [v for v, a in points if all(a.get(k) == x for k, x in match.items())]
    assert len(found) == 1, (match, points)
    return found[0]


def test_metrics_names_units_and_values() -> None:
    c = Collected(two_gpus_one_with_mig())
    m = c.collect()
    unit = {name: u for name, (u, _) in m.items()}
    assert unit == {
        "hw.gpu.utilization": "1",
        "hw.gpu.memory.usage": "By",
        "hw.gpu.memory.limit": "By",
        "hw.gpu.memory.utilization": "1",
        "hw.power": "W",
        "hw.energy": "J",
        "hw.errors": "{error}",
        "hw.status": "1",
        "hw.gpu.io": "By",
        "llm_otel.gpu.temperature": "Cel",
        "llm_otel.gpu.clock.frequency": "Hz",
        "llm_otel.gpu.clock.throttled": "1",
        "llm_otel.gpu.fan.speed_ratio": "1",
        "llm_otel.gpu.process.memory.usage": "By",
    }
    a = {"hw.id": "GPU-aaaa"}
    assert _value(m["hw.gpu.utilization"][1], **a, **{"hw.gpu.task": "general"}) == 0.75
    assert _value(m["hw.gpu.utilization"][1], **a, **{"hw.gpu.task": "encoder"}) == 0.10
    assert _value(m["hw.gpu.utilization"][1], **a, **{"hw.gpu.task": "decoder"}) == 0.05
    assert _value(m["hw.gpu.memory.usage"][1], **a) == 20 * GIB
    assert _value(m["hw.gpu.memory.limit"][1], **a) == 80 * GIB
    assert _value(m["hw.gpu.memory.utilization"][1], **a) == 0.25
    assert _value(m["hw.power"][1], **a, **{"hw.type": "gpu"}) == 350.0
    assert _value(m["hw.energy"][1], **a) == 1000.0
    assert _value(m["hw.errors"][1], **a, **{"error.type": "corrected"}) == 2
    assert _value(m["hw.errors"][1], **a, **{"error.type": "uncorrected"}) == 0
    assert _value(m["hw.status"][1], **a, **{"hw.state": "ok"}) == 1
    assert _value(m["hw.status"][1], **a, **{"hw.state": "degraded"}) == 0
    assert _value(m["hw.gpu.io"][1], **a, **{"network.io.direction": "receive"}) == 1000
    assert _value(m["hw.gpu.io"][1], **a, **{"network.io.direction": "transmit"}) == 2000
    assert _value(m["llm_otel.gpu.temperature"][1], **a) == 61
    clock = m["llm_otel.gpu.clock.frequency"][1]
    assert _value(clock, **a, **{"llm_otel.gpu.clock.domain": "sm"}) == 1980e6
    assert _value(clock, **a, **{"llm_otel.gpu.clock.domain": "memory"}) == 2619e6
    throttled = m["llm_otel.gpu.clock.throttled"][1]
    assert _value(throttled, **a, **{"llm_otel.gpu.throttle.reason": "sw_power_cap"}) == 1
    assert _value(throttled, **a, **{"llm_otel.gpu.throttle.reason": "hw_slowdown"}) == 0
    assert _value(m["llm_otel.gpu.fan.speed_ratio"][1], **a) == 0.30
    processes = m["llm_otel.gpu.process.memory.usage"][1]
    assert processes == [(GIB, {**processes[0][1], "process.pid": 4242,
                                "process.executable.name": "python3"})]  # fmt: skip


def test_identity_attributes() -> None:
    m = Collected(two_gpus_one_with_mig()).collect()
    attrs = next(a for _, a in m["hw.power"][1] if a["hw.id"] == "GPU-aaaa")
    assert attrs == {
        "hw.id": "GPU-aaaa",
        "hw.name": "NVIDIA H100 80GB HBM3",
        "hw.vendor": "NVIDIA",
        "hw.model": "NVIDIA H100 80GB HBM3",
        "hw.driver_version": "550.54.15",
        "llm_otel.gpu.index": 0,
        "hw.type": "gpu",
    }


def test_mig_instances_are_devices_with_a_parent() -> None:
    m = Collected(two_gpus_one_with_mig()).collect()
    usage = m["hw.gpu.memory.usage"][1]
    assert {a["hw.id"] for _, a in usage} == {"GPU-aaaa", "GPU-bbbb", "MIG-b1", "MIG-b2"}
    mig = next(a for _, a in usage if a["hw.id"] == "MIG-b1")
    assert mig["hw.parent"] == "GPU-bbbb"
    assert mig["llm_otel.gpu.index"] == 1
    assert _value(usage, **{"hw.id": "MIG-b1"}) == GIB
    # Utilization is not supported on MIG instances: skipped, not reported as zero.
    assert {a["hw.id"] for _, a in m["hw.power"][1]} == {"GPU-aaaa", "GPU-bbbb"}


def test_unsupported_fields_are_asked_once_and_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = two_gpus_one_with_mig()
    c = Collected(nvml)
    with caplog.at_level(logging.INFO, logger="llm_otel"):
        for _ in range(3):
            c.collect()
    # Each MIG instance was asked for power once, then never again.
    assert nvml.calls["power"] == 2 * 3 + 2
    assert caplog.records == []
    # GPU-bbbb has no PCIe counters: no hw.gpu.io series for it.
    assert {a["hw.id"] for _, a in c.collect()["hw.gpu.io"][1]} == {"GPU-aaaa"}


def test_error_mid_collection_is_isolated_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = two_gpus_one_with_mig()
    c = Collected(nvml)
    c.collect()
    nvml.gpus[0].failing["power"] = NVML_ERROR_UNKNOWN
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        for _ in range(3):
            m = c.collect()
    assert {a["hw.id"] for _, a in m["hw.power"][1]} == {"GPU-bbbb"}
    assert _value(m["hw.gpu.memory.usage"][1], **{"hw.id": "GPU-aaaa"}) == 20 * GIB
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "power" in warnings[0] and "GPU-aaaa" in warnings[0]
    nvml.gpus[0].failing.clear()  # a transient error: the field comes back
    assert {a["hw.id"] for _, a in c.collect()["hw.power"][1]} == {"GPU-aaaa", "GPU-bbbb"}


def test_lost_gpu_reports_failed_and_is_enumerated_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_nvml, "REENUMERATE_AFTER_S", 0.0)
    nvml = two_gpus_one_with_mig()
    c = Collected(nvml)
    c.collect()
    assert nvml.calls["count"] == 1  # enumerated once, handles cached
    nvml.gpus[0].lost = True
    m = c.collect()
    assert _value(m["hw.status"][1], **{"hw.id": "GPU-aaaa", "hw.state": "failed"}) == 1
    assert _value(m["hw.status"][1], **{"hw.id": "GPU-aaaa", "hw.state": "ok"}) == 0
    nvml.gpus[0] = FakeGPU(uuid="GPU-cccc")  # the GPU came back (after a reset) as a new device
    m = c.collect()
    assert nvml.calls["count"] > 1  # enumerated again (rate limited in production)
    ids = {a["hw.id"] for _, a in m["hw.gpu.memory.usage"][1]}
    assert "GPU-cccc" in ids and "GPU-aaaa" not in ids


def test_degraded_on_uncorrected_ecc_or_hardware_slowdown() -> None:
    nvml = FakeNVML(
        [FakeGPU(uuid="GPU-ecc", ecc=(0, 3)), FakeGPU(uuid="GPU-hot", throttle_mask=0x40)]
    )
    m = Collected(nvml).collect()
    for gpu in ("GPU-ecc", "GPU-hot"):
        assert _value(m["hw.status"][1], **{"hw.id": gpu, "hw.state": "degraded"}) == 1


def test_memory_used_excludes_what_the_driver_reserves(caplog: pytest.LogCaptureFixture) -> None:
    # As on a real H100 (driver 580): v1 counts ~0.5 GiB the driver reserves as used, so an idle
    # GPU showed 0.47 GiB used where nvidia-smi shows 0 MiB. v2 reports it apart.
    reserved = GIB // 2
    nvml = FakeNVML(
        [
            FakeGPU(uuid="GPU-v2", memory_used=0, memory_reserved=reserved),
            FakeGPU(uuid="GPU-v1", memory_used=GIB, memory_reserved=reserved, memory_v2=False),
        ]
    )
    c = Collected(nvml)
    with caplog.at_level(logging.DEBUG, logger="llm_otel"):
        for _ in range(3):
            m = c.collect()
    usage, ratio = m["hw.gpu.memory.usage"][1], m["hw.gpu.memory.utilization"][1]
    assert _value(usage, **{"hw.id": "GPU-v2"}) == 0
    assert _value(ratio, **{"hw.id": "GPU-v2"}) == 0
    assert _value(m["hw.gpu.memory.limit"][1], **{"hw.id": "GPU-v2"}) == 80 * GIB
    # A driver without v2: v1's figure, v2 asked once for that device and never again.
    assert _value(usage, **{"hw.id": "GPU-v1"}) == GIB + reserved
    assert nvml.calls["memory_v2"] == 3 * 3 + 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_memory_without_v2_in_pynvml() -> None:
    nvml = FakeNVML([FakeGPU(uuid="GPU-old", memory_reserved=GIB)])
    nvml.nvmlMemory_v2 = None  # type: ignore[assignment]  # pynvml older than 11.5
    m = Collected(nvml).collect()
    assert _value(m["hw.gpu.memory.usage"][1]) == 21 * GIB
    assert nvml.calls["memory_v2"] == 0


def test_energy_is_a_monotonic_counter() -> None:
    nvml = FakeNVML([FakeGPU(uuid="GPU-e")])
    c = Collected(nvml)
    first = _value(c.collect()["hw.energy"][1])
    nvml.gpus[0].energy_mj += 250_000
    assert _value(c.collect()["hw.energy"][1]) == first + 250.0


def test_no_nvml_library(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm_otel.gpu.load_nvml", lambda: None)
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        gpus = GPUMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    assert gpus.session is None and gpus.instruments == []
    assert len(caplog.records) == 1 and "pynvml" in caplog.records[0].getMessage()


def test_nvml_init_failure(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNVML([], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        c = Collected(nvml)
        assert c.collect() == {}
    assert len(caplog.records) == 1 and "NVML" in caplog.records[0].getMessage()
    c.gpus.shutdown()
    assert nvml.calls["shutdown"] == 0  # never initialised, never shut down


def test_shutdown_once_then_silent() -> None:
    nvml = two_gpus_one_with_mig()
    c = Collected(nvml)
    c.gpus.shutdown()
    assert nvml.calls["shutdown"] == 1
    assert all(points == [] for _, points in c.collect().values())


def test_instrumentor_registers_once_and_uninstruments(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = two_gpus_one_with_mig()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        GPUInstrumentor().instrument(meter_provider=provider, nvml=nvml)
        GPUInstrumentor().instrument(meter_provider=provider, nvml=nvml)
        assert nvml.calls["init"] == 1
        assert reader.get_metrics_data() is not None
    finally:
        GPUInstrumentor().uninstrument()
    assert nvml.calls["shutdown"] == 1


def test_env_turns_gpu_metrics_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_OTEL_GPU_METRICS", "false")
    nvml = two_gpus_one_with_mig()
    try:
        GPUInstrumentor().instrument(nvml=nvml)
        assert nvml.calls["init"] == 0
    finally:
        GPUInstrumentor().uninstrument()


# --- the three ways in, in subprocesses with the fake pynvml module first on the path -------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = FAKE_PYNVML + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_configure_gpu_true(tmp_path: Path) -> None:
    receiver = OTLPReceiver().start()
    try:
        script = (
            "import llm_otel\n"
            f"c = llm_otel.configure(endpoint={receiver.endpoint!r}, gpu=True)\n"
            "assert 'llm_otel_gpu' in c.instrumented, c.instrumented\n"
            "assert len(c.gpu.devices) == 4\n"
            "import pynvml\n"
            "c.shutdown()\n"
            "assert pynvml._instance.calls['shutdown'] == 1, 'NVML stopped after the export'\n"
        )
        result = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "hw.gpu.utilization" in receiver.metrics
        assert "llm_otel.gpu.temperature" in receiver.metrics
    finally:
        receiver.stop()


def test_opentelemetry_instrument_exports_gpu_metrics() -> None:
    receiver = OTLPReceiver().start()
    instrument = installed_command("opentelemetry-instrument")
    try:
        result = subprocess.run(
            [instrument, sys.executable, "-c", "print('app')"],
            env=_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        points = receiver.metrics["hw.gpu.memory.usage"]
        assert {p["attributes"]["hw.id"] for p in points} >= {"GPU-aaaa", "MIG-b1"}
    finally:
        receiver.stop()


def test_cli_prints_a_table() -> None:
    cli = installed_command("llm-otel")
    result = subprocess.run([cli, "gpu", "--count", "1"], env=_env(),
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["gpu", "id", "name"]
    assert any("GPU-aaaa" in line and "75%" in line and "350 W" in line for line in lines)
    assert any("MIG-b1" in line for line in lines)


def test_cli_without_nvml_exits_nonzero() -> None:
    cli = installed_command("llm-otel")
    env = _env()
    env["PYTHONPATH"] = ""  # the real (absent) NVML: pynvml imports, but there is no driver
    result = subprocess.run([cli, "gpu", "--count", "1"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 1
    assert "no GPU metrics" in result.stderr
