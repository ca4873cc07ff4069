__all__ = ["_instruments"]

_instruments = ("litellm >= 1.103.0, < 2",)
