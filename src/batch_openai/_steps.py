"""One algorithm, two drivers: every lifecycle operation is written once, as steps, and run sync or async.

A *steps* generator holds all the decisions of an operation (what to call, when to retry, when to sleep)
and yields the I/O it needs as small ops; `run_sync` and `run_async` carry them out with an
`openai.OpenAI` or an `openai.AsyncOpenAI` client and send each answer (or throw each error) back in.
This is how httpx drives one auth algorithm from both its clients: the decisions cannot drift, because
there is only one copy of them; the two drivers below are the only code that knows sync from async, and
`twins` makes a public sync function and its `async_` twin from one steps definition.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from batch_openai._errors import OpenAIBatchError, classify, retry_after_seconds, translate
from batch_openai._retry import DEFAULT_POLICY, RetryPolicy, no_sdk_retries

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
    "twins",
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
@dataclass(frozen=True)
class _Done:
    value: Any


def _advance(steps: Steps[Any], answer: Any = None, error: BaseException | None = None) -> Op | _Done:
    """Send the last answer (or throw the last error) into `steps`: the next op, or what they returned."""
    try:
        return steps.throw(error) if error is not None else steps.send(answer)
    except StopIteration as done:
        return _Done(done.value)


def run_sync(steps: Steps[T], client: Any) -> T:
    """Carry out `steps` with a sync `openai.OpenAI` client; return what the steps return."""
    op = _advance(steps)
    while not isinstance(op, _Done):
        try:
            answer = _execute_sync(op, client)
        except Exception as exc:  # the steps decide: retry, clean up, or let it out
            op = _advance(steps, error=exc)
        else:
            op = _advance(steps, answer)
    return op.value


async def run_async(steps: Steps[T], client: Any) -> T:
    """Carry out `steps` with an `openai.AsyncOpenAI` client; return what the steps return."""
    op = _advance(steps)
    while not isinstance(op, _Done):
        try:
            answer = await _execute_async(op, client)
        except Exception as exc:
            op = _advance(steps, error=exc)
        else:
            op = _advance(steps, answer)
    return op.value


def _execute_sync(op: Op, client: Any) -> Any:
    """One op, blocking: the sync client's I/O."""
    if isinstance(op, Call):
        return op.fn(client)
    if isinstance(op, Sleep):
        return time.sleep(op.seconds)
    if isinstance(op, Blocking):
        return op.fn()
    if isinstance(op, Upload):
        with open(op.path, "rb") as f:  # reopened per attempt so a retry sends the whole file
            return client.files.create(file=(op.path.name, f), purpose="batch")
    part = _partial(op.dest)
    try:
        with client.files.with_streaming_response.content(op.file_id) as response, open(part, "wb") as f:
            for chunk in response.iter_bytes(1 << 20):
                f.write(chunk)
        os.replace(part, op.dest)
    finally:
        part.unlink(missing_ok=True)
    return op.dest


async def _execute_async(op: Op, client: Any) -> Any:
    """One op, awaited: the async client's I/O (local blocking work goes to a thread)."""
    import asyncio

    if isinstance(op, Call):
        return await op.fn(client)
    if isinstance(op, Sleep):
        return await asyncio.sleep(op.seconds)
    if isinstance(op, Blocking):
        return await asyncio.to_thread(op.fn)
    if isinstance(op, Upload):
        with open(op.path, "rb") as f:
            return await client.files.create(file=(op.path.name, f), purpose="batch")
    part = _partial(op.dest)
    try:
        async with client.files.with_streaming_response.content(op.file_id) as response:
            with open(part, "wb") as f:
                async for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
        os.replace(part, op.dest)
    finally:
        part.unlink(missing_ok=True)
    return op.dest


# ---------------------------------------------------------------- twins: one definition, two drivers
def _twin_signature(
    steps_fn: Callable[..., Any], client_at: int | None, client_name: str
) -> inspect.Signature:
    """`steps_fn`'s signature as its driver shows it: returning what the steps return, the client renamed."""
    sig = inspect.signature(steps_fn)
    ret = sig.return_annotation
    if isinstance(ret, str) and ret.startswith("Steps[") and ret.endswith("]"):
        ret = ret[len("Steps[") : -1]
    params = list(sig.parameters.values())
    if client_at is not None:
        params[client_at] = params[client_at].replace(name=client_name)
    return sig.replace(parameters=params, return_annotation=ret)


def _named(fn: Any, steps_fn: Callable[..., Any], name: str, doc: str, sig: inspect.Signature) -> Any:
    functools.update_wrapper(fn, steps_fn)
    fn.__name__ = name
    fn.__qualname__ = (
        f"{steps_fn.__qualname__.rsplit('.', 1)[0]}.{name}" if "." in steps_fn.__qualname__ else name
    )
    fn.__doc__ = doc
    fn.__signature__ = sig
    del fn.__wrapped__  # the signature above is the one to show
    return fn


def _is_async_client(client: Any) -> bool:
    batches = getattr(client, "batches", None)
    return batches is not None and inspect.iscoroutinefunction(getattr(batches, "retrieve", None))


def twins(
    steps_fn: Callable[..., Steps[Any]], *, bound: bool = False, client_attr: str | None = None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A sync function and its `async_` twin, both driving `steps_fn`: the sync one with an
    `openai.OpenAI` client, the async one with an `openai.AsyncOpenAI` client. Written once, they
    cannot drift.

    The client is `steps_fn`'s first argument (after `self`/`cls` when `bound`), with the SDK's own
    retries turned off; or, with `client_attr`, that attribute of `self`.
    """
    at = 1 if bound else 0
    name = steps_fn.__name__.lstrip("_")
    params = list(inspect.signature(steps_fn).parameters)

    def prepared(args: tuple[Any, ...], kwargs: dict[str, Any], alias: str) -> tuple[Steps[Any], Any]:
        if client_attr is not None:
            client = getattr(args[0], client_attr)
        elif len(args) > at:
            client = no_sdk_retries(args[at])
            args = (*args[:at], client, *args[at + 1 :])
        else:  # passed by keyword, under the name this twin shows
            client = kwargs[params[at]] = no_sdk_retries(kwargs.pop(alias))
        return steps_fn(*args, **kwargs), client

    def sync(*args: Any, **kwargs: Any) -> Any:
        steps, client = prepared(args, kwargs, "client")
        if _is_async_client(client):
            steps.close()
            raise TypeError(f"this holds an async client: use `await ...async_{name}(...)`, not {name}()")
        return run_sync(steps, client)

    async def asynchronous(*args: Any, **kwargs: Any) -> Any:
        return await run_async(*prepared(args, kwargs, "async_client"))

    doc = inspect.getdoc(steps_fn) or ""
    twin_doc = f"Async twin of `{name}`, for an `openai.AsyncOpenAI` client."
    if client_attr is not None:
        sync_sig = async_sig = _twin_signature(steps_fn, None, "")
    else:
        sync_sig = _twin_signature(steps_fn, at, "client")
        async_sig = _twin_signature(steps_fn, at, "async_client")
    return (
        _named(sync, steps_fn, name, doc, sync_sig),
        _named(asynchronous, steps_fn, f"async_{name}", twin_doc, async_sig),
    )


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
