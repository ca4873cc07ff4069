__all__ = ["_instruments"]

_instruments = ("cohere >= 5.18.0, < 8",)
