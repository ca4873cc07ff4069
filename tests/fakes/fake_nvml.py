"""A fake NVML with pynvml's API, for machines without a GPU.

Devices, unsupported fields, failing fields, lost GPUs and MIG instances are set up per test;
``calls`` counts every API call so tests can assert what was (not) asked again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2
NVML_VOLATILE_ECC = 0
NVML_DEVICE_MIG_ENABLE = 1
NVML_FI_DEV_PCIE_COUNT_TX_BYTES = 197
NVML_FI_DEV_PCIE_COUNT_RX_BYTES = 198


class NVMLError(Exception):
    """pynvml's error: ``.value`` is the NVML return code."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value

    def __str__(self) -> str:
        return {
            NVML_ERROR_NOT_SUPPORTED: "Not Supported",
            NVML_ERROR_GPU_IS_LOST: "GPU is lost",
            NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        }.get(self.value, f"Unknown Error ({self.value})")


@dataclass
class FakeGPU:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    util_gpu: int = 75
    util_memory: int = 40
    encoder: int = 10
    decoder: int = 5
    memory_total: int = 80 * 1024**3
    memory_used: int = 20 * 1024**3
    memory_reserved: int = 0  # by the driver: in v1's used, apart in v2
    memory_v2: bool = True  # the driver has nvmlDeviceGetMemoryInfo_v2
    power_mw: int = 350_000
    energy_mj: int = 1_000_000
    temperature: int = 61
    clocks_mhz: tuple[int, int, int] = (1980, 1980, 2619)
    throttle_mask: int = 0x4  # sw_power_cap
    fan_percent: int = 30
    ecc: tuple[int, int] = (2, 0)
    pcie: tuple[int, int] | None = (1000, 2000)  # rx, tx bytes
    processes: list[tuple[int, int | None, str]] = field(default_factory=list)
    mig: list[FakeGPU] | None = None
    unsupported: set[str] = field(default_factory=set)
    failing: dict[str, int] = field(default_factory=dict)
    lost: bool = False


class FakeNVML:
    """Module-like object with the pynvml functions llm_otel calls."""

    NVMLError = NVMLError

    def __init__(
        self, gpus: list[FakeGPU], init_error: int | None = None, driver: str = "550.54.15"
    ) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.driver = driver
        self.calls: Counter[str] = Counter()
        for name, value in globals().items():
            if name.startswith("NVML_"):
                setattr(self, name, value)

    def _use(self, gpu: FakeGPU, name: str) -> FakeGPU:
        self.calls[name] += 1
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if name in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if name in gpu.failing:
            raise NVMLError(gpu.failing[name])
        return gpu

    def nvmlInit(self) -> None:
        self.calls["init"] += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls["shutdown"] += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self.calls["count"] += 1
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGPU:
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, gpu: FakeGPU) -> str:
        return self._use(gpu, "uuid").uuid

    def nvmlDeviceGetName(self, gpu: FakeGPU) -> bytes:
        return self._use(gpu, "name").name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGPU) -> Any:
        g = self._use(gpu, "utilization")
        return SimpleNamespace(gpu=g.util_gpu, memory=g.util_memory)

    def nvmlDeviceGetEncoderUtilization(self, gpu: FakeGPU) -> list[int]:
        return [self._use(gpu, "encoder").encoder, 167000]

    def nvmlDeviceGetDecoderUtilization(self, gpu: FakeGPU) -> list[int]:
        return [self._use(gpu, "decoder").decoder, 167000]

    nvmlMemory_v2 = 0x02000028

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGPU, version: int | None = None) -> Any:
        g = self._use(gpu, "memory")
        if version:
            self.calls["memory_v2"] += 1
            if not g.memory_v2:
                raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
            free = g.memory_total - g.memory_reserved - g.memory_used
            return SimpleNamespace(
                version=version, total=g.memory_total, reserved=g.memory_reserved, free=free,
                used=g.memory_used,
            )  # fmt: skip
        used = g.memory_used + g.memory_reserved
        return SimpleNamespace(total=g.memory_total, used=used, free=g.memory_total - used)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGPU) -> int:
        return self._use(gpu, "power").power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGPU) -> int:
        return self._use(gpu, "energy").energy_mj

    def nvmlDeviceGetTemperature(self, gpu: FakeGPU, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._use(gpu, "temperature").temperature

    def nvmlDeviceGetClockInfo(self, gpu: FakeGPU, clock: int) -> int:
        return self._use(gpu, "clock").clocks_mhz[clock]

    def nvmlDeviceGetCurrentClocksEventReasons(self, gpu: FakeGPU) -> int:
        return self._use(gpu, "throttle").throttle_mask

    def nvmlDeviceGetFanSpeed(self, gpu: FakeGPU) -> int:
        return self._use(gpu, "fan").fan_percent

    def nvmlDeviceGetTotalEccErrors(self, gpu: FakeGPU, kind: int, counter: int) -> int:
        assert counter == NVML_VOLATILE_ECC
        return self._use(gpu, "ecc").ecc[kind]

    def nvmlDeviceGetFieldValues(self, gpu: FakeGPU, fields: list[int]) -> list[Any]:
        g = self._use(gpu, "fields")
        out = []
        for field_id in fields:
            if g.pcie is None:
                out.append(SimpleNamespace(nvmlReturn=NVML_ERROR_NOT_SUPPORTED, value=None))
                continue
            value = g.pcie[0] if field_id == NVML_FI_DEV_PCIE_COUNT_RX_BYTES else g.pcie[1]
            out.append(
                SimpleNamespace(nvmlReturn=NVML_SUCCESS, value=SimpleNamespace(ullVal=value))
            )
        return out

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGPU) -> list[Any]:
        g = self._use(gpu, "processes")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used, _ in g.processes]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        for gpu in self.gpus:
            for p, _, name in gpu.processes:
                if p == pid:
                    return name
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetMigMode(self, gpu: FakeGPU) -> list[int]:
        g = self._use(gpu, "mig")
        if g.mig is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]

    def nvmlDeviceGetMaxMigDeviceCount(self, gpu: FakeGPU) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, gpu: FakeGPU, slot: int) -> FakeGPU:
        if gpu.mig is None or slot >= len(gpu.mig):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return gpu.mig[slot]


def two_gpus_one_with_mig() -> FakeNVML:
    """The default scenario: GPU 0 plain with two processes, GPU 1 with two MIG instances."""
    mig_unsupported = {
        "utilization",
        "encoder",
        "decoder",
        "power",
        "energy",
        "temperature",
        "clock",
        "throttle",
        "fan",
        "ecc",
        "fields",
        "processes",
        "mig",
    }
    return FakeNVML([
        FakeGPU(uuid="GPU-aaaa", processes=[(4242, 1024**3, "/usr/bin/python3"),
                                            (4343, None, "/opt/hidden")]),
        FakeGPU(uuid="GPU-bbbb", pcie=None, util_gpu=10, mig=[
            FakeGPU(uuid="MIG-b1", memory_total=10 * 1024**3, memory_used=1024**3,
                    unsupported=mig_unsupported),
            FakeGPU(uuid="MIG-b2", memory_total=10 * 1024**3, memory_used=0,
                    unsupported=mig_unsupported),
        ]),
    ])  # fmt: skip
