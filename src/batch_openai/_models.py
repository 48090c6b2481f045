"""Model-compatibility rules: which request parameters a model family rejects.

One table, easy to update. A request that breaks a rule would fail inside the batch with a 400 that is
never retried, so the builder refuses it before upload (opt out with `check_models=False`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MODEL_RULES", "ModelRule", "model_problems", "rejected_params"]


@dataclass(frozen=True)
class ModelRule:
    """Parameters a family of models does not accept, with the fix to suggest."""

    family: str
    pattern: re.Pattern[str]
    endpoints: frozenset[str]
    rejected: dict[str, str]  # parameter -> fix


_CHAT = "/v1/chat/completions"
_RESPONSES = "/v1/responses"

# gpt-5, gpt-5.1, gpt-5.2, gpt-5.4 and their -mini/-nano variants (seed README table); the "-chat"
# variants are non-reasoning models that accept sampling parameters, so they are excluded. o-series
# reasoning models follow the same rules.
MODEL_RULES: tuple[ModelRule, ...] = (
    ModelRule(
        family="gpt-5",
        pattern=re.compile(r"^gpt-5(\.\d+)?(?!.*-chat)(-[a-z0-9.\-]+)?$"),
        endpoints=frozenset({_CHAT}),
        rejected={
            "max_tokens": "use max_completion_tokens instead",
            "temperature": "omit temperature (not supported by gpt-5 models)",
            "logprobs": "omit logprobs (not supported by gpt-5 models)",
            "top_logprobs": "omit top_logprobs (not supported by gpt-5 models)",
        },
    ),
    ModelRule(
        family="gpt-5",
        pattern=re.compile(r"^gpt-5(\.\d+)?(?!.*-chat)(-[a-z0-9.\-]+)?$"),
        endpoints=frozenset({_RESPONSES}),
        rejected={
            "temperature": "omit temperature (not supported by gpt-5 models)",
            "top_logprobs": "omit top_logprobs (not supported by gpt-5 models)",
        },
    ),
    ModelRule(
        family="o-series",
        pattern=re.compile(r"^o\d(-[a-z0-9.\-]+)?$"),
        endpoints=frozenset({_CHAT}),
        rejected={
            "max_tokens": "use max_completion_tokens instead",
            "temperature": "omit temperature (not supported by o-series models)",
            "logprobs": "omit logprobs (not supported by o-series models)",
            "top_logprobs": "omit top_logprobs (not supported by o-series models)",
        },
    ),
)


@functools.lru_cache(maxsize=1024)
def rejected_params(endpoint: str, model: str) -> tuple[tuple[str, str], ...]:
    """(parameter, fix) pairs that `model` rejects on `endpoint`."""
    # Cached per (endpoint, model): a 50,000-request builder matches the regexes once, not 50,000 times.
    return tuple(
        (param, fix)
        for rule in MODEL_RULES
        if endpoint in rule.endpoints and rule.pattern.match(model)
        for param, fix in rule.rejected.items()
    )


def model_problems(endpoint: str, model: str, body: Mapping[str, object]) -> list[str]:
    """Describe each parameter in `body` that `model` rejects on `endpoint` (empty when all is well)."""
    return [
        f"model {model!r} does not accept {p!r}: {fix}"
        for p, fix in rejected_params(endpoint, model)
        if p in body
    ]
