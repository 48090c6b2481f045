"""One algorithm, two drivers: every lifecycle operation is written once, as steps, and run sync or async.

A *steps* generator holds all the decisions of an operation (what to call, when to retry, when to sleep)
and yields the I/O it needs as small ops; `run_sync` and `run_async` carry them out with an
`openai.OpenAI` or an `openai.AsyncOpenAI` client and send each answer (or throw each error) back in.
This is how httpx drives one auth algorithm from both its clients: the decisions cannot drift, because
there is only one copy of them; the two drivers below are the only code that knows sync from async.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from batch_openai._errors import OpenAIBatchError, classify, retry_after_seconds, translate
from batch_openai._retry import DEFAULT_POLICY, RetryPolicy

__all__ = [
    "Blocking",
    "Call",
    "Download",
    "Sleep",
    "Steps",
    "Upload",
    "call",
    "retried",
    "retried_call",
    "run_async",
    "run_sync",
]

T = TypeVar("T")
log = logging.getLogger("batch_openai")


@dataclass(frozen=True)
class Call:
    """Call the SDK: `fn(client)` returns the answer (sync client) or an awaitable of it (async client)."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds."""

    seconds: float


@dataclass(frozen=True)
class Blocking:
    """Local blocking work (hashing a file, a registry write): inline when sync, in a thread when async."""

    fn: Callable[[], Any]


@dataclass(frozen=True)
class Upload:
    """Upload a batch input file, streamed from disk (`purpose="batch"`); answers the SDK's `FileObject`."""

    path: Path


@dataclass(frozen=True)
class Download:
    """Stream a file's content to `dest`, whole or not at all (a temp name renamed on success)."""

    file_id: str
    dest: Path


Op = Call | Sleep | Blocking | Upload | Download
Steps = Generator[Op, Any, T]


def _partial(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}.part")


# ---------------------------------------------------------------- the two drivers
def run_sync(steps: Steps[T], client: Any) -> T:
    """Carry out `steps` with a sync `openai.OpenAI` client; return what the steps return."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as done:
            return done.value
        answer, error = None, None
        try:
            if isinstance(op, Call):
                answer = op.fn(client)
            elif isinstance(op, Sleep):
                time.sleep(op.seconds)
            elif isinstance(op, Blocking):
                answer = op.fn()
            elif isinstance(op, Upload):
                with open(op.path, "rb") as f:  # reopened per attempt so a retry sends the whole file
                    answer = client.files.create(file=(op.path.name, f), purpose="batch")
            else:
                part = _partial(op.dest)
                try:
                    with (
                        client.files.with_streaming_response.content(op.file_id) as response,
                        open(part, "wb") as f,
                    ):
                        for chunk in response.iter_bytes(1 << 20):
                            f.write(chunk)
                    os.replace(part, op.dest)
                finally:
                    part.unlink(missing_ok=True)
                answer = op.dest
        except Exception as exc:
            error = exc


async def run_async(steps: Steps[T], client: Any) -> T:
    """Carry out `steps` with an `openai.AsyncOpenAI` client; return what the steps return."""
    import asyncio

    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as done:
            return done.value
        answer, error = None, None
        try:
            if isinstance(op, Call):
                answer = await op.fn(client)
            elif isinstance(op, Sleep):
                await asyncio.sleep(op.seconds)
            elif isinstance(op, Blocking):
                answer = await asyncio.to_thread(op.fn)
            elif isinstance(op, Upload):
                with open(op.path, "rb") as f:
                    answer = await client.files.create(file=(op.path.name, f), purpose="batch")
            else:
                part = _partial(op.dest)
                try:
                    async with client.files.with_streaming_response.content(op.file_id) as response:
                        with open(part, "wb") as f:
                            async for chunk in response.iter_bytes(1 << 20):
                                f.write(chunk)
                    os.replace(part, op.dest)
                finally:
                    part.unlink(missing_ok=True)
                answer = op.dest
        except Exception as exc:
            error = exc


# ---------------------------------------------------------------- retries, as steps
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


def retried(
    attempt_steps: Callable[[], Steps[T]], *, policy: RetryPolicy | None = None, context: str = ""
) -> Steps[T]:
    """Run `attempt_steps()` until it succeeds, retrying transient API errors under `policy`.

    SDK errors come out as library errors (`BatchTransientError`, `BatchAuthError`, ...). One attempt may
    be several calls (look for a batch, then create it): the whole attempt is what is retried.
    """
    policy = policy or DEFAULT_POLICY
    started = time.monotonic()
    attempt = auth_tries = 0
    while True:
        attempt += 1
        try:
            return (yield from attempt_steps())
        except OpenAIBatchError:
            raise
        except Exception as exc:
            auth_tries += classify(exc) == "auth"
            wait = _next_delay(exc, attempt, auth_tries, policy, started)
            if wait is None:
                mapped = translate(exc, attempts=attempt, context=context)
                if mapped is None:
                    raise
                raise mapped from exc
            log.info(
                "batch_openai: %s failed (%s); retry %d in %.2fs",
                context or "call",
                type(exc).__name__,
                attempt,
                wait,
            )
            yield Sleep(wait)


def _once(op: Op) -> Callable[[], Steps[Any]]:
    def attempt() -> Steps[Any]:
        return (yield op)

    return attempt


def retried_call(
    fn: Callable[[Any], Any] | Op, *, policy: RetryPolicy | None = None, context: str = ""
) -> Steps[Any]:
    """One SDK call (`fn(client)`) or one upload/download op, retried under `policy`."""
    op = fn if isinstance(fn, Call | Upload | Download) else Call(fn)
    return retried(_once(op), policy=policy, context=context)


def call(fn: Callable[[], T], *, policy: RetryPolicy | None = None, context: str = "") -> T:
    """Run the plain function `fn` under the retry policy, synchronously (for one-off calls outside steps)."""
    return run_sync(retried_call(lambda _client: fn(), policy=policy, context=context), None)
