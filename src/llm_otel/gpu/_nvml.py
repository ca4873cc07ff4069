"""One NVML session per process: initialised once, devices enumerated once, errors isolated.

Every NVML read goes through :meth:`NVMLSession.read`, which never raises: a field a device does
not support (``NVML_ERROR_NOT_SUPPORTED``) is remembered and not asked again, any other NVML error
is logged once per device, field and error, and a device-level failure (GPU lost, NVML
uninitialised) marks the device list stale so it is enumerated again at the next collection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry.semconv._incubating.attributes import hw_attributes as hw

from llm_otel._guard import report_internal_error
from llm_otel.semconv.gpu import LLM_OTEL_GPU_INDEX

__all__ = ["Device", "NVMLSession", "load_nvml"]

_logger = logging.getLogger("llm_otel")
T = TypeVar("T")

NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
# Errors after which the cached handles cannot be trusted.
_DEVICE_LOST = {1, 15}  # NVML_ERROR_UNINITIALIZED, NVML_ERROR_GPU_IS_LOST
REENUMERATE_AFTER_S = 5.0


@dataclass(frozen=True)
class Device:
    """One GPU, or one MIG instance of a GPU, with its identity attributes."""

    handle: Any
    index: int
    uuid: str
    name: str
    parent_uuid: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)


def load_nvml() -> Any:
    """The ``pynvml`` module (from nvidia-ml-py), or None when it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NVMLSession:
    """Owns ``nvmlInit``/``nvmlShutdown`` and the device list for the metric callbacks."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._lock = threading.Lock()
        self._started = False
        self._available = False
        self._devices: list[Device] = []
        self._stale_since: float | None = None
        self._unsupported: set[tuple[str, str]] = set()
        self._logged: set[tuple[str, str, int | None]] = set()
        self._memory_v1: set[str] = set()
        self.driver_version: str | None = None

    @property
    def available(self) -> bool:
        return self._available

    def start(self) -> bool:
        """Initialise NVML and enumerate devices; False (and one log line) when there is none."""
        with self._lock:
            if self._started:
                return self._available
            self._started = True
            try:
                self.nvml.nvmlInit()
            except Exception as exc:
                _logger.warning(
                    "no GPU metrics: NVML could not be initialised (%s). "
                    "Is an NVIDIA driver installed?",
                    exc,
                )
                return False
            self._available = True
            try:
                self.driver_version = _text(self.nvml.nvmlSystemGetDriverVersion())
            except Exception:
                self.driver_version = None
            self._devices = self._enumerate()
            if not self._devices:
                _logger.warning("NVML found no GPU; GPU metrics will be empty")
            return True

    def shutdown(self) -> None:
        with self._lock:
            if self._available:
                try:
                    self.nvml.nvmlShutdown()
                except Exception as exc:
                    _logger.debug("nvmlShutdown failed: %r", exc)
            self._available = False
            self._devices = []

    def devices(self) -> list[Device]:
        """The current devices; enumerates again after a device-level failure (rate limited)."""
        if not self._available:
            return []
        stale = self._stale_since
        if stale is not None and time.monotonic() - stale >= REENUMERATE_AFTER_S:
            with self._lock:
                if self._stale_since is stale:
                    self._devices = self._enumerate()
                    self._stale_since = None
        return self._devices

    def read(self, device: Device, name: str, fn: Callable[[Any], T]) -> T | None:
        """``fn(device.handle)``, or None when the field is unsupported or the read failed."""
        key = (device.uuid, name)
        if key in self._unsupported:
            return None
        try:
            return fn(device.handle)
        except Exception as exc:
            self._failed(device, name, exc)
            return None

    def memory(self, device: Device) -> Any:
        """Memory info with ``used`` counted as nvidia-smi and DCGM count it.

        NVML's v1 call folds the memory the driver reserves for itself (about 0.5 GiB on an
        H100) into ``used``, so an idle GPU looks busy; the v2 call reports it apart. v2 is
        asked first; where the driver or pynvml lacks it, v1 is used for that device from then
        on, without a log line.
        """
        version = getattr(self.nvml, "nvmlMemory_v2", None)
        if version is not None and device.uuid not in self._memory_v1:
            key = (device.uuid, "memory")
            if key in self._unsupported:
                return None
            try:
                return self.nvml.nvmlDeviceGetMemoryInfo(device.handle, version=version)
            except Exception as exc:
                if getattr(exc, "value", None) in _DEVICE_LOST:
                    self._failed(device, "memory", exc)
                    return None
                _logger.debug("GPU %s has no v2 memory info (%r)", device.uuid, exc)
                self._memory_v1.add(device.uuid)
        return self.read(device, "memory", self.nvml.nvmlDeviceGetMemoryInfo)

    def _failed(self, device: Device, name: str, exc: Exception) -> None:
        code = getattr(exc, "value", None)
        if not isinstance(exc, self._error_type()):
            report_internal_error(f"gpu {name}", exc)
            return
        if code == NOT_SUPPORTED:
            self._unsupported.add((device.uuid, name))
            _logger.debug("%s is not supported on GPU %s", name, device.uuid)
            return
        if code in _DEVICE_LOST:
            if self._stale_since is None:
                self._stale_since = time.monotonic()
            name = "any field"  # one line for a lost GPU, not one per field
        marker = (device.uuid, name, code)
        if marker not in self._logged:
            self._logged.add(marker)
            _logger.warning("reading %s of GPU %s failed: %s", name, device.uuid, exc)

    def _error_type(self) -> type[BaseException]:
        error = getattr(self.nvml, "NVMLError", None)
        return error if isinstance(error, type) else Exception

    def _enumerate(self) -> list[Device]:
        nvml = self.nvml
        found: list[Device] = []
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            _logger.warning("NVML could not count GPUs: %s", exc)
            return found
        known = {d.index: d for d in self._devices if d.parent_uuid is None}
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                device = self._describe(handle, index, None)
            except Exception as exc:
                if index in known:
                    # Keep reporting a GPU that was there (as hw.status failed) rather than
                    # letting its series vanish.
                    found.append(known[index])
                else:
                    _logger.warning("GPU %d is not readable; skipped: %s", index, exc)
                continue
            found.append(device)
            found.extend(self._mig_devices(device))
        return found

    def _describe(self, handle: Any, index: int, parent: Device | None) -> Device:
        nvml = self.nvml
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        name = parent.name if parent else _text(nvml.nvmlDeviceGetName(handle))
        attributes: dict[str, Any] = {
            hw.HW_ID: uuid,
            hw.HW_NAME: name if parent is None else f"{name} MIG {uuid}",
            hw.HW_VENDOR: "NVIDIA",
            hw.HW_MODEL: name,
            LLM_OTEL_GPU_INDEX: index,
        }
        if self.driver_version:
            attributes[hw.HW_DRIVER_VERSION] = self.driver_version
        if parent is not None:
            attributes[hw.HW_PARENT] = parent.uuid
        return Device(handle, index, uuid, name, parent.uuid if parent else None, attributes)

    def _mig_devices(self, gpu: Device) -> list[Device]:
        nvml = self.nvml
        try:
            current, _pending = nvml.nvmlDeviceGetMigMode(gpu.handle)
        except Exception:
            return []  # no MIG on this GPU (NotSupported) or not readable
        if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
            return []
        found: list[Device] = []
        try:
            slots = int(nvml.nvmlDeviceGetMaxMigDeviceCount(gpu.handle))
        except Exception:
            return found
        for slot in range(slots):
            try:
                handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, slot)
                found.append(self._describe(handle, gpu.index, gpu))
            except Exception:
                continue  # an empty MIG slot answers NotFound
        return found
