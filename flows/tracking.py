"""The one place where the flows report a batch they created or observed.

Every batch the flows create, re-attach to, or see change status passes through `record_batch`.
`batch_openai.flows.registry.BatchRegistry` is called from here to track batches as Prefect
Variables. Keep it cheap and never let it fail the flow: tracking is a convenience, not the source of truth
(the source of truth is the batch service plus Prefect's task cache).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

BatchEvent = Literal["created", "attached", "status"]

_log = logging.getLogger("batch_openai.flows.tracking")


def record_batch(batch: Any, *, event: BatchEvent, description: str | None = None) -> None:
    """Report a batch (an `openai` Batch object) that was created, re-attached to, or polled."""
    try:
        status = getattr(batch, "status", None)
        _log.debug("batch %s %s (status=%s)", getattr(batch, "id", "?"), event, status)
        _registry_hook(batch, event=event, description=description)
    except Exception as exc:  # tracking must never break a run that is spending money
        _log.warning("could not record batch %s: %s", getattr(batch, "id", "?"), type(exc).__name__)


def _registry_hook(batch: Any, *, event: BatchEvent, description: str | None) -> None:
    """Track the batch in the registry (Prefect Variables, on the same API the flow run uses)."""
    from batch_openai.flows.registry import BatchRegistry

    # Every event is an observation: the registry merges it (status never moves backwards, the
    # creating flow run is kept), so "created", "attached" and "status" need no separate handling.
    BatchRegistry().track_batch(batch, description=description)
