"""Token and cost estimates before submitting: input tokens from the request bodies, output from their limits.

No tokenizer ships offline (tiktoken's encodings are downloaded on first use), so input tokens use the one
heuristic the local server also uses for usage and its enqueued-token limit (`batch_openai.tokens`):
a token is a run of up to 4 letters, up to 3 digits or one symbol (~4 characters of English), plus 3 tokens
per chat message and 3 for the reply. Real counts differ by roughly ±10-20 % on English text, more on code
or other languages; treat the figures as estimates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from batch_openai._pricing import PriceLike, price_for
from batch_openai.tokens import file_input_tokens, request_input_tokens

__all__ = ["CostEstimate", "estimate_cost", "file_input_tokens", "input_tokens", "max_output_tokens"]


def input_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """Estimated input tokens of one request body (the local server's rule)."""
    return request_input_tokens(endpoint, body)


def max_output_tokens(endpoint: str, body: Mapping[str, Any]) -> int | None:
    """The most output tokens a request can be billed for, or None when it sets no limit."""
    n = body.get("n") or 1
    n = n if isinstance(n, int) and n > 0 else 1
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return 0
    if endpoint == "/v1/chat/completions":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
    elif endpoint == "/v1/responses":
        limit = body.get("max_output_tokens")
    elif endpoint == "/v1/completions":
        limit = body.get("max_tokens", 16)  # the endpoint's documented default
        prompts = body.get("prompt")
        if isinstance(prompts, list) and prompts and not all(isinstance(x, int) for x in prompts):
            n *= len(prompts)
    else:
        return None
    return int(limit) * n if isinstance(limit, int) and not isinstance(limit, bool) else None


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    """One model's share of an estimate."""

    requests: int
    input_tokens: int
    max_output_tokens: int | None
    low: float | None
    high: float | None


class CostEstimate(float):
    """A cost estimate in USD, usable as a number (its value is `.low`); `.high` is the upper bound.

    `.low`: the input tokens at the input price (a lower bound: outputs cost more, a cache hit less).
    `.high`: plus every request's output-token limit at the output price; None when a request sets none.
    When a model's price is unknown the value is NaN and `.low`/`.high` are None (`.unknown_models`).
    """

    low: float | None
    high: float | None
    input_tokens: int
    max_output_tokens: int | None
    by_model: dict[str, ModelEstimate]
    unknown_models: list[str]

    def __new__(cls, by_model: Mapping[str, ModelEstimate]) -> CostEstimate:
        models = dict(by_model)
        unknown = [m for m, e in models.items() if e.low is None]
        low = None if unknown else sum(e.low or 0.0 for e in models.values())
        highs = [e.high for e in models.values()]
        high = None if unknown or None in highs else sum(h or 0.0 for h in highs)
        self = super().__new__(cls, math.nan if low is None else low)
        self.low, self.high, self.by_model, self.unknown_models = low, high, models, unknown
        self.input_tokens = sum(e.input_tokens for e in models.values())
        outs = [e.max_output_tokens for e in models.values()]
        self.max_output_tokens = None if None in outs else sum(o or 0 for o in outs)
        return self

    def __repr__(self) -> str:
        if self.low is None:
            return f"CostEstimate(unknown price for {', '.join(self.unknown_models)})"
        high = "unbounded" if self.high is None else f"${self.high:.6g}"
        return f"CostEstimate(${self.low:.6g} .. {high}, {self.input_tokens:,} input tokens)"

    def __reduce__(self) -> Any:
        return (CostEstimate, (self.by_model,))


@dataclass
class _Acc:
    requests: int = 0
    inp: int = 0
    out: int | None = 0


def estimate_cost(
    requests: Iterable[tuple[str, str, dict[str, Any]]], prices: Mapping[str, PriceLike] | None = None
) -> CostEstimate:
    """Estimate the cost of (endpoint, model, body) requests at batch prices."""
    count = request_input_tokens
    acc: dict[str, _Acc] = {}
    for endpoint, model, body in requests:
        a = acc.setdefault(model, _Acc())
        a.requests += 1
        a.inp += count(endpoint, body)
        limit = max_output_tokens(endpoint, body)
        a.out = None if a.out is None or limit is None else a.out + limit
    out: dict[str, ModelEstimate] = {}
    for model, a in acc.items():
        price = price_for(model, prices)
        low = None if price is None else a.inp * price.input / 1e6
        high = None if low is None or a.out is None or price is None else low + a.out * price.output / 1e6
        out[model] = ModelEstimate(a.requests, a.inp, a.out, low, high)
    return CostEstimate(out)
