__all__ = ["_instruments"]

_instruments = ("mistralai >= 1.2.0, < 4",)
