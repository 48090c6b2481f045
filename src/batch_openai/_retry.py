"""The library's retry policy: exponential backoff with full jitter, honouring Retry-After.

The retry loop itself is written once, as steps (`_steps.retried`), for the sync and the async driver.
The SDK's own retries are switched off on every client we use (`no_sdk_retries`), so one call to the
library makes at most `RetryPolicy.max_attempts` HTTP attempts, never SDK attempts times ours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "no_sdk_retries"]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient API errors (429, 5xx, connection drops, timeouts) are retried."""

    max_attempts: int = 6
    """Total attempts including the first (1 = no retry)."""
    max_seconds: float = 120.0
    """Give up when the next wait would pass this much time since the first attempt."""
    base_delay: float = 0.5
    """First backoff ceiling in seconds; doubles each attempt."""
    max_delay: float = 30.0
    """Largest single backoff wait (a server's Retry-After is honoured as given, within max_seconds)."""
    auth_retries: int = 1
    """A 401/403 is retried this many times (a key rotation can race a call) before `BatchAuthError`."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_seconds < 0:
            raise ValueError("RetryPolicy delays must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): full jitter, or the server's ask."""
        if retry_after is not None:  # the server knows best; the max_seconds budget still bounds it
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0.0, ceiling)


DEFAULT_POLICY = RetryPolicy()


def no_sdk_retries(client: Any) -> Any:
    """Return a view of `client` whose own retries are off, so ours do not stack on the SDK's."""
    if getattr(client, "max_retries", 0) == 0:
        return client
    return client.with_options(max_retries=0)
