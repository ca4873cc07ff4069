"""GPU names from ``semconv/registry/gpu.yaml`` (the hardware conventions have none for these)."""

from typing import Final

__all__ = [
    "LLM_OTEL_GPU_CLOCK_DOMAIN",
    "LLM_OTEL_GPU_CLOCK_FREQUENCY",
    "LLM_OTEL_GPU_CLOCK_THROTTLED",
    "LLM_OTEL_GPU_FAN_SPEED_RATIO",
    "LLM_OTEL_GPU_INDEX",
    "LLM_OTEL_GPU_PROCESS_MEMORY_USAGE",
    "LLM_OTEL_GPU_TEMPERATURE",
    "LLM_OTEL_GPU_THROTTLE_REASON",
]

# Attributes
LLM_OTEL_GPU_INDEX: Final = "llm_otel.gpu.index"
"""NVML index of the GPU on its host (a MIG instance carries its parent's index)."""
LLM_OTEL_GPU_CLOCK_DOMAIN: Final = "llm_otel.gpu.clock.domain"
"""Which clock a frequency belongs to: graphics, sm or memory."""
LLM_OTEL_GPU_THROTTLE_REASON: Final = "llm_otel.gpu.throttle.reason"
"""Why clocks are held below their maximum (NVML clock event reasons, snake_case)."""

# Metrics
LLM_OTEL_GPU_TEMPERATURE: Final = "llm_otel.gpu.temperature"
"""GPU core temperature (gauge, Cel)."""
LLM_OTEL_GPU_CLOCK_FREQUENCY: Final = "llm_otel.gpu.clock.frequency"
"""Current clock frequency per clock domain (gauge, Hz)."""
LLM_OTEL_GPU_CLOCK_THROTTLED: Final = "llm_otel.gpu.clock.throttled"
"""1 while a throttle reason is active, else 0 (gauge, 1)."""
LLM_OTEL_GPU_FAN_SPEED_RATIO: Final = "llm_otel.gpu.fan.speed_ratio"
"""Fan speed as a fraction of its maximum (gauge, 1)."""
LLM_OTEL_GPU_PROCESS_MEMORY_USAGE: Final = "llm_otel.gpu.process.memory.usage"
"""GPU memory used by one process (updowncounter, By; process.pid, process.executable.name)."""
