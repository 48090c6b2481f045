"""Helpers shared by the library tests (a uniquely named module, so it never clashes with other conftests)."""

from __future__ import annotations

from typing import Any

from batch_openai import RetryPolicy

# Fast retries so fault tests take milliseconds, not the default seconds.
FAST = RetryPolicy(max_attempts=4, max_seconds=10, base_delay=0.01, max_delay=0.05)


def chat_builder(n: int, *, model: str = "gpt-4o-mini", prefix: str = "doc") -> Any:
    """A builder with `n` small chat requests whose ids are `{prefix}-{i}`."""
    from batch_openai import BatchRequestBuilder

    b = BatchRequestBuilder()
    for i in range(n):
        b.add(
            messages=[{"role": "user", "content": f"Say something about {prefix} {i}"}],
            model=model,
            custom_id=f"{prefix}-{i}",
        )
    return b
