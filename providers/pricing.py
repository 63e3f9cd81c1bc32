"""Per-model token prices and the exact cost of one provider call.

Prices are US dollars per million tokens, held as `Decimal` so a cost adds up to the cent the
provider bills. A cost is `None` whenever it cannot be known (unknown model, missing token
counts): a guessed 0 would make dashboards and budgets lie.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib import resources
from typing import Final

import msgspec

_PER_MILLION_EXPONENT: Final = -6
_MAX_CACHED_NAMES: Final = 4096

# Suffixes that name a snapshot or alias of a base model: '-2024-07-18', '-20241022', '-latest',
# '-001', '-preview-05-20', '-exp-0827'.
_SNAPSHOT_SUFFIX: Final = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest|preview(?:-\d{2}-\d{2})?|exp(?:-\d{4})?)$"
)


class ModelPrice(msgspec.Struct, frozen=True):
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None = None

    def cost(
        self,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cached_tokens: int | None = None,
    ) -> Decimal | None:
        """Exact USD cost; cached tokens are a part of `prompt_tokens`.

        Cached tokens are billed at the cached price, or at the input price when the model has
        none. Unknown or negative counts give `None`.
        """
        if prompt_tokens is None or completion_tokens is None:
            return None
        cached = cached_tokens or 0
        if prompt_tokens < 0 or completion_tokens < 0 or cached < 0:
            return None
        cached = min(cached, prompt_tokens)
        cached_price = self.cached_input_per_million
        if cached_price is None:
            cached_price = self.input_per_million
        total = (
            (prompt_tokens - cached) * self.input_per_million
            + cached * cached_price
            + completion_tokens * self.output_per_million
        )
        return total.scaleb(_PER_MILLION_EXPONENT)


class _ShippedPrice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


class _ShippedTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: str
    as_of: str
    models: dict[str, _ShippedPrice]


def _name_variants(model: str) -> Iterator[str]:
    """The names to try for `model`, most specific first."""
    yield model
    name = model.rpartition("/")[2]
    if name != model:
        yield name
    if name.lower() != name:
        name = name.lower()
        yield name
    while True:
        base = _SNAPSHOT_SUFFIX.sub("", name, count=1)
        if base == name or not base:
            return
        name = base
        yield name


class PriceTable:
    """A read-only table of model prices with a memo of name lookups."""

    __slots__ = ("_lookups", "_prices", "as_of", "source")

    def __init__(
        self, prices: Mapping[str, ModelPrice], *, source: str = "", as_of: str = ""
    ) -> None:
        self._prices: dict[str, ModelPrice] = dict(prices)
        self._lookups: dict[str, ModelPrice | None] = {}
        self.source = source
        self.as_of = as_of

    @classmethod
    def shipped(cls) -> PriceTable:
        """The table that ships with Steerway (`providers/prices.json`)."""
        table = _shipped_table()
        return cls(_shipped_prices(), source=table.source, as_of=table.as_of)

    def with_overrides(self, overrides: Mapping[str, ModelPrice]) -> PriceTable:
        """A new table where `overrides` replace or add prices by exact model name."""
        return PriceTable({**self._prices, **overrides}, source=self.source, as_of=self.as_of)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of `model`, by exact name, then its 'provider/model' tail, then its base name
        without a snapshot suffix ('gpt-4o-mini-2024-07-18' -> 'gpt-4o-mini')."""
        try:
            return self._lookups[model]
        except KeyError:
            pass
        price = next((self._prices[n] for n in _name_variants(model) if n in self._prices), None)
        if len(self._lookups) >= _MAX_CACHED_NAMES:
            self._lookups.clear()
        self._lookups[model] = price
        return price

    def cost(
        self,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cached_tokens: int | None = None,
    ) -> Decimal | None:
        price = self.lookup(model)
        if price is None:
            return None
        return price.cost(prompt_tokens, completion_tokens, cached_tokens)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def __len__(self) -> int:
        return len(self._prices)

    def models(self) -> list[str]:
        """The exact model names the table holds, sorted."""
        return sorted(self._prices)

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models, as_of={self.as_of!r})"


@functools.cache
def _shipped_table() -> _ShippedTable:
    raw = resources.files(__package__ or "providers").joinpath("prices.json").read_bytes()
    return msgspec.json.decode(raw, type=_ShippedTable)


def _shipped_prices() -> dict[str, ModelPrice]:
    return {
        name: ModelPrice(entry.input, entry.output, entry.cached_input)
        for name, entry in _shipped_table().models.items()
    }
