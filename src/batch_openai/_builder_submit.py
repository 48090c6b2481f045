"""Submitting as a job: `submit_file` / `async_submit_file`, and the body of `BatchRequestBuilder.submit`.

Shard to a temp dir, submit each shard idempotently (paced under `max_enqueued_tokens` when set), and
return one job over all of them. Kept out of `_builder.py` so that module stays about building requests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from batch_openai._job import BatchJob, job_steps
from batch_openai._queue import submit_shards_steps
from batch_openai._retry import RetryPolicy
from batch_openai._steps import Steps, twins
from batch_openai._submit import DEFAULT_MAX_PAGES, submit_file_steps
from batch_openai._tracking import track_steps
from batch_openai._validation import MAX_REQUESTS

if TYPE_CHECKING:
    from batch_openai._builder import BatchRequestBuilder
    from batch_openai.records import BatchTracker as BatchRegistry

__all__ = ["async_submit_file", "submit_file", "submit_steps"]


def submit_steps(
    builder: BatchRequestBuilder,
    client: Any,
    description: str | None,
    metadata: Mapping[str, str] | None,
    max_requests: int | None,
    retry: RetryPolicy | None,
    max_enqueued_tokens: int | Mapping[str, int] | None,
    queue_poll_interval: float,
    registry: BatchRegistry | None,
) -> Steps[BatchJob]:
    """Steps: write the shards, submit each (paced when `max_enqueued_tokens` is set); one job over all."""
    tmp = tempfile.mkdtemp(prefix="batch_openai-")
    try:
        shards = builder.write_shards(tmp, max_requests=max_requests or MAX_REQUESTS)
        batches, queue = yield from submit_shards_steps(
            shards,
            description=description,
            metadata=metadata,
            retry=retry,
            max_enqueued_tokens=max_enqueued_tokens,
            poll_interval=queue_poll_interval,
            track=lambda batch: track_steps(registry, batch),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return (
        yield from job_steps(
            client,
            batches,
            expected_ids=builder.custom_ids,
            retry=retry,
            registry=registry,
            track=False,  # each shard was tracked as it was made
            token_queue=queue,
        )
    )


def _submit_file(
    client: Any,
    path: str | os.PathLike[str],
    *,
    endpoint: str,
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
    fingerprint: str | None = None,
    retry: RetryPolicy | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    registry: BatchRegistry | None = None,
) -> Steps[BatchJob]:
    """Create ONE batch for one input file, idempotently (see `_submit.py`); return its `BatchJob`.

    `registry`: a `BatchRegistry` that records the batch once created (or found) and, through the job's
    `refresh()`/`wait()`, each change of its status or files; a tracking error is logged, never raised.
    """
    batch = yield from submit_file_steps(
        path,
        endpoint=endpoint,
        description=description,
        metadata=metadata,
        fingerprint=fingerprint,
        retry=retry,
        max_pages=max_pages,
    )
    return (yield from job_steps(client, [batch], retry=retry, registry=registry))


submit_file, async_submit_file = twins(_submit_file)
