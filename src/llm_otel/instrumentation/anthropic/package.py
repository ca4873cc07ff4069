__all__ = ["_instruments"]

_instruments = ("anthropic >= 0.49.0, < 3",)
