"""The library's registry hook: keep a `BatchRegistry` record current for a job that was given one.

`submit(..., registry=)`, `submit_file(..., registry=)` and `BatchJob.from_id(..., registry=)` attach the
registry to the job; each batch is tracked once created (or found, or reconnected to), and `refresh()`
tracks a batch again whenever its status or file ids changed, so `wait()` leaves the record terminal.
A tracking failure (Prefect unreachable, say) is logged as a warning and never fails the job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from batch_openai._errors import redact
from batch_openai._steps import Blocking, Steps

if TYPE_CHECKING:
    from batch_openai.records import BatchTracker as BatchRegistry

__all__ = ["changed", "track_all", "track_batch", "track_steps"]

log = logging.getLogger("batch_openai")


def track_batch(registry: BatchRegistry | None, batch: Any) -> None:
    """Record `batch` in `registry` (if any); an error is logged, never raised."""
    if registry is None:
        return
    try:
        registry.track_batch(batch)
    except Exception as exc:  # the registry is bookkeeping: the batch itself is fine
        log.warning(
            "batch_openai: could not record batch %s in the registry: %s",
            getattr(batch, "id", "?"),
            redact(f"{type(exc).__name__}: {exc}"),
        )


def track_all(registry: BatchRegistry | None, batches: Any) -> None:
    """Record every batch of `batches` in `registry` (if any), errors logged."""
    if registry is not None:
        for batch in batches:
            track_batch(registry, batch)


def changed(old: Any, new: Any) -> bool:
    """True when `new` is another batch than `old`, or its status or file ids moved."""
    return (
        old is None
        or old.id != new.id
        or old.status != new.status
        or old.output_file_id != new.output_file_id
        or old.error_file_id != new.error_file_id
    )


def track_steps(registry: BatchRegistry | None, batch: Any) -> Steps[None]:
    """Steps: record `batch` in `registry` (if any); the write runs in a thread under the async driver."""
    if registry is not None:
        yield Blocking(lambda: track_batch(registry, batch))
