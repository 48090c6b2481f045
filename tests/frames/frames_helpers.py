"""Helpers for the DataFrame, cost and queue tests (a uniquely named module)."""

from __future__ import annotations

from typing import Any

from batch_openai import BatchRequestBuilder, RetryPolicy

FAST = RetryPolicy(max_attempts=4, max_seconds=10, base_delay=0.01, max_delay=0.05)


def chat_requests(
    n: int, *, model: str = "gpt-4o-mini", prefix: str = "q", **params: Any
) -> BatchRequestBuilder:
    """A builder with `n` small chat requests whose ids are `{prefix}-{i}`."""
    b = BatchRequestBuilder()
    for i in range(n):
        b.add(
            [{"role": "user", "content": f"Say something about {prefix} {i}"}],
            model=model,
            custom_id=f"{prefix}-{i}",
            **params,
        )
    return b


def server_batches(client: Any) -> list[Any]:
    """Every batch the server holds, oldest first."""
    return list(reversed(list(client.batches.list(limit=100))))
