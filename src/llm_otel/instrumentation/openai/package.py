__all__ = ["_instruments"]

_instruments = ("openai >= 1.40.0, < 4",)
