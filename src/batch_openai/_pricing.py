"""Batch prices (USD per 1M tokens) and the cost of token usage at those prices.

The table holds OpenAI's list prices for the Batch API, which are 50 % of the standard (synchronous)
prices: input, cached input and output, per 1M tokens. Prices change: check PRICES_SOURCE before relying
on a figure, and override any of them with `register_prices(...)` or a `prices=` argument.

A model name matches its table entry exactly, or as a dated snapshot of it (`gpt-4o-2024-08-06` →
`gpt-4o`). No other prefix matching: `gpt-5.4-mini` is *not* priced as `gpt-5`, it is unknown (None).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BATCH_PRICES",
    "PRICES_AS_OF",
    "PRICES_SOURCE",
    "ModelPrice",
    "cost_of",
    "price_for",
    "register_prices",
]

PRICES_SOURCE = "https://platform.openai.com/docs/pricing (Batch = 50 % of Standard)"
PRICES_AS_OF = "2025-12-15"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens at batch prices: input, cached input and output."""

    input: float
    output: float
    cached_input: float | None = None  # None: cached tokens cost the full input price

    @property
    def cached(self) -> float:
        """The price of a cached input token (the input price when the model has no cache discount)."""
        return self.input if self.cached_input is None else self.cached_input


def _half(inp: float, cached: float | None, out: float) -> ModelPrice:
    # The table is written in standard prices (as the pricing page shows them) and halved here.
    return ModelPrice(input=inp / 2, output=out / 2, cached_input=None if cached is None else cached / 2)


# Standard list prices (input, cached input, output) per 1M tokens, halved into batch prices.
BATCH_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": _half(2.50, 1.25, 10.00),
    "gpt-4o-mini": _half(0.15, 0.075, 0.60),
    "gpt-4.1": _half(2.00, 0.50, 8.00),
    "gpt-4.1-mini": _half(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _half(0.10, 0.025, 0.40),
    "gpt-5": _half(1.25, 0.125, 10.00),
    "gpt-5.1": _half(1.25, 0.125, 10.00),
    "gpt-5.2": _half(1.75, 0.175, 14.00),
    "gpt-5-mini": _half(0.25, 0.025, 2.00),
    "gpt-5-nano": _half(0.05, 0.005, 0.40),
    "o3": _half(2.00, 0.50, 8.00),
    "o4-mini": _half(1.10, 0.275, 4.40),
    "text-embedding-3-small": _half(0.02, None, 0.0),
    "text-embedding-3-large": _half(0.13, None, 0.0),
    "text-embedding-ada-002": _half(0.10, None, 0.0),
    "omni-moderation-latest": ModelPrice(0.0, 0.0, 0.0),  # moderation is free
}
# Dated snapshots and aliases: "-2024-08-06", "-latest".
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|latest)$")
_lock = threading.Lock()

PriceLike = ModelPrice | Sequence[float] | Mapping[str, float]


def as_price(value: PriceLike, model: str = "?") -> ModelPrice:
    """A `ModelPrice` from a ModelPrice, `[input, output]`, `[input, cached_input, output]` or a dict."""
    if isinstance(value, ModelPrice):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"input", "output", "cached_input"}
        if unknown or "input" not in value or "output" not in value:
            raise ValueError(
                f"price for {model!r}: a dict needs 'input' and 'output' (and optionally 'cached_input') "
                f"in USD per 1M tokens, got keys {sorted(value)}"
            )
        cached = value.get("cached_input")
        return ModelPrice(
            float(value["input"]), float(value["output"]), None if cached is None else float(cached)
        )
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (2, 3):
        nums = [float(v) for v in value]
        if len(nums) == 2:
            return ModelPrice(nums[0], nums[1])
        return ModelPrice(nums[0], nums[2], nums[1])
    raise ValueError(
        f"price for {model!r} must be [input, output] or [input, cached_input, output] in USD per 1M "
        f"tokens (batch prices), got {value!r}"
    )


def register_prices(prices: Mapping[str, PriceLike]) -> None:
    """Add or replace batch prices for this process, e.g. `{"my-model": [0.1, 0.4]}` (USD per 1M tokens)."""
    parsed = {model: as_price(value, model) for model, value in prices.items()}
    for model, price in parsed.items():
        if min(price.input, price.output, price.cached) < 0:
            raise ValueError(f"price for {model!r} is negative; prices are USD per 1M tokens, >= 0")
    with _lock:
        BATCH_PRICES.update(parsed)


def price_for(model: str | None, prices: Mapping[str, PriceLike] | None = None) -> ModelPrice | None:
    """The batch price of `model` (`prices` first, then the table; a dated snapshot matches), or None."""
    if not model:
        return None
    for name in (model, _SNAPSHOT.sub("", model)):
        if prices and name in prices:
            return as_price(prices[name], name)
        found = BATCH_PRICES.get(name)
        if found is not None:
            return found
    return None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def usage_numbers(usage: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(input, cached, output, reasoning) tokens of a usage dict in any endpoint's shape."""
    inp = _int(usage.get("input_tokens", usage.get("prompt_tokens")))
    out = _int(usage.get("output_tokens", usage.get("completion_tokens")))
    din = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    dout = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    cached = _int(din.get("cached_tokens")) if isinstance(din, Mapping) else 0
    reasoning = _int(dout.get("reasoning_tokens")) if isinstance(dout, Mapping) else 0
    return inp, cached, out, reasoning


def cost_of(
    usage: Mapping[str, Any], model: str | None, prices: Mapping[str, PriceLike] | None = None
) -> float | None:
    """USD for one model's `usage` (any endpoint's shape) at batch prices; None when the price is unknown.

    Cached input tokens are charged at the cached price, the rest of the input at the input price;
    reasoning tokens are part of the output tokens and charged as output.
    """
    price = price_for(model, prices)
    if price is None:
        return None
    inp, cached, out, _ = usage_numbers(usage)
    cached = min(cached, inp)
    return ((inp - cached) * price.input + cached * price.cached + out * price.output) / 1e6
