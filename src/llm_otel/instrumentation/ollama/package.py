__all__ = ["_instruments"]

_instruments = ("ollama >= 0.4.7, < 1",)
