__all__ = ["_instruments"]

_instruments = ("llama-index-core >= 0.14.0, < 0.15",)
