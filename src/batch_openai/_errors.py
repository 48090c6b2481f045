"""The exception family, and the one place that maps the `openai` SDK's exceptions onto it.

Everything the library raises on purpose derives from `OpenAIBatchError`. The SDK is imported lazily
(inside functions) so that `import batch_openai` stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from batch_openai._result import BatchResult

__all__ = [
    "BatchAuthError",
    "BatchConflictError",
    "BatchJobError",
    "BatchNotFoundError",
    "BatchParseError",
    "BatchRegistryError",
    "BatchStorageError",
    "BatchTimeoutError",
    "BatchTransientError",
    "BatchValidationError",
    "ErrorKind",
    "OpenAIBatchError",
    "classify",
    "redact",
    "retry_after_seconds",
    "translate",
]

# API keys must never reach exception text or logs: the service sometimes echoes a (partly masked) key.
_KEY_RE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|sess-[A-Za-z0-9_\-*]{8,}|Bearer\s+\S+)")


def redact(text: str) -> str:
    """Replace anything that looks like an API key or bearer token with `***`."""
    return _KEY_RE.sub("***", text)


class OpenAIBatchError(Exception):
    """Base class of every error this library raises."""


class BatchValidationError(OpenAIBatchError, ValueError):
    """A request or input is invalid (checked locally, or a 400/422 from the service); never retried."""

    def __init__(
        self,
        message: str,
        *,
        custom_id: str | None = None,
        line: int | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.custom_id = custom_id
        self.line = line
        self.param = param  # the request parameter at fault, when one is
        self.status_code = status_code
        self.request_id = request_id


class BatchStorageError(OpenAIBatchError, ValueError):
    """A path or URL that cannot be used: an unknown scheme, a missing back end (its extra), a missing
    object, or storage that refused a read or write."""


class BatchTransientError(OpenAIBatchError):
    """A 429 / 5xx / connection / timeout error that persisted after every retry."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(redact(message))
        self.status_code = status_code
        self.request_id = request_id
        self.attempts = attempts


class BatchAuthError(OpenAIBatchError):
    """Authentication (401) or permission (403) failure that persisted after a single retry."""

    def __init__(
        self, message: str, *, status_code: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(redact(message))
        self.status_code = status_code
        self.request_id = request_id


class BatchNotFoundError(OpenAIBatchError, LookupError):
    """The batch or file does not exist (404)."""

    def __init__(self, message: str, *, status_code: int | None = 404, request_id: str | None = None) -> None:
        super().__init__(redact(message))
        self.status_code = status_code
        self.request_id = request_id


class BatchConflictError(OpenAIBatchError):
    """The service refused the operation in the object's current state (409, e.g. cancel a finished batch)."""

    def __init__(self, message: str, *, status_code: int | None = 409, request_id: str | None = None) -> None:
        super().__init__(redact(message))
        self.status_code = status_code
        self.request_id = request_id


class BatchTimeoutError(OpenAIBatchError, TimeoutError):
    """`wait(timeout=...)` ran out before the batch reached a terminal state; the batch keeps running."""

    def __init__(self, message: str, *, batch_id: str | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.status = status


class BatchRegistryError(OpenAIBatchError):
    """The registry's Prefect state could not be reached or written; the message says where and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class BatchJobError(OpenAIBatchError):
    """The batch ended `failed`, `expired` or `cancelled`; `.result` holds whatever did finish."""

    def __init__(
        self,
        message: str,
        *,
        status: str,
        batch_id: str,
        errors: Sequence[Any] = (),
        result: BatchResult | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.status = status
        self.batch_id = batch_id
        self.errors = list(errors)
        self.result = result


class BatchParseError(OpenAIBatchError, ValueError):
    """`result.parse(Model)` could not validate some responses; `.failures` lists (custom_id, reason)."""

    def __init__(self, failures: Sequence[tuple[str, str]], *, parsed: Sequence[Any] = ()) -> None:
        self.failures = list(failures)
        self.parsed = list(parsed)
        shown = "; ".join(f"{cid}: {reason}" for cid, reason in self.failures[:10])
        more = f" (and {len(self.failures) - 10} more)" if len(self.failures) > 10 else ""
        super().__init__(redact(f"{len(self.failures)} response(s) failed to parse: {shown}{more}"))

    @property
    def custom_ids(self) -> list[str]:
        """The custom_ids whose responses did not parse."""
        return [cid for cid, _ in self.failures]


ErrorKind = Literal["transient", "auth", "validation", "not_found", "conflict", "other"]


def _status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The transport-error bases of the HTTP libraries the SDK may be running on.

    The SDK wraps errors raised while *sending* a request in `APIConnectionError`, but not those raised
    while a streamed body is read (`iter_bytes`): a connection cut mid-download surfaces as the HTTP
    library's own `RemoteProtocolError` / `ReadError` / `ReadTimeout`. The SDK runs on httpx2 (loaded with
    it); it also accepts a plain `httpx` client, whose errors can only exist if httpx was imported already.
    """
    import sys

    import httpx2

    found: list[type[BaseException]] = [httpx2.TransportError]
    legacy = sys.modules.get("httpx")
    if legacy is not None and isinstance(getattr(legacy, "TransportError", None), type):
        found.append(legacy.TransportError)
    return tuple(found)


def classify(exc: BaseException) -> ErrorKind | None:
    """Say what kind of failure an SDK (or its HTTP library's) exception is, or None if it is neither."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return "transient"
    if isinstance(exc, _transport_errors()):  # a body cut or stalled while it streamed
        return "transient"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (401, 403):
            return "auth"
        if status == 404:
            return "not_found"
        if status == 409:
            return "conflict"
        if status in (408, 429) or status >= 500:
            return "transient"
        if 400 <= status < 500:
            return "validation"
        return "other"
    if isinstance(exc, openai.APIResponseValidationError):
        return "other"
    return None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested delay (`retry-after-ms` or `retry-after`, seconds), if the error carries one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            import email.utils
            import time

            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if seconds >= 0:
            return seconds
    return None


def _describe(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = getattr(exc, "message", None) or str(exc)
        return f"HTTP {exc.status_code} from {exc.request.method} {exc.request.url.path}: {message}"
    if isinstance(exc, openai.APITimeoutError):
        return f"request timed out: {exc.request.method} {exc.request.url.path}"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection error on {exc.request.method} {exc.request.url.path}: {exc.__cause__ or exc}"
    if isinstance(exc, _transport_errors()):
        return f"connection error while reading the response ({type(exc).__name__}): {exc}"
    return str(exc)


def translate(exc: BaseException, *, attempts: int = 1, context: str = "") -> OpenAIBatchError | None:
    """Map an SDK exception to the matching library exception (None when it is not an SDK API error)."""
    kind = classify(exc)
    if kind is None:
        return None
    status = _status_of(exc)
    request_id = getattr(exc, "request_id", None)
    prefix = f"{context}: " if context else ""
    text = prefix + _describe(exc)
    if kind == "transient":
        return BatchTransientError(
            f"{text} (gave up after {attempts} attempt(s))",
            status_code=status,
            request_id=request_id,
            attempts=attempts,
        )
    if kind == "auth":
        return BatchAuthError(
            f"{text} — check OPENAI_API_KEY and the project's permissions",
            status_code=status,
            request_id=request_id,
        )
    if kind == "validation":
        return BatchValidationError(text, status_code=status, request_id=request_id)
    if kind == "not_found":
        return BatchNotFoundError(text, status_code=status, request_id=request_id)
    if kind == "conflict":
        return BatchConflictError(text, status_code=status, request_id=request_id)
    err = OpenAIBatchError(redact(text))
    err.status_code = status  # type: ignore[attr-defined]
    return err
