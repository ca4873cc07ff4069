"""Estimated cost of LLM calls from a price table (USD per million tokens).

The table shipped in the package (``prices.json``, dated) is never updated over the network.
Override or extend it with ``LLM_OTEL_PRICES_FILE`` (a JSON file in the same format: a
``prices`` mapping of provider -> model -> prices) or :func:`set_prices`. A model is matched
exactly, then by the longest listed prefix; an unlisted model costs nothing (no attribute, no
metric point) rather than a guess. ``LLM_OTEL_COST=false`` turns cost off.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llm_otel._env import env_flag

__all__ = ["COST_ENV", "PRICES_FILE_ENV", "Price", "PriceTable", "prices", "set_prices"]

_logger = logging.getLogger("llm_otel")
PRICES_FILE_ENV = "LLM_OTEL_PRICES_FILE"
COST_ENV = "LLM_OTEL_COST"
PER = 1_000_000
_MAX_KEPT = 4096  # model names whose price (or its absence) is kept, per table


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; a missing cached price falls back to the input price."""

    input: float
    output: float = 0.0
    cached_input: float | None = None
    cache_creation_input: float | None = None

    def cost(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read: int | None = None,
        cache_creation: int | None = None,
    ) -> float:
        """Input tokens include the cached ones, as the conventions define them."""
        if not cache_read and not cache_creation:  # most calls: no cache tokens to price apart
            fresh = input_tokens if input_tokens is not None and input_tokens > 0 else 0
            return (fresh * self.input + (output_tokens or 0) * self.output) / PER
        read = cache_read or 0
        created = cache_creation or 0
        fresh = max((input_tokens or 0) - read - created, 0)
        total = fresh * self.input + (output_tokens or 0) * self.output
        total += read * (self.input if self.cached_input is None else self.cached_input)
        total += created * (
            self.input if self.cache_creation_input is None else self.cache_creation_input
        )
        return total / PER


class PriceTable:
    """Provider -> model -> :class:`Price`, with prefix matching cached per model name."""

    def __init__(self, table: dict[str, dict[str, Price]], as_of: str | None = None,
                 batch: dict[str, float] | None = None) -> None:  # fmt: skip
        self.table = table
        self.as_of = as_of
        self.batch = dict(batch or {})
        """Provider -> the share of the list price its batch API bills (OpenAI, Anthropic: 0.5)."""
        # Answers kept per name asked about; bounded, as model names come from servers too.
        self._matches: dict[tuple[str, str], Price | None] = {}
        self._calls: dict[tuple[str, Any, Any], Price | None] = {}

    def lookup(self, provider: str, model: str | None) -> Price | None:
        if not model:
            return None
        key = (provider, model)
        try:
            return self._matches[key]
        except KeyError:
            pass
        price = self._match(provider, model)
        if len(self._matches) >= _MAX_KEPT:
            self._matches.clear()
        self._matches[key] = price  # a benign race: both writers store the same answer
        return price

    def price_for(self, provider: str, response_model: Any, request_model: Any) -> Price | None:
        """The price of a call: of the model that answered (a string), else of the model asked
        for. One dictionary read per call once the pair has been seen."""
        key = (provider, response_model, request_model)
        try:
            return self._calls[key]
        except (KeyError, TypeError):  # TypeError: a server's unhashable "model"
            pass
        price = None
        if isinstance(response_model, str):
            price = self.lookup(provider, response_model)
        if price is None and isinstance(request_model, str):
            price = self.lookup(provider, request_model)
        if isinstance(response_model, str | None) and isinstance(request_model, str | None):
            if len(self._calls) >= _MAX_KEPT:
                self._calls.clear()
            self._calls[key] = price
        return price

    def _match(self, provider: str, model: str) -> Price | None:
        models = self.table.get(provider)
        if not models:
            return None
        if model in models:
            return models[model]
        # Longest listed prefix, at a name boundary: gpt-4o-mini-2024-07-18 -> gpt-4o-mini.
        best = None
        for name in models:
            if (
                model.startswith(name)
                and model[len(name)] in "-@:."
                and (best is None or len(name) > len(best))
            ):
                best = name
        return models[best] if best else None

    def batch_rate(self, provider: str) -> float:
        """The share of the list price a batch request of ``provider`` costs (1.0: unlisted)."""
        return self.batch.get(provider, 1.0)

    def merged(self, other: PriceTable) -> PriceTable:
        table = {p: dict(m) for p, m in self.table.items()}
        for provider, models in other.table.items():
            table.setdefault(provider, {}).update(models)
        return PriceTable(table, other.as_of or self.as_of, {**self.batch, **other.batch})


def parse(data: Any) -> PriceTable:
    """A :class:`PriceTable` from the JSON format; ValueError naming the first bad entry when
    ``data`` is not ``{"prices": {provider: {model: {"input": ..., "output": ...}}}}``."""
    if not isinstance(data, dict):
        raise ValueError(
            f'expected an object {{"prices": {{provider: {{model: prices}}}}}}, '
            f"not a {type(data).__name__}"
        )
    if "prices" not in data:
        raise ValueError('no "prices" key (provider -> model -> prices)')
    providers = data["prices"]
    if not isinstance(providers, dict):
        raise ValueError(f'"prices" must map providers to models, not a {type(providers).__name__}')
    table: dict[str, dict[str, Price]] = {}
    for provider, models in providers.items():
        if not isinstance(models, dict):
            raise ValueError(f"prices[{provider!r}] must map models to prices, not {models!r}")
        for model, spec in models.items():
            table.setdefault(provider, {})[model] = _price(provider, model, spec)
    as_of = data.get("as_of")
    batch = data.get("batch", {})
    if not isinstance(batch, dict):
        raise ValueError(f'"batch" must map providers to a share of the list price, not {batch!r}')
    rates: dict[str, float] = {}
    for provider, rate in batch.items():
        if _amount(rate) > 1:
            raise ValueError(f"batch[{provider!r}] = {rate!r}: a share of the list price, 0 to 1")
        rates[provider] = float(rate)
    return PriceTable(table, as_of if isinstance(as_of, str) else None, rates)


def _price(provider: str, model: str, spec: Any) -> Price:
    try:
        if not isinstance(spec, dict):
            raise TypeError('expected {"input": ..., "output": ...}')
        return Price(
            input=_amount(spec["input"]),
            output=_amount(spec.get("output", 0.0)),
            cached_input=_optional(spec.get("cached_input")),
            cache_creation_input=_optional(spec.get("cache_creation_input")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad price for {provider}/{model}: {spec!r} ({exc})") from exc


def _amount(value: Any) -> float:
    """USD per million tokens: a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    amount = float(value)
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{value!r} is not a finite price of 0 or more")
    return amount


def _optional(value: Any) -> float | None:
    return None if value is None else _amount(value)


_lock = threading.Lock()
_table: PriceTable | None = None
_loaded = False


def _load() -> PriceTable | None:
    if not env_flag(COST_ENV, True):
        return None
    shipped = parse(json.loads(resources.files(__package__).joinpath("prices.json").read_text()))
    path = os.environ.get(PRICES_FILE_ENV)
    if path:
        try:
            shipped = shipped.merged(parse(json.loads(Path(path).read_text())))
        except (OSError, ValueError) as exc:
            _logger.warning("%s=%s not used: %s", PRICES_FILE_ENV, path, exc)
    return shipped


def prices() -> PriceTable | None:
    """The price table in use (None when cost is turned off)."""
    global _table, _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                _table = _load()
                _loaded = True
    return _table


def set_prices(overrides: dict[str, Any] | str | Path | None) -> None:
    """Merge prices over the shipped table: a dict in the JSON format or a path to such a
    file; ``None`` goes back to the shipped table (plus ``LLM_OTEL_PRICES_FILE``)."""
    global _table, _loaded
    with _lock:
        base = _load()
        if overrides is not None and base is not None:
            data = (
                json.loads(Path(overrides).read_text())
                if isinstance(overrides, (str, Path))
                else overrides
            )
            base = base.merged(parse(data))  # ValueError names the bad entry; nothing changes
        _table, _loaded = base, True
