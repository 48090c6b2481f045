"""`BatchJob`: one submitted job (one batch, or one per shard): refresh, cancel, settle, wait, result.

Every operation is written once, as steps (see `_steps.py`): the sync methods drive them with an
`openai.OpenAI` client, their `async_*` twins with an `openai.AsyncOpenAI` one. The rules they apply
(statuses, cadence, late files, requeues) come from `batch_openai.lifecycle`.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from batch_openai._errors import BatchConflictError, BatchJobError, BatchTimeoutError, OpenAIBatchError
from batch_openai._jsonl import ensure_dir
from batch_openai._queue import TokenQueue
from batch_openai._result import BatchResult
from batch_openai._retry import RetryPolicy, no_sdk_retries
from batch_openai._steps import Blocking, Download, Sleep, Steps, retried_call, twins
from batch_openai._tracking import changed, track_steps
from batch_openai._usage import batch_usage_of
from batch_openai.lifecycle import (
    DEFAULT_MAX_POLL_INTERVAL,
    LATE_FILE_POLLS,
    TERMINAL,
    PollCadence,
    aggregate_status,
    files_settled,
    is_settled,
    request_counts,
)

if TYPE_CHECKING:
    from openai.types import Batch

    from batch_openai.records import BatchTracker as BatchRegistry

__all__ = ["BatchJob", "job_error", "job_steps"]

ProgressHook = Callable[["Batch"], Any]


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
    def _from_ids(
        cls,
        client: Any,
        batch_ids: Sequence[str],
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        registry: BatchRegistry | None = None,
    ) -> Steps[BatchJob]:
        """Reconnect to a (sharded) job by its batch ids; `registry` records it and keeps it current."""
        from batch_openai._errors import BatchValidationError

        batches = []
        for batch_id in batch_ids:
            if not isinstance(batch_id, str) or not batch_id.strip():
                raise BatchValidationError(
                    f"batch id {batch_id!r} is empty; pass the id of a batch (e.g. 'batch_abc123')"
                )
            batch = yield from retried_call(
                lambda c, b=batch_id: c.batches.retrieve(b), policy=retry, context=f"retrieving {batch_id}"
            )
            batches.append(batch)
        return (
            yield from job_steps(client, batches, expected_ids=expected_ids, retry=retry, registry=registry)
        )

    def _from_id(
        cls,
        client: Any,
        batch_id: str,
        *,
        expected_ids: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        registry: BatchRegistry | None = None,
    ) -> Steps[BatchJob]:
        """Reconnect to an existing batch by id (one API call); `registry` records it and keeps it current."""
        steps = cls._from_ids(
            cls, client, [batch_id], expected_ids=expected_ids, retry=retry, registry=registry
        )
        return (yield from steps)

    from_ids, async_from_ids = (classmethod(f) for f in twins(_from_ids, bound=True))
    from_id, async_from_id = (classmethod(f) for f in twins(_from_id, bound=True))

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

        sums = [sum(column) for column in zip(*(request_counts(b) for b in self._batches), strict=True)]
        return BatchRequestCounts(total=sums[0], completed=sums[1], failed=sums[2])

    @property
    def errors(self) -> list[Any]:
        """Batch-level errors (`errors.data`) of every batch."""
        return [e for b in self._batches if b.errors and b.errors.data for e in b.errors.data]

    @property
    def is_async(self) -> bool:
        """True when the job holds an `openai.AsyncOpenAI` client (use the `async_*` methods)."""
        return inspect.iscoroutinefunction(self._client.batches.retrieve)

    def __repr__(self) -> str:
        return f"BatchJob(batch_ids={self.batch_ids!r}, status={self.status!r})"

    # ---------------------------------------------------------------- steps (written once)
    def _track_steps(self, batch: Batch) -> Steps[None]:
        return track_steps(self._registry, batch)

    def _refresh(self, *, on_progress: ProgressHook | None = None) -> Steps[Self]:
        """Fetch the latest state of every batch that may still change."""
        fresh = []
        for old in self._batches:
            if is_settled(old):
                fresh.append(old)
                continue
            new = yield from retried_call(
                lambda c, b=old.id: c.batches.retrieve(b), policy=self._retry, context=f"polling {old.id}"
            )
            fresh.append(new)
            if changed(old, new):
                yield from self._track_steps(new)
            if on_progress is not None:
                on_progress(new)
        self._batches = fresh
        return self

    def _cancel(self) -> Steps[Self]:
        """Ask the service to cancel every unfinished batch (irreversible); finished shards are left alone."""
        fresh = []
        for b in self._batches:
            if b.status in TERMINAL or b.status == "cancelling":
                fresh.append(b)
                continue
            try:
                b = yield from retried_call(
                    lambda c, i=b.id: c.batches.cancel(i), policy=self._retry, context=f"cancelling {b.id}"
                )
            except BatchConflictError:  # finished meanwhile: keep its real state
                b = yield from retried_call(
                    lambda c, i=b.id: c.batches.retrieve(i), policy=self._retry, context=f"polling {b.id}"
                )
            fresh.append(b)
        self._batches = fresh
        return self

    def _settle(
        self,
        *,
        poll_interval: float = 60,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_progress: ProgressHook | None = None,
        timeout: float | None = None,
        token_limit_retries: int = 5,
    ) -> Steps[Self]:
        """Poll until every batch is terminal and its result files are there; download nothing.

        The interval starts at `poll_interval` and grows 1.5x per poll up to `max_poll_interval`. A batch
        that fails with `token_limit_exceeded` is created again from the same uploaded file once this job's
        other batches of its model have left the queue (see `_queue.py`), up to `token_limit_retries` times
        (0: never). `timeout` raises `BatchTimeoutError`; the batches keep running.
        """
        queue = self._queue_for(poll_interval, token_limit_retries)
        cadence = PollCadence(poll_interval, max_poll_interval)
        deadline = None if timeout is None else time.monotonic() + timeout
        late = 0
        while True:
            yield from self._refresh(on_progress=on_progress)
            pending = None
            if queue is not None:
                pending = yield from queue.requeue_steps(self._batches, self._retry, self._track_steps)
            if self.is_terminal and (all(files_settled(b) for b in self._batches) or late >= LATE_FILE_POLLS):
                if pending is None:
                    return self
                interval = pending  # only a token-limited batch waits for its turn
            elif self.is_terminal:
                late += 1  # terminal, but a promised file id has not appeared yet: poll a little more
                interval = cadence.late_file()
            else:
                interval = cadence.next()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    waiting = (
                        "waiting to be resubmitted (enqueued-token limit)" if pending else f"{self.status!r}"
                    )
                    raise BatchTimeoutError(
                        f"batch {self.batch_id} still {waiting} after {timeout}s; it keeps running — "
                        "call wait() again or reconnect later with BatchJob.from_id",
                        batch_id=self.batch_id,
                        status=self.status,
                    )
                interval = min(interval, left)
            yield Sleep(interval)

    def _download(self, directory: str | os.PathLike[str]) -> Steps[tuple[Path | None, Path | None]]:
        """Stream the output and error files to `directory`; shards are concatenated into one file each."""
        out_dir = ensure_dir(directory)
        paths: list[Path | None] = []
        for kind, ids in (
            ("output", [b.output_file_id for b in self._batches if b.output_file_id]),
            ("errors", [b.error_file_id for b in self._batches if b.error_file_id]),
        ):
            target = out_dir / f"{self.batch_id}_{kind}.jsonl"
            parts = []
            for file_id in ids:
                dest = target if len(ids) == 1 else out_dir / f".{file_id}.part"
                op = Download(file_id, dest)
                parts.append(
                    (yield from retried_call(op, policy=self._retry, context=f"downloading {file_id}"))
                )
            if len(parts) > 1:  # shards: one file of each kind
                yield Blocking(lambda t=target, p=parts: _concatenate(p, t))
            paths.append(target if parts else None)
        return paths[0], paths[1]

    def _result(self, *, expected_ids: Sequence[str] | None = None) -> Steps[BatchResult]:
        """The result of a terminal job, whatever its status (never raises `BatchJobError`)."""
        if not self.is_terminal:
            raise OpenAIBatchError(
                f"batch {self.batch_id} is {self.status!r}, not finished; call wait() (or refresh()) first"
            )
        tmp = tempfile.TemporaryDirectory(prefix="batch_openai-result-")
        output, errors = yield from self._download(tmp.name)
        endpoints = {b.endpoint for b in self._batches}
        return BatchResult(
            files=[p for p in (output, errors) if p is not None],
            expected_ids=expected_ids if expected_ids is not None else self._expected,
            endpoint=endpoints.pop() if len(endpoints) == 1 else None,
            keepalive=tmp,
            batch_usage=batch_usage_of(self._batches),
        )

    def _wait(
        self,
        *,
        poll_interval: float = 60,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_progress: ProgressHook | None = None,
        timeout: float | None = None,
        token_limit_retries: int = 5,
    ) -> Steps[BatchResult]:
        """`settle()`, then return the result, or raise `BatchJobError` (carrying the partial result)."""
        yield from self._settle(
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_progress=on_progress,
            timeout=timeout,
            token_limit_retries=token_limit_retries,
        )
        result = yield from self._result()
        error = job_error(self, result)
        if error is not None:
            raise error
        return result

    def _queue_for(self, poll_interval: float, retries: int) -> TokenQueue | None:
        if retries <= 0:
            return None
        if self._token_queue is None:
            self._token_queue = TokenQueue()
        self._token_queue.poll_interval = max(poll_interval, 0.05)
        self._token_queue.max_requeues = retries
        return self._token_queue

    # ---------------------------------------------------------------- the public pairs: each made once, above
    refresh, async_refresh = twins(_refresh, client_attr="_client")
    cancel, async_cancel = twins(_cancel, client_attr="_client")
    settle, async_settle = twins(_settle, client_attr="_client")
    wait, async_wait = twins(_wait, client_attr="_client")
    await_completion = async_wait  # the documented name of the async wait
    download, async_download = twins(_download, client_attr="_client")
    result, async_result = twins(_result, client_attr="_client")


def job_steps(
    client: Any,
    batches: Sequence[Batch],
    *,
    expected_ids: Sequence[str] | None = None,
    retry: RetryPolicy | None = None,
    registry: BatchRegistry | None = None,
    track: bool = True,
    token_queue: TokenQueue | None = None,
) -> Steps[BatchJob]:
    """Steps: a job over `batches` that keeps `registry`'s records current (each batch tracked now when
    `track`); `token_queue`: the queue a paced submit used, so that `wait()` requeues with its estimates."""
    job = BatchJob(client, batches, expected_ids=expected_ids, retry=retry)
    job._registry = registry
    job._token_queue = token_queue
    if track:
        for batch in job._batches:
            yield from track_steps(registry, batch)
    return job


def _concatenate(parts: Sequence[Path], target: Path) -> None:
    with open(target, "wb") as joined:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, joined, 1 << 20)
            part.unlink()


def job_error(job: BatchJob, result: BatchResult) -> BatchJobError | None:
    """The `BatchJobError` that `wait` raises for this terminal job, or None when every batch completed."""
    bad = [b for b in job.batches if b.status != "completed"]
    if not bad:
        return None
    status = aggregate_status(bad)
    first = next(b for b in bad if b.status == status)
    errors = job.errors
    detail = "; ".join(f"{e.code}: {e.message}" for e in errors[:3]) if errors else ""
    summary = ", ".join(f"{n} {o.value}" for o, n in result.counts.items() if n)
    return BatchJobError(
        f"batch {first.id} ended {status!r}" + (f" ({detail})" if detail else "") + f"; results: {summary}",
        status=status,
        batch_id=first.id,
        errors=errors,
        result=result,
    )
