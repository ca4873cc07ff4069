__all__ = ["_instruments"]

_instruments = ("groq >= 0.30.0, < 2",)
