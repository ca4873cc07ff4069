__all__ = ["_instruments"]

_instruments = ("botocore >= 1.35.0, < 2",)
