__all__ = ["_instruments"]

_instruments = ("openai >= 1.66.0, < 4",)
