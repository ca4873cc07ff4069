__all__ = ["_instruments"]

_instruments = ("openai-agents >= 0.24.0, < 1",)
