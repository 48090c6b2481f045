"""Token usage of a result (summed over its lines, per model, checked against the batch's own `usage`).

`TokenUsage` is a dict of the raw sums (the response bodies' own keys, as `BatchResult.usage` always gave)
with normalised attributes on top: `input_tokens`, `cached_tokens`, `output_tokens`, `reasoning_tokens`,
`total_tokens`, whatever the endpoint called them (`prompt_tokens` …).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch_openai._pricing import PriceLike, cost_of, usage_numbers

if TYPE_CHECKING:
    from batch_openai._items import BatchResultItem

__all__ = ["TokenCounts", "TokenUsage", "batch_usage_of", "summarise_usage"]

log = logging.getLogger("batch_openai")


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Normalised token counts: input (cached among them), output (reasoning among them) and total."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input_tokens + other.input_tokens,
            self.cached_tokens + other.cached_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any]) -> TokenCounts:
        """Counts from one `usage` dict of any endpoint (chat, responses, embeddings, batch)."""
        inp, cached, out, reasoning = usage_numbers(usage)
        total = usage.get("total_tokens")
        total = total if isinstance(total, int) and not isinstance(total, bool) else inp + out
        return cls(inp, cached, out, reasoning, total)

    def as_usage(self) -> dict[str, Any]:
        """The counts in the Responses/batch `usage` shape (what `cost_of` reads)."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


class TokenUsage(dict[str, Any]):
    """Token usage summed over a result: the raw sums as a dict, normalised counts as attributes."""

    counts: TokenCounts
    by_model: dict[str | None, TokenCounts]
    batch: TokenCounts | None

    def __init__(
        self,
        raw: Mapping[str, Any],
        by_model: Mapping[str | None, TokenCounts],
        batch: TokenCounts | None = None,
    ) -> None:
        super().__init__(raw)
        self.by_model = dict(by_model)
        self.counts = sum(self.by_model.values(), TokenCounts())
        self.batch = batch

    @property
    def input_tokens(self) -> int:
        """Input (prompt) tokens, cached ones included."""
        return self.counts.input_tokens

    @property
    def cached_tokens(self) -> int:
        """Input tokens served from the prompt cache (charged at the cached price)."""
        return self.counts.cached_tokens

    @property
    def output_tokens(self) -> int:
        """Output (completion) tokens, reasoning ones included."""
        return self.counts.output_tokens

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens (part of the output tokens)."""
        return self.counts.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        """Total tokens as the responses report them."""
        return self.counts.total_tokens

    @property
    def matches_batch(self) -> bool | None:
        """True/False: the line sums equal the batch's own `usage`; None when the batch reported none."""
        if self.batch is None:
            return None
        c, b = self.counts, self.batch
        return (c.input_tokens, c.cached_tokens, c.output_tokens, c.reasoning_tokens) == (
            b.input_tokens,
            b.cached_tokens,
            b.output_tokens,
            b.reasoning_tokens,
        )

    def cost(self, prices: Mapping[str, PriceLike] | None = None) -> float | None:
        """USD at batch prices, summed over models; None when any model with tokens has no known price."""
        total = 0.0
        for model, counts in self.by_model.items():
            if counts == TokenCounts():
                continue
            value = cost_of(counts.as_usage(), model, prices)
            if value is None:
                return None
            total += value
        return total


def _add_raw(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_raw(total.setdefault(key, {}), value)


def summarise_usage(items: Iterable[BatchResultItem], batch: TokenCounts | None = None) -> TokenUsage:
    """Sum the usage of every succeeded item (one streamed pass), per model; compare with `batch`."""
    raw: dict[str, Any] = {}
    by_model: dict[str | None, TokenCounts] = {}
    for item in items:
        if not item.ok:
            continue
        body = item.raw_response  # decoded once for both usage and model
        usage = body.get("usage") if type(body) is dict else None
        if not usage or not isinstance(usage, dict):
            continue
        _add_raw(raw, usage)
        model = body.get("model") if isinstance(body.get("model"), str) else None  # type: ignore[union-attr]
        by_model[model] = by_model.get(model, TokenCounts()) + TokenCounts.from_usage(usage)
    result = TokenUsage(raw, by_model, batch)
    if result.matches_batch is False:
        log.warning(
            "batch_openai: token usage summed over the result lines %s differs from the batch's usage %s",
            result.counts,
            batch,
        )
    return result


def batch_usage_of(batches: Sequence[Any]) -> TokenCounts | None:
    """The batches' own `usage`, summed; None when any batch does not report one."""
    total = TokenCounts()
    for b in batches:
        usage = getattr(b, "usage", None)
        if usage is None:
            return None
        data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        total = total + TokenCounts.from_usage(data)
    return total
