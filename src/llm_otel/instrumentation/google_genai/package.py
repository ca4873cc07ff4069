__all__ = ["_instruments"]

_instruments = ("google-genai >= 1.30.0, < 4",)
