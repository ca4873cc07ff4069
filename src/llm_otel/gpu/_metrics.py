"""The GPU instruments and the callbacks that read them from NVML."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.attributes import hw_attributes as hw
from opentelemetry.semconv._incubating.attributes import network_attributes as net
from opentelemetry.semconv._incubating.attributes import process_attributes as proc
from opentelemetry.semconv._incubating.metrics import hw_metrics as hwm
from opentelemetry.semconv.attributes import error_attributes

from llm_otel._guard import report_internal_error
from llm_otel.gpu._nvml import Device, NVMLSession
from llm_otel.semconv import gpu as ours

__all__ = ["THROTTLE_REASONS", "register_instruments"]

# NVML clock event (throttle) reason bits -> attribute values.
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
_DEGRADING_REASONS = 0x8 | 0x40 | 0x80  # hardware slowdowns mean the GPU is not healthy
_CLOCKS = (("graphics", 0), ("sm", 1), ("memory", 2))
_GPU = {hw.HW_TYPE: "gpu"}

Reader = Callable[[NVMLSession, Device], Iterable[tuple[float, dict[str, Any]]]]


def _utilization(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    nvml = s.nvml
    rates = s.read(d, "utilization", nvml.nvmlDeviceGetUtilizationRates)
    if rates is not None:
        yield rates.gpu / 100.0, {hw.HW_GPU_TASK: "general"}
    for task, fn in (("encoder", "nvmlDeviceGetEncoderUtilization"),
                     ("decoder", "nvmlDeviceGetDecoderUtilization")):  # fmt: skip
        value = s.read(d, task, getattr(nvml, fn))
        if value is not None:
            yield value[0] / 100.0, {hw.HW_GPU_TASK: task}


def _memory(s: NVMLSession, d: Device) -> Any:
    return s.memory(d)


def _memory_usage(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    info = _memory(s, d)
    if info is not None:
        yield info.used, {}


def _memory_limit(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    info = _memory(s, d)
    if info is not None:
        yield info.total, {}


def _memory_utilization(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    info = _memory(s, d)
    if info is not None and info.total:
        yield info.used / info.total, {}


def _power(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    milliwatts = s.read(d, "power", s.nvml.nvmlDeviceGetPowerUsage)
    if milliwatts is not None:
        yield milliwatts / 1000.0, _GPU


def _energy(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    millijoules = s.read(d, "energy", s.nvml.nvmlDeviceGetTotalEnergyConsumption)
    if millijoules is not None:
        yield millijoules / 1000.0, _GPU


def _ecc(s: NVMLSession, d: Device, kind: int) -> int | None:
    nvml = s.nvml
    volatile = getattr(nvml, "NVML_VOLATILE_ECC", 0)
    name = "ecc.corrected" if kind == 0 else "ecc.uncorrected"
    value = s.read(d, name, lambda h: nvml.nvmlDeviceGetTotalEccErrors(h, kind, volatile))
    return None if value is None else int(value)


def _errors(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    for kind, label in ((0, "corrected"), (1, "uncorrected")):
        count = _ecc(s, d, kind)
        if count is not None:
            yield count, {**_GPU, error_attributes.ERROR_TYPE: label}


def _throttle_mask(s: NVMLSession, d: Device) -> int | None:
    nvml = s.nvml
    fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    return None if fn is None else s.read(d, "throttle", fn)


def _status(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    # ok / degraded / failed, one series each with 1 for the current state (hw.status).
    uncorrected = _ecc(s, d, 1)
    mask = _throttle_mask(s, d)
    state = "ok" if s.read(d, "uuid", s.nvml.nvmlDeviceGetUUID) is not None else "failed"
    if state == "ok" and ((uncorrected or 0) > 0 or (mask or 0) & _DEGRADING_REASONS):
        state = "degraded"
    for candidate in ("ok", "degraded", "failed"):
        yield (1 if candidate == state else 0), {**_GPU, hw.HW_STATE: candidate}


def _pcie_io(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    nvml = s.nvml
    fields = [nvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES, nvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES]
    values = s.read(d, "pcie.bytes", lambda h: nvml.nvmlDeviceGetFieldValues(h, fields))
    if values is None:
        return
    if any(v.nvmlReturn for v in values):
        s.read(d, "pcie.bytes", _raise_not_supported(nvml))  # remember: not on this GPU
        return
    for value, direction in zip(values, ("receive", "transmit"), strict=True):
        yield value.value.ullVal, {net.NETWORK_IO_DIRECTION: direction}


def _raise_not_supported(nvml: Any) -> Callable[[Any], None]:
    def fail(_handle: Any) -> None:
        raise nvml.NVMLError(nvml.NVML_ERROR_NOT_SUPPORTED)

    return fail


def _temperature(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    nvml = s.nvml
    sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
    value = s.read(d, "temperature", lambda h: nvml.nvmlDeviceGetTemperature(h, sensor))
    if value is not None:
        yield value, {}


def _clocks(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    nvml = s.nvml
    for domain, clock in _CLOCKS:
        mhz = s.read(d, f"clock.{domain}", partial(_clock_mhz, nvml, clock))
        if mhz is not None:
            yield mhz * 1e6, {ours.LLM_OTEL_GPU_CLOCK_DOMAIN: domain}


def _clock_mhz(nvml: Any, clock: int, handle: Any) -> Any:
    return nvml.nvmlDeviceGetClockInfo(handle, clock)


def _throttled(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    mask = _throttle_mask(s, d)
    if mask is None:
        return
    for bit, reason in THROTTLE_REASONS.items():
        yield (1 if mask & bit else 0), {ours.LLM_OTEL_GPU_THROTTLE_REASON: reason}


def _fan(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    percent = s.read(d, "fan", s.nvml.nvmlDeviceGetFanSpeed)
    if percent is not None:
        yield percent / 100.0, {}


def _processes(s: NVMLSession, d: Device) -> Iterable[tuple[float, dict[str, Any]]]:
    nvml = s.nvml
    running = s.read(d, "processes", nvml.nvmlDeviceGetComputeRunningProcesses)
    for process in running or ():
        used = getattr(process, "usedGpuMemory", None)
        if used is None:  # NVML reports no value without permission (e.g. in containers)
            continue
        attrs: dict[str, Any] = {proc.PROCESS_PID: int(process.pid)}
        try:
            name = nvml.nvmlSystemGetProcessName(process.pid)
            attrs[proc.PROCESS_EXECUTABLE_NAME] = (
                name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            ).rsplit("/", 1)[-1]
        except Exception:
            pass  # the process may have exited between the two calls
        yield used, attrs


# (name, instrument kind, unit, description, reader)
INSTRUMENTS: tuple[tuple[str, str, str, str, Reader], ...] = (
    (hwm.HW_GPU_UTILIZATION, "gauge", "1", "Fraction of time the GPU was busy, per task.",
     _utilization),
    (hwm.HW_GPU_MEMORY_USAGE, "updown", "By", "GPU memory used.", _memory_usage),
    (hwm.HW_GPU_MEMORY_LIMIT, "updown", "By", "GPU memory size.", _memory_limit),
    (hwm.HW_GPU_MEMORY_UTILIZATION, "gauge", "1", "Fraction of GPU memory used.",
     _memory_utilization),
    (hwm.HW_POWER, "gauge", "W", "Instantaneous power drawn by the GPU.", _power),
    (hwm.HW_ENERGY, "counter", "J", "Energy consumed by the GPU since the driver loaded.",
     _energy),
    (hwm.HW_ERRORS, "counter", "{error}", "ECC memory errors since the driver loaded.", _errors),
    (hwm.HW_STATUS, "updown", "1", "1 for the GPU's current state (ok, degraded, failed).",
     _status),
    (hwm.HW_GPU_IO, "counter", "By", "Bytes moved over PCIe.", _pcie_io),
    (ours.LLM_OTEL_GPU_TEMPERATURE, "gauge", "Cel", "GPU core temperature.", _temperature),
    (ours.LLM_OTEL_GPU_CLOCK_FREQUENCY, "gauge", "Hz", "Current clock frequency.", _clocks),
    (ours.LLM_OTEL_GPU_CLOCK_THROTTLED, "gauge", "1", "1 while a throttle reason is active.",
     _throttled),
    (ours.LLM_OTEL_GPU_FAN_SPEED_RATIO, "gauge", "1", "Fan speed as a fraction of its maximum.",
     _fan),
    (ours.LLM_OTEL_GPU_PROCESS_MEMORY_USAGE, "updown", "By", "GPU memory used by a process.",
     _processes),
)  # fmt: skip


def _callback(session: NVMLSession, name: str, reader: Reader) -> Callable[..., Any]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        try:
            for device in session.devices():
                for value, attrs in reader(session, device):
                    observations.append(Observation(value, {**device.attributes, **attrs}))
        except Exception as exc:
            report_internal_error(f"gpu callback {name}", exc)
        return observations

    return observe


def register_instruments(meter: Meter, session: NVMLSession) -> list[str]:
    """Create every GPU instrument on ``meter``; returns their names."""
    makers = {
        "gauge": meter.create_observable_gauge,
        "updown": meter.create_observable_up_down_counter,
        "counter": meter.create_observable_counter,
    }
    for name, kind, unit, description, reader in INSTRUMENTS:
        makers[kind](
            name, callbacks=[_callback(session, name, reader)], unit=unit, description=description
        )
    return [name for name, *_ in INSTRUMENTS]
