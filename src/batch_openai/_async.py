"""The async halves of submit and `BatchJob`, for an `openai.AsyncOpenAI` client.

Same rules as the sync code (see `_submit.py` and `_job.py`); only the I/O differs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchConflictError, BatchValidationError, OpenAIBatchError, redact
from batch_openai._file_limits import check_file_limits
from batch_openai._job import BatchJob
from batch_openai._job_state import TERMINAL, file_pairs, files_settled, job_error, next_poll, single_endpoint
from batch_openai._jsonl import ensure_dir, fingerprint_file, partial_path
from batch_openai._result import BatchResult
from batch_openai._retry import RetryPolicy, acall, no_sdk_retries
from batch_openai._submit import DEFAULT_MAX_PAGES, answer_may_be_lost, build_metadata, log, matches
from batch_openai._tracking import changed, track_all, track_batch
from batch_openai._usage import batch_usage_of
from batch_openai._validation import check_endpoint

if TYPE_CHECKING:
    from openai.types import Batch

    from batch_openai._registry import BatchRegistry

__all__ = ["async_find_batch_by_fingerprint", "async_submit_file"]


async def _find_raw(client: Any, fingerprint: str, endpoint: str | None, max_pages: int) -> Batch | None:
    after: str | None = None
    for _ in range(max_pages):
        page = await client.batches.list(limit=100, **({"after": after} if after else {}))
        data = list(page.data)
        for batch in data:
            if matches(batch, fingerprint, endpoint):
                return batch
        if not data or not getattr(page, "has_more", False):
            return None
        after = data[-1].id
    return None


async def async_find_batch_by_fingerprint(
    async_client: Any,
    fingerprint: str,
    *,
    endpoint: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    retry: RetryPolicy | None = None,
) -> Batch | None:
    """Async twin of `find_batch_by_fingerprint`."""
    client = no_sdk_retries(async_client)
    return await acall(
        lambda: _find_raw(client, fingerprint, endpoint, max_pages),
        policy=retry,
        context="looking for batch by fingerprint",
    )


async def async_submit_file(
    async_client: Any,
    path: str | os.PathLike[str],
    *,
    endpoint: str,
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
    fingerprint: str | None = None,
    retry: RetryPolicy | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    registry: BatchRegistry | None = None,
) -> BatchJob:
    """Async twin of `submit_file`: one batch for one file, idempotent by fingerprint."""
    check_endpoint(endpoint)
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise BatchValidationError(f"input file {str(p)!r} is missing or empty; write the requests first")
    await asyncio.to_thread(check_file_limits, p, endpoint)  # before any upload
    fingerprint = fingerprint or await asyncio.to_thread(fingerprint_file, p)
    meta = build_metadata(description, metadata, fingerprint)
    client = no_sdk_retries(async_client)
    existing = await async_find_batch_by_fingerprint(
        client, fingerprint, endpoint=endpoint, max_pages=max_pages, retry=retry
    )
    if existing is not None:
        log.info("batch_openai: reusing batch %s for fingerprint %s", existing.id, fingerprint[:12])
        return await _attached(BatchJob(client, [existing], retry=retry), registry)

    async def upload() -> Any:
        with open(p, "rb") as f:
            return await client.files.create(file=(p.name, f), purpose="batch")

    uploaded = await acall(upload, policy=retry, context=f"uploading {p.name}")
    attempted = False

    async def create() -> Batch:
        nonlocal attempted
        if attempted:  # the last create's answer may have been lost: look before creating again
            found = await _find_raw(client, fingerprint, endpoint, max_pages)
            if found is not None:
                return found
        attempted = True
        return await client.batches.create(
            input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h", metadata=meta
        )

    try:
        batch = await acall(create, policy=retry, context="creating batch")
    except OpenAIBatchError as exc:
        if not answer_may_be_lost(exc.__cause__):
            try:
                await client.files.delete(uploaded.id)
            except Exception as cleanup:
                log.warning("batch_openai: could not delete upload %s: %s", uploaded.id, redact(str(cleanup)))
        raise
    return await _attached(BatchJob(client, [batch], retry=retry), registry)


async def _attached(job: BatchJob, registry: BatchRegistry | None) -> BatchJob:
    """`job` keeping `registry` current; its batches tracked now, in a thread (a Prefect write blocks)."""
    job._attach(registry, track=False)
    if registry is not None:
        await asyncio.to_thread(track_all, registry, job._batches)
    return job


async def refresh(job: BatchJob, on_progress: Callable[[Batch], Any] | None) -> None:
    """Fetch the latest state of every batch of `job` that may still change."""
    fresh = []
    for b in job._batches:
        if b.status in TERMINAL and files_settled(b):
            fresh.append(b)
            continue
        old = b
        b = await acall(
            lambda b=b: job._client.batches.retrieve(b.id), policy=job._retry, context=f"polling {b.id}"
        )
        fresh.append(b)
        if job._registry is not None and changed(old, b):
            await asyncio.to_thread(track_batch, job._registry, b)  # a Prefect write: off the event loop
        if on_progress is not None:
            on_progress(b)
    job._batches = fresh


async def cancel(job: BatchJob) -> None:
    """Cancel every unfinished batch of `job`."""
    fresh = []
    for b in job._batches:
        if b.status in TERMINAL or b.status == "cancelling":
            fresh.append(b)
            continue
        try:
            b = await acall(
                lambda b=b: job._client.batches.cancel(b.id), policy=job._retry, context=f"cancelling {b.id}"
            )
        except BatchConflictError:
            b = await acall(
                lambda b=b: job._client.batches.retrieve(b.id), policy=job._retry, context=f"polling {b.id}"
            )
        fresh.append(b)
    job._batches = fresh


async def wait(
    job: BatchJob,
    *,
    poll_interval: float,
    on_progress: Callable[[Batch], Any] | None,
    timeout: float | None,
    token_limit_retries: int = 5,
) -> BatchResult:
    """Poll until terminal, then return the result or raise `BatchJobError`."""
    queue = job._queue_for(poll_interval, token_limit_retries)
    deadline = None if timeout is None else time.monotonic() + timeout
    late = 0
    while True:
        await refresh(job, on_progress)
        pending = await queue.async_requeue(job) if queue is not None else None
        interval, late = next_poll(job, late, poll_interval, deadline, timeout)
        if interval is None:
            if pending is None:
                break
            interval = job._requeue_pause(pending, deadline, timeout)
        await asyncio.sleep(interval)
    res = await result(job, None)
    error = job_error(job, res)
    if error is not None:
        raise error
    return res


async def _download_file(job: BatchJob, file_id: str, dest: Path) -> Path:
    part = partial_path(dest)  # each attempt starts over; renamed only when the whole body arrived

    async def fetch() -> Path:
        try:
            async with job._client.files.with_streaming_response.content(file_id) as response:
                with open(part, "wb") as f:
                    async for chunk in response.iter_bytes(1 << 20):
                        f.write(chunk)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    return await acall(fetch, policy=job._retry, context=f"downloading {file_id}")


async def download(job: BatchJob, directory: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
    """Stream the output and error files of `job` to `directory` (shards concatenated)."""
    out_dir = ensure_dir(directory)
    paths: list[Path | None] = []
    for kind, index in (("output", 1), ("errors", 2)):
        ids = [pair[index] for pair in file_pairs(job._batches) if pair[index]]
        if not ids:
            paths.append(None)
            continue
        target = out_dir / f"{job.batch_id}_{kind}.jsonl"
        if len(ids) == 1:
            paths.append(await _download_file(job, ids[0], target))
            continue
        with open(target, "wb") as joined:
            for file_id in ids:
                part = await _download_file(job, file_id, out_dir / f".{file_id}.part")
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, joined, 1 << 20)
                part.unlink()
        paths.append(target)
    return paths[0], paths[1]


async def result(job: BatchJob, expected_ids: Any) -> BatchResult:
    """The result of a terminal job, whatever its status."""
    if not job.is_terminal:
        raise OpenAIBatchError(
            f"batch {job.batch_id} is {job.status!r}, not finished; await completion first"
        )
    tmp = tempfile.TemporaryDirectory(prefix="batch_openai-result-")
    output, errors = await download(job, tmp.name)
    files = [p for p in (output, errors) if p is not None]
    ids = expected_ids if expected_ids is not None else job._expected
    return BatchResult(
        files=files,
        expected_ids=ids,
        endpoint=single_endpoint(job),
        keepalive=tmp,
        batch_usage=batch_usage_of(job._batches),
    )
