"""`BatchJob`: one submitted job (one batch, or one per shard) — refresh, cancel, wait, download, result.

The sync methods need an `openai.OpenAI` client; the `async_*` / `await_completion` methods need an
`openai.AsyncOpenAI` one (their bodies live in `_async.py`). The pure decisions both share (aggregate
status, "are the files there yet", when to poll) live in `_job_state.py`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from batch_openai._download import download as download_files
from batch_openai._errors import BatchConflictError, BatchTimeoutError, OpenAIBatchError
from batch_openai._job_state import (  # re-exported: callers import these from _job
    LATE_FILE_INTERVAL,
    LATE_FILE_POLLS,
    TERMINAL,
    aggregate_status,
    file_pairs,
    files_settled,
    job_error,
    next_poll,
    single_endpoint,
)
from batch_openai._result import BatchResult
from batch_openai._retry import RetryPolicy, call, no_sdk_retries
from batch_openai._tracking import changed, track_all, track_batch
from batch_openai._usage import batch_usage_of

if TYPE_CHECKING:
    from openai.types import Batch

    from batch_openai._queue import TokenQueue
    from batch_openai._registry import BatchRegistry

__all__ = [
    "LATE_FILE_INTERVAL",
    "LATE_FILE_POLLS",
    "TERMINAL",
    "BatchJob",
    "aggregate_status",
    "file_pairs",
    "files_settled",
    "job_error",
    "next_poll",
    "single_endpoint",
]


class BatchJob:
    """A submitted job: one batch, or one per shard when the requests were split."""

    def __init__(
        self,
        client: Any,
        batches: Batch | Sequence[Batch],
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = no_sdk_retries(client)
        self._batches: list[Batch] = [batches] if hasattr(batches, "status") else list(batches)  # type: ignore[list-item,arg-type]
        if not self._batches:
            raise ValueError("BatchJob needs at least one batch")
        self._expected = list(expected_ids) if expected_ids is not None else None
        self._retry = retry
        self._token_queue: TokenQueue | None = None  # set by a queue-aware submit: caps and token estimates
        self._registry: BatchRegistry | None = None  # set by submit/from_id(registry=): see _tracking.py

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_id(
        cls,
        client: Any,
        batch_id: str,
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        registry: BatchRegistry | None = None,
    ) -> BatchJob:
        """Reconnect to an existing batch by id (one API call); `registry` records it and keeps it current."""
        c = no_sdk_retries(client)
        batch = call(lambda: c.batches.retrieve(batch_id), policy=retry, context=f"retrieving {batch_id}")
        return cls(c, [batch], expected_ids=expected_ids, retry=retry)._attach(registry)

    @classmethod
    def from_ids(
        cls,
        client: Any,
        batch_ids: Sequence[str],
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> BatchJob:
        """Reconnect to a sharded job by its batch ids."""
        c = no_sdk_retries(client)
        batches = [
            call(lambda b=b: c.batches.retrieve(b), policy=retry, context=f"retrieving {b}")
            for b in batch_ids
        ]
        return cls(c, batches, expected_ids=expected_ids, retry=retry)

    @classmethod
    async def async_from_id(
        cls,
        async_client: Any,
        batch_id: str,
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        registry: BatchRegistry | None = None,
    ) -> BatchJob:
        """Async twin of `from_id`, for an `openai.AsyncOpenAI` client."""
        import asyncio

        from batch_openai._retry import acall

        c = no_sdk_retries(async_client)
        batch = await acall(
            lambda: c.batches.retrieve(batch_id), policy=retry, context=f"retrieving {batch_id}"
        )
        job = cls(c, [batch], expected_ids=expected_ids, retry=retry)._attach(registry, track=False)
        if registry is not None:  # a Prefect write: off the event loop
            await asyncio.to_thread(track_all, registry, job._batches)
        return job

    def _attach(self, registry: BatchRegistry | None, *, track: bool = True) -> Self:
        """Keep `registry`'s records of this job current from now on (and track every batch now)."""
        self._registry = registry
        if track:
            track_all(registry, self._batches)
        return self

    # ---------------------------------------------------------------- state (no network)
    @property
    def client(self) -> Any:
        """The client this job talks through (SDK retries off)."""
        return self._client

    @property
    def batches(self) -> list[Batch]:
        """The last seen `openai.types.Batch` objects, one per shard."""
        return list(self._batches)

    @property
    def batch_id(self) -> str:
        """The (first) batch id."""
        return self._batches[0].id

    @property
    def batch_ids(self) -> list[str]:
        """Every batch id of the job."""
        return [b.id for b in self._batches]

    @property
    def status(self) -> str:
        """Last known status, aggregated across shards (no network call)."""
        return aggregate_status(self._batches)

    @property
    def is_terminal(self) -> bool:
        """True when every batch is completed, failed, expired or cancelled."""
        return all(b.status in TERMINAL for b in self._batches)

    @property
    def input_file_id(self) -> str:
        """The (first) batch's input file id."""
        return self._batches[0].input_file_id

    @property
    def endpoint(self) -> str:
        """The (first) batch's endpoint."""
        return self._batches[0].endpoint

    @property
    def description(self) -> str | None:
        """The description stored in the batch metadata."""
        return (self._batches[0].metadata or {}).get("description")

    @property
    def expected_ids(self) -> list[str] | None:
        """The custom_ids submitted, in input order, when known."""
        return None if self._expected is None else list(self._expected)

    @property
    def request_counts(self) -> Any:
        """Request counts (total, completed, failed), summed across shards."""
        from openai.types import BatchRequestCounts

        total = completed = failed = 0
        for b in self._batches:
            if b.request_counts:
                total += b.request_counts.total
                completed += b.request_counts.completed
                failed += b.request_counts.failed
        return BatchRequestCounts(total=total, completed=completed, failed=failed)

    @property
    def errors(self) -> list[Any]:
        """Batch-level errors (`errors.data`) of every batch."""
        return [e for b in self._batches if b.errors and b.errors.data for e in b.errors.data]

    def __repr__(self) -> str:
        return f"BatchJob(batch_ids={self.batch_ids!r}, status={self.status!r})"

    # ---------------------------------------------------------------- sync network
    @property
    def is_async(self) -> bool:
        """True when the job holds an `openai.AsyncOpenAI` client (use the `async_*` methods)."""
        import inspect

        return inspect.iscoroutinefunction(self._client.batches.retrieve)

    def _sync_only(self, method: str, twin: str) -> None:
        if self.is_async:
            raise TypeError(
                f"this BatchJob holds an async client: use `await job.{twin}(...)`, not {method}()"
            )

    def refresh(self, *, on_progress: Callable[[Batch], Any] | None = None) -> Self:
        """Fetch the latest state of every batch that may still change."""
        self._sync_only("refresh", "async_refresh")
        fresh = []
        for b in self._batches:
            if b.status in TERMINAL and files_settled(b):
                fresh.append(b)
                continue
            old = b
            b = call(
                lambda b=b: self._client.batches.retrieve(b.id), policy=self._retry, context=f"polling {b.id}"
            )
            fresh.append(b)
            if self._registry is not None and changed(old, b):
                track_batch(self._registry, b)
            if on_progress is not None:
                on_progress(b)
        self._batches = fresh
        return self

    def cancel(self) -> Self:
        """Ask the service to cancel every unfinished batch (irreversible); finished shards are left alone."""
        self._sync_only("cancel", "async_cancel")
        fresh = []
        for b in self._batches:
            if b.status in TERMINAL or b.status == "cancelling":
                fresh.append(b)
                continue
            try:
                b = call(
                    lambda b=b: self._client.batches.cancel(b.id),
                    policy=self._retry,
                    context=f"cancelling {b.id}",
                )
            except BatchConflictError:  # finished meanwhile: keep its real state
                b = call(
                    lambda b=b: self._client.batches.retrieve(b.id),
                    policy=self._retry,
                    context=f"polling {b.id}",
                )
            fresh.append(b)
        self._batches = fresh
        return self

    def wait(
        self,
        *,
        poll_interval: float = 60,
        on_progress: Callable[[Batch], Any] | None = None,
        timeout: float | None = None,
        token_limit_retries: int = 5,
    ) -> BatchResult:
        """Poll until every batch is terminal; return the result or raise `BatchJobError` (with partial).

        A batch that fails with `token_limit_exceeded` is resubmitted (same uploaded file) once this job's
        other batches of its model have left the queue, up to `token_limit_retries` times (0: never).
        """
        self._sync_only("wait", "await_completion")
        queue = self._queue_for(poll_interval, token_limit_retries)
        deadline = None if timeout is None else time.monotonic() + timeout
        late = 0
        while True:
            self.refresh(on_progress=on_progress)
            pending = queue.requeue(self) if queue is not None else None
            interval, late = next_poll(self, late, poll_interval, deadline, timeout)
            if interval is None:
                if pending is None:
                    break
                interval = self._requeue_pause(pending, deadline, timeout)
            time.sleep(interval)
        result = self.result()
        error = job_error(self, result)
        if error is not None:
            raise error
        return result

    def _queue_for(self, poll_interval: float, retries: int) -> TokenQueue | None:
        if retries <= 0:
            return None
        from batch_openai._queue import TokenQueue

        if self._token_queue is None:
            self._token_queue = TokenQueue()
        self._token_queue.poll_interval = poll_interval
        self._token_queue.max_requeues = retries
        return self._token_queue

    def _requeue_pause(self, pending: float, deadline: float | None, timeout: float | None) -> float:
        """Seconds to sleep while only a token-limited batch waits for its turn (within the deadline)."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise BatchTimeoutError(
                f"batch {self.batch_id} is waiting to be resubmitted (enqueued-token limit) after "
                f"{timeout}s; call wait() again to carry on",
                batch_id=self.batch_id,
                status=self.status,
            )
        return pending if left is None else min(pending, left)

    def download(self, directory: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
        """Stream the output and error files to `directory`; shards are concatenated into one file each."""
        self._sync_only("download", "async_download")
        return download_files(self, directory)

    def result(self, *, expected_ids: Sequence[str] | None = None) -> BatchResult:
        """The result of a terminal job, whatever its status (never raises `BatchJobError`)."""
        self._sync_only("result", "async_result")
        if not self.is_terminal:
            raise OpenAIBatchError(
                f"batch {self.batch_id} is {self.status!r}, not finished; call wait() (or refresh()) first"
            )
        tmp = tempfile.TemporaryDirectory(prefix="batch_openai-result-")
        output, errors = self.download(tmp.name)
        files = [p for p in (output, errors) if p is not None]
        ids = expected_ids if expected_ids is not None else self._expected
        return BatchResult(
            files=files,
            expected_ids=ids,
            endpoint=single_endpoint(self),
            keepalive=tmp,
            batch_usage=batch_usage_of(self._batches),
        )

    # ---------------------------------------------------------------- async (bodies in _async.py)
    async def async_refresh(self, *, on_progress: Callable[[Batch], Any] | None = None) -> Self:
        """Async twin of `refresh`."""
        from batch_openai._async import refresh

        await refresh(self, on_progress)
        return self

    async def async_cancel(self) -> Self:
        """Async twin of `cancel`."""
        from batch_openai._async import cancel

        await cancel(self)
        return self

    async def await_completion(
        self,
        *,
        poll_interval: float = 60,
        on_progress: Callable[[Batch], Any] | None = None,
        timeout: float | None = None,
        token_limit_retries: int = 5,
    ) -> BatchResult:
        """Async twin of `wait` (token-limited batches are requeued the same way)."""
        from batch_openai._async import wait

        return await wait(
            self,
            poll_interval=poll_interval,
            on_progress=on_progress,
            timeout=timeout,
            token_limit_retries=token_limit_retries,
        )

    async def async_result(self, *, expected_ids: Sequence[str] | None = None) -> BatchResult:
        """Async twin of `result`."""
        from batch_openai._async import result

        return await result(self, expected_ids)

    async def async_download(self, directory: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
        """Async twin of `download`."""
        from batch_openai._async import download

        return await download(self, directory)
