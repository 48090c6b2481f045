"""The library's single retry layer: exponential backoff with full jitter, honouring Retry-After.

The SDK's own retries are switched off on every client we use (`no_sdk_retries`), so one call to the
library makes at most `RetryPolicy.max_attempts` HTTP attempts, never SDK attempts times ours.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from batch_openai._errors import OpenAIBatchError, classify, retry_after_seconds, translate

__all__ = ["RetryPolicy", "acall", "call", "no_sdk_retries"]

T = TypeVar("T")
log = logging.getLogger("batch_openai")


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


def _next_delay(
    exc: BaseException, attempt: int, auth_tries: int, policy: RetryPolicy, started: float
) -> float | None:
    """The wait before another attempt, or None when `exc` must be raised now."""
    kind = classify(exc)
    if kind == "auth":
        if auth_tries > policy.auth_retries or attempt >= policy.max_attempts:
            return None
        return policy.delay(attempt)
    if kind != "transient" or attempt >= policy.max_attempts:
        return None
    wait = policy.delay(attempt, retry_after_seconds(exc))
    if time.monotonic() - started + wait > policy.max_seconds:
        return None
    return wait


def _delay_or_raise(
    exc: Exception, attempt: int, auth_tries: int, policy: RetryPolicy, started: float, context: str
) -> float:
    """Seconds to wait before the next attempt, or raise `exc` as a library error when no retry is left."""
    wait = _next_delay(exc, attempt, auth_tries, policy, started)
    if wait is None:
        mapped = translate(exc, attempts=attempt, context=context)
        if mapped is None:
            raise exc
        raise mapped from exc
    name = type(exc).__name__
    log.info("batch_openai: %s failed (%s); retry %d in %.2fs", context or "call", name, attempt, wait)
    return wait


def call(fn: Callable[[], T], *, policy: RetryPolicy | None = None, context: str = "") -> T:
    """Run `fn` with retries; SDK errors come out as library errors (`BatchTransientError` etc.)."""
    policy = policy or DEFAULT_POLICY
    started = time.monotonic()
    attempt = auth_tries = 0
    while True:
        attempt += 1
        try:
            return fn()
        except OpenAIBatchError:
            raise
        except Exception as exc:
            if classify(exc) == "auth":
                auth_tries += 1
            time.sleep(_delay_or_raise(exc, attempt, auth_tries, policy, started, context))


async def acall(fn: Callable[[], Awaitable[T]], *, policy: RetryPolicy | None = None, context: str = "") -> T:
    """Async twin of `call`."""
    policy = policy or DEFAULT_POLICY
    started = time.monotonic()
    attempt = auth_tries = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except OpenAIBatchError:
            raise
        except Exception as exc:
            if classify(exc) == "auth":
                auth_tries += 1
            import asyncio  # only async callers pay for it

            await asyncio.sleep(_delay_or_raise(exc, attempt, auth_tries, policy, started, context))
