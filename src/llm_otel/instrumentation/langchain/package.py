__all__ = ["_instruments"]

_instruments = ("langchain-core >= 1.0.0, < 2",)
