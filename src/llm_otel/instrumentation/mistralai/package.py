__all__ = ["_instruments"]

_instruments = ("mistralai >= 1.5.0, < 4",)
