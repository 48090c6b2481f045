"""The bodies of `BatchRequestBuilder.submit` / `async_submit`: shard to a temp dir, submit each shard.

Kept out of `_builder.py` so that module stays about building requests; the methods there are thin.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from batch_openai._retry import RetryPolicy
from batch_openai._validation import MAX_REQUESTS

if TYPE_CHECKING:
    from batch_openai._builder import BatchRequestBuilder
    from batch_openai._job import BatchJob
    from batch_openai._registry import BatchRegistry

__all__ = ["async_submit", "shard_metadata", "submit"]


def shard_metadata(metadata: Mapping[str, str] | None, index: int, total: int) -> dict[str, str]:
    """The caller's metadata, plus `batch_openai_shard: "i/n"` when the job has several shards."""
    out = dict(metadata or {})
    if total > 1:
        out["batch_openai_shard"] = f"{index + 1}/{total}"
    return out


def submit(
    builder: BatchRequestBuilder,
    client: Any,
    *,
    description: str | None,
    metadata: Mapping[str, str] | None,
    max_requests: int | None,
    retry: RetryPolicy | None,
    max_enqueued_tokens: int | Mapping[str, int] | None,
    queue_poll_interval: float,
    registry: BatchRegistry | None = None,
) -> BatchJob:
    """Write the shards, submit each (paced when `max_enqueued_tokens` is set); one job over all of them."""
    from batch_openai._job import BatchJob
    from batch_openai._queue import submit_paced

    tmp = tempfile.mkdtemp(prefix="batch_openai-")
    try:
        shards = builder.write_shards(tmp, max_requests=max_requests or MAX_REQUESTS)
        batches, queue = submit_paced(
            client,
            shards,
            description=description,
            metadata=[shard_metadata(metadata, i, len(shards)) for i in range(len(shards))],
            retry=retry,
            max_enqueued_tokens=max_enqueued_tokens,
            poll_interval=queue_poll_interval,
            registry=registry,  # each shard tracked as soon as it exists
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    job = BatchJob(client, batches, expected_ids=builder.custom_ids, retry=retry)
    job._token_queue = queue
    return job._attach(registry, track=False)


async def async_submit(
    builder: BatchRequestBuilder,
    async_client: Any,
    *,
    description: str | None,
    metadata: Mapping[str, str] | None,
    max_requests: int | None,
    retry: RetryPolicy | None,
    registry: BatchRegistry | None = None,
) -> BatchJob:
    """Async twin of `submit` (no pacing), for an `openai.AsyncOpenAI` client."""
    from batch_openai._async import async_submit_file
    from batch_openai._job import BatchJob

    tmp = tempfile.mkdtemp(prefix="batch_openai-")
    try:
        shards = builder.write_shards(tmp, max_requests=max_requests or MAX_REQUESTS)
        batches = []
        for i, shard in enumerate(shards):
            job = await async_submit_file(
                async_client,
                shard.path,
                endpoint=shard.endpoint,
                description=description,
                metadata=shard_metadata(metadata, i, len(shards)),
                fingerprint=shard.fingerprint,
                retry=retry,
                registry=registry,
            )
            batches.append(job._batches[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    job = BatchJob(async_client, batches, expected_ids=builder.custom_ids, retry=retry)
    return job._attach(registry, track=False)  # each shard was tracked by async_submit_file
