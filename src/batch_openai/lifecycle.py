"""The rules of a batch's life, written once: statuses, poll cadence, late files, requeues, a line's fate.

No I/O here. The sync and async library, the Prefect tasks, the CLI and the local server all read these
rules from this module; none keeps a copy of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_MAX_POLL_INTERVAL",
    "FINGERPRINT_KEY",
    "IN_FLIGHT",
    "LATE_FILE_INTERVAL",
    "LATE_FILE_POLLS",
    "MIN_POLL_INTERVAL",
    "POLL_GROWTH",
    "RETRYABLE_CODES",
    "REUSABLE",
    "TERMINAL",
    "TOKEN_LIMIT_CODE",
    "PollCadence",
    "ResubmitReason",
    "aggregate_status",
    "error_code",
    "files_settled",
    "is_retryable",
    "is_settled",
    "limit_from_errors",
    "request_counts",
    "resubmit_reason",
    "reusable",
    "token_limited",
]

# ---------------------------------------------------------------- statuses
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
"""A batch in one of these never changes again (its file ids may still lag a poll behind)."""
IN_FLIGHT = frozenset({"validating", "in_progress", "finalizing"})
"""Queued or running: its input tokens count against the organisation's enqueued-token cap."""
REUSABLE = IN_FLIGHT | {"completed"}
"""A batch with the same fingerprint in one of these is reused instead of paying for a new one."""
_ACTIVE_ORDER = ("validating", "in_progress", "finalizing", "cancelling")
_BAD_ORDER = ("failed", "expired", "cancelled")

FINGERPRINT_KEY = "batch_openai_fingerprint"
"""The batch metadata key holding the sha256 of the input file: how a lost batch is found again."""

# ---------------------------------------------------------------- polling
MIN_POLL_INTERVAL = 0.05
"""The floor of every poll interval: `poll_interval=0` must not hammer the service."""
POLL_GROWTH = 1.5
DEFAULT_MAX_POLL_INTERVAL = 600.0
LATE_FILE_POLLS = 5
"""Extra polls a terminal batch gets for a promised output/error file id to appear."""
LATE_FILE_INTERVAL = 5.0


@dataclass
class PollCadence:
    """Poll intervals that start at `first` and grow by `growth` up to `maximum`, never below the floor."""

    first: float = 60.0
    maximum: float = DEFAULT_MAX_POLL_INTERVAL
    growth: float = POLL_GROWTH
    _current: float | None = field(default=None, init=False, repr=False)

    def next(self) -> float:
        """The seconds to sleep before the next poll (each call grows the interval)."""
        ceiling = max(self.maximum, self.first, MIN_POLL_INTERVAL)
        if self._current is None:
            self._current = min(max(self.first, MIN_POLL_INTERVAL), ceiling)
        else:
            self._current = min(self._current * self.growth, ceiling)
        return self._current

    def late_file(self) -> float:
        """The interval while a terminal batch's file id is awaited: short, whatever the cadence."""
        return min(max(self.first, MIN_POLL_INTERVAL), LATE_FILE_INTERVAL)


def aggregate_status(batches: Sequence[Any]) -> str:
    """One status for several batches: the least advanced active one, else the worst terminal one."""
    statuses = {b.status for b in batches}
    if len(statuses) == 1:
        return next(iter(statuses))
    for status in _ACTIVE_ORDER:
        if status in statuses:
            return "in_progress" if status == "validating" and statuses - {"validating"} else status
    for status in _BAD_ORDER:
        if status in statuses:
            return status
    return "completed"


def request_counts(batch: Any) -> tuple[int, int, int]:
    """(total, completed, failed) of one batch; zeros while the service has not counted yet."""
    counts = getattr(batch, "request_counts", None)
    if counts is None:
        return 0, 0, 0
    return int(counts.total or 0), int(counts.completed or 0), int(counts.failed or 0)


def files_settled(batch: Any) -> bool:
    """False while a terminal batch's counts promise a file whose id has not appeared yet."""
    if batch.status == "failed":
        return True
    _, completed, failed = request_counts(batch)
    return (batch.output_file_id is not None or not completed) and (
        batch.error_file_id is not None or not failed
    )


def is_settled(batch: Any) -> bool:
    """True when a batch is terminal and its result files are there: nothing more to wait for."""
    return batch.status in TERMINAL and files_settled(batch)


# ---------------------------------------------------------------- reuse and resubmission
def reusable(batch: Any, fingerprint: str, endpoint: str | None = None) -> bool:
    """True if `batch` carries `fingerprint`, is for `endpoint` (when given) and may be reused."""
    meta = batch.metadata or {}
    return (
        meta.get(FINGERPRINT_KEY) == fingerprint
        and batch.status in REUSABLE
        and (endpoint is None or batch.endpoint == endpoint)
    )


TOKEN_LIMIT_CODE = "token_limit_exceeded"
"""The batch-level code of a batch refused because its model's enqueued-token queue was full."""


def _batch_errors(batch: Any) -> list[Any]:
    errors = getattr(batch, "errors", None)
    if isinstance(errors, Mapping):
        return list(errors.get("data") or ())
    return list(getattr(errors, "data", None) or ())


def token_limited(batch: Any) -> bool:
    """True when a batch failed because the enqueued-token queue of its model was full (nothing ran)."""
    return getattr(batch, "status", None) == "failed" and any(
        error_code(e) == TOKEN_LIMIT_CODE for e in _batch_errors(batch)
    )


def limit_from_errors(batch: Any) -> int | None:
    """The cap the service named in a `token_limit_exceeded` message ("Limit: 2,000,000 enqueued tokens")."""
    import re

    for e in _batch_errors(batch):
        message = e.get("message") if isinstance(e, Mapping) else getattr(e, "message", "")
        found = re.search(r"Limit:\s*([\d,]+)\s*enqueued tokens", str(message or ""), re.IGNORECASE)
        if found:
            return int(found.group(1).replace(",", ""))
    return None


ResubmitReason = Literal["cancelled", "deleted"]


def resubmit_reason(batch: Any | None, *, reattached: bool) -> ResubmitReason | None:
    """Why a batch must be uploaded and made again on purpose, or None.

    `batch` None: it no longer exists (deleted remotely). A cancelled batch is remade only when it was
    re-attached to (made by an earlier run): a cancel this run saw happen is a person's decision.
    (A token-limited batch is not remade from scratch: `BatchJob.settle` requeues its upload.)
    """
    if batch is None:
        return "deleted"
    if reattached and batch.status in ("cancelling", "cancelled"):
        return "cancelled"
    return None


# ---------------------------------------------------------------- one line's fate
RETRYABLE_CODES: frozenset[str] = frozenset({"batch_expired", "request_timeout", TOKEN_LIMIT_CODE})
"""Line error codes that can pass on another try (`batch_cancelled` is absent: a cancel is a decision)."""


def error_code(error: Any) -> str | None:
    """The machine-readable code inside a line's or a batch's error, whatever shape it has."""
    if isinstance(error, Mapping):
        code = error.get("code")
        if code is None and isinstance(error.get("error"), Mapping):
            code = error["error"].get("code")
        return str(code) if code is not None else None
    code = getattr(error, "code", None)
    return str(code) if code is not None else None


def is_retryable(outcome: str, status_code: int | None, error: Any) -> bool:
    """True when a line that did not succeed can pass on another try.

    `expired` (never ran in the window) and `missing` (the service lost it) lines can; so can transient
    HTTP statuses (408, 429, 5xx) and the retryable codes. Cancelled lines and permanent failures cannot.
    """
    if outcome in ("expired", "missing"):
        return True
    if outcome != "failed":
        return False
    if status_code is not None and (status_code in (408, 429) or 500 <= status_code <= 599):
        return True
    return error_code(error) in RETRYABLE_CODES
