"""Pure decisions about a job's batches, shared by the sync (`_job.py`) and async (`_async.py`) code.

No I/O here: aggregate status, "are the result files there yet", when to poll next, which error to raise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchJobError, BatchTimeoutError

if TYPE_CHECKING:
    from batch_openai._job import BatchJob
    from batch_openai._result import BatchResult

__all__ = [
    "LATE_FILE_INTERVAL",
    "LATE_FILE_POLLS",
    "TERMINAL",
    "aggregate_status",
    "file_pairs",
    "files_settled",
    "job_error",
    "next_poll",
    "single_endpoint",
]

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ACTIVE_ORDER = ("validating", "in_progress", "finalizing", "cancelling")
_BAD_ORDER = ("failed", "expired", "cancelled")
LATE_FILE_POLLS = 5  # how many extra polls a terminal batch gets for its output/error file id to appear
LATE_FILE_INTERVAL = 5.0


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


def files_settled(batch: Any) -> bool:
    """False while a terminal batch's counts promise a file whose id has not appeared yet."""
    if batch.status == "failed":
        return True
    counts = batch.request_counts
    completed = counts.completed if counts else 0
    failed = counts.failed if counts else 0
    return (batch.output_file_id is not None or not completed) and (
        batch.error_file_id is not None or not failed
    )


def file_pairs(batches: Sequence[Any]) -> list[tuple[str, str | None, str | None]]:
    """(batch_id, output_file_id, error_file_id) for each batch."""
    return [(b.id, b.output_file_id, b.error_file_id) for b in batches]


def single_endpoint(job: BatchJob) -> str | None:
    """The endpoint shared by every batch of the job, or None when shards differ."""
    endpoints = {b.endpoint for b in job.batches}
    return endpoints.pop() if len(endpoints) == 1 else None


def job_error(job: BatchJob, result: BatchResult) -> BatchJobError | None:
    """The `BatchJobError` that `wait` raises for this terminal job, or None when every batch completed."""
    bad = [b for b in job.batches if b.status != "completed"]
    if not bad:
        return None
    status = aggregate_status(bad)
    first = next(b for b in bad if b.status == status)
    errors = job.errors
    detail = "; ".join(f"{e.code}: {e.message}" for e in errors[:3]) if errors else ""
    counts = result.counts
    summary = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n)
    return BatchJobError(
        f"batch {first.id} ended {status!r}" + (f" ({detail})" if detail else "") + f"; results: {summary}",
        status=status,
        batch_id=first.id,
        errors=errors,
        result=result,
    )


def next_poll(
    job: BatchJob, late: int, poll_interval: float, deadline: float | None, timeout: float | None
) -> tuple[float | None, int]:
    """After a refresh: (seconds to sleep, late-poll count), or (None, _) when the job is done and settled."""
    if job.is_terminal:
        if all(files_settled(b) for b in job.batches) or late >= LATE_FILE_POLLS:
            return None, late
        late += 1
        interval = min(poll_interval, LATE_FILE_INTERVAL)
    else:
        interval = poll_interval
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BatchTimeoutError(
                f"batch {job.batch_id} still {job.status!r} after {timeout}s; it keeps running — "
                "call wait() again or reconnect later with BatchJob.from_id",
                batch_id=job.batch_id,
                status=job.status,
            )
        interval = min(interval, remaining)
    return max(interval, 0.0), late
