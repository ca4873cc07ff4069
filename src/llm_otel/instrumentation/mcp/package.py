__all__ = ["_instruments"]

_instruments = ("mcp >= 2.3.0, < 3",)
