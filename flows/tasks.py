"""The library's steps as public Prefect tasks: build, submit, wait, collect, parse.

    from batch_openai.flows import submit_batch, wait_for_batch, collect_batch, parse_batch

    @flow
    def nightly_eval():
        ref = submit_batch(builder_or_native_jsonl_path, description="nightly eval")  # a rerun re-attaches
        done = wait_for_batch(ref, poll_interval=60)
        for item in parse_batch(done, Verdict):
            ...

Each task is a thin wrapper of a library step (`BatchRequestBuilder.write_shards`, `submit_file`,
`BatchJob.settle`, `BatchJob.download`, `BatchResult.parse_each`): the rules live in the library. Work
moves between tasks as files and ids (`BatchRef`), never as big objects. Each task builds its own
`openai` client (see `batch_openai.flows.client`), so no parameter, result or log holds the API key.
Only `submit_shard` is cached: it is the one that spends money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel, Field

from batch_openai.flows.caching import submit_cache_policy
from batch_openai.flows.client import build_client
from batch_openai.flows.tracking import record_batch
from batch_openai.flows.workspace import Workspace, submit_cache_storage

__all__ = [
    "BatchRef",
    "build_shards",
    "collect_batch",
    "parse_batch",
    "submit_batch",
    "submit_shard",
    "wait_for_batch",
]

DEFAULT_MAX_REQUESTS = 50_000
DEFAULT_MAX_BYTES = 209_715_200


class BatchRef(BaseModel):
    """What moves between the tasks: the batches of one submitted input, and where its requests are.

    JSON all the way down, so Prefect can persist it and show it; it holds ids and paths, never a key.
    """

    batch_ids: list[str]
    input_files: list[str] = Field(description="The batch input files, one per batch, in input order.")
    endpoint: str | None = None
    models: list[str | None] = Field(default_factory=list)
    fingerprints: list[str] = Field(default_factory=list)
    attempt: int = 0
    submitted_by: str = Field("", description="The flow run that created or re-attached to the batches.")
    base_url: str | None = Field(None, description="The service (never the key).")
    api_key_block: str | None = Field(None, description="Name of the Prefect Secret block with the key.")
    statuses: dict[str, str] = Field(default_factory=dict, description="Last seen status per batch id.")
    resubmit: str | None = Field(None, description="Why a batch must be made again (cancelled, deleted).")
    batch_errors: list[dict[str, Any]] = Field(default_factory=list, description="Batch-level errors.")

    def expected_ids(self) -> list[str]:
        """The custom_ids of the input files, in input order."""
        return [cid for path in self.input_files for cid in iter_custom_ids(path)]


def iter_custom_ids(path: str | Path) -> Iterator[str]:
    """The custom_ids of a batch-input JSONL file, in file order."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)["custom_id"]


def _current_flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "")


def _transient(task: Any, run: Any, state: Any) -> bool:
    """Retry a failed task only for trouble that can pass (the library already retried it quickly)."""
    from batch_openai import BatchTransientError

    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # the failure the state carries
            exc = raised
    return isinstance(exc, BatchTransientError | ConnectionError | TimeoutError)


def shard_record(shard: Any) -> dict[str, Any]:
    """A JSON-friendly description of a library `Shard`."""
    return {
        "path": str(shard.path),
        "endpoint": shard.endpoint,
        "model": shard.model,
        "count": int(shard.count),
        "size_bytes": int(shard.size_bytes),
        "fingerprint": shard.fingerprint,
    }


# ---------------------------------------------------------------- build
# Not cached: the shard files must exist on this machine, and rebuilding them is cheap and deterministic.
@task(name="build-shards", task_run_name="build shards (round {round_no})", cache_policy=NO_CACHE)
def build_shards(
    source: Any,
    shard_dir: str,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    round_no: int = 1,
) -> list[dict[str, Any]]:
    """Validate requests (a `BatchRequestBuilder` or a native batch-input JSONL) and write content-named
    shard files, one per batch; returns their records (path, endpoint, model, count, fingerprint)."""
    shards = _write_shards(source, Path(shard_dir), max_requests, max_bytes)
    count = sum(s["count"] for s in shards)
    get_run_logger().info("round %d: %d request(s) in %d shard(s)", round_no, count, len(shards))
    return shards


def _write_shards(source: Any, shard_dir: Path, max_requests: int, max_bytes: int) -> list[dict[str, Any]]:
    """A builder's shards, or a JSONL file's, streamed (a million requests never sit in memory)."""
    from batch_openai import BatchRequestBuilder

    limits = {"max_requests": max_requests, "max_bytes": max_bytes}
    if isinstance(source, BatchRequestBuilder):
        return [shard_record(s) for s in source.write_shards(shard_dir, **limits)]
    return [shard_record(s) for s in BatchRequestBuilder.shard_jsonl(source, shard_dir, **limits)]


# ---------------------------------------------------------------- submit
@task(
    name="submit-shard",
    task_run_name="submit shard {fingerprint:.12}",
    cache_policy=submit_cache_policy(),
    persist_result=True,
    result_serializer="json",
    cache_expiration=timedelta(days=30),
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_transient,
)
def submit_shard(
    shard_path: str,
    fingerprint: str,
    endpoint: str,
    attempt: int = 0,
    description: str | None = None,
    base_url: str | None = None,
    api_key_block: str | None = None,
) -> dict[str, Any]:
    """Upload one shard and create its batch, or find the batch an earlier try already made.

    Cached by content (see `batch_openai.flows.caching`); the fingerprint also goes into the batch
    metadata, so a lost create answer or a lost cache record is recovered from `batches.list`.
    """
    from batch_openai import submit_file

    client = build_client(base_url, api_key_block)
    # attempt > 0: a deliberate resubmission (cancelled or deleted remotely), a new identity.
    fp = fingerprint if attempt == 0 else f"{fingerprint}-a{attempt}"
    job = submit_file(
        client,
        shard_path,
        endpoint=endpoint,
        description=description,
        metadata={"batch_openai_attempt": str(attempt)},
        fingerprint=fp,
    )
    record_batch(job.batches[0], event="created", description=description)
    get_run_logger().info("shard %s → batch %s (%s)", fingerprint[:12], job.batch_id, job.status)
    return {"batch_id": job.batch_id, "flow_run_id": _current_flow_run_id()}


@task(name="submit-batch", cache_policy=NO_CACHE)
def submit_batch(
    source: Any,
    *,
    description: str | None = None,
    base_url: str | None = None,
    api_key_block: str | None = None,
    attempt: int = 0,
    work_dir: str | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    result_storage: str | None = None,
) -> BatchRef:
    """Submit requests as batches, once: a rerun (after a crash, or a second run) re-attaches.

    `source`: a `BatchRequestBuilder`, a native batch-input JSONL path or URL, or a shard record from
    `build_shards`. Requests are split into shards (by endpoint and model, within the service's
    limits) under `work_dir`; each shard's batch is made by the cached `submit_shard` task, whose
    cache records go to `result_storage` (a storage block slug or a URL; default: beside a URL
    `work_dir`, else Prefect's local result storage).
    """
    shards = [source] if isinstance(source, dict) else _shards_of(source, work_dir, max_requests, max_bytes)
    storage = submit_cache_storage(work_dir, result_storage)
    made = [
        _submit_shard_named(s, storage)(
            s["path"],
            s["fingerprint"],
            s["endpoint"],
            attempt=attempt,
            description=description,
            base_url=base_url,
            api_key_block=api_key_block,
        )
        for s in shards
    ]
    return BatchRef(
        batch_ids=[m["batch_id"] for m in made],
        input_files=[s["path"] for s in shards],
        endpoint=shards[0]["endpoint"] if len({s["endpoint"] for s in shards}) == 1 else None,
        models=[s["model"] for s in shards],
        fingerprints=[s["fingerprint"] for s in shards],
        attempt=attempt,
        submitted_by=made[0]["flow_run_id"] if len({m["flow_run_id"] for m in made}) == 1 else "",
        base_url=base_url,
        api_key_block=api_key_block,
    )


def _submit_shard_named(shard: dict[str, Any], storage: Any) -> Any:
    """`submit_shard`, its run named after the shard's label ("create batch for shard 3/12") if any,
    keeping its cache records in `storage` (None: Prefect's default)."""
    options: dict[str, Any] = {}
    if shard.get("label"):
        options["task_run_name"] = f"create batch for {shard['label']}"
    if storage is not None:
        options["result_storage"] = storage
    return submit_shard.with_options(**options) if options else submit_shard


def _shards_of(source: Any, work_dir: str | None, max_requests: int, max_bytes: int) -> list[dict[str, Any]]:
    workspace = Workspace.of(work_dir)
    shard_dir = workspace.local / "shards"  # content-named files: equal requests, equal names
    shards = _write_shards(source, shard_dir, max_requests, max_bytes)
    workspace.push(s["path"] for s in shards)
    return shards


# ---------------------------------------------------------------- wait
def _progress_hook(ref: BatchRef, reattached: bool) -> Callable[[Any], None]:
    """Log and record each status change once (not every poll), and keep the run's progress board."""
    from batch_openai.flows.artifacts import board_for
    from batch_openai.lifecycle import request_counts

    log = get_run_logger()
    board = board_for(_current_flow_run_id())
    seen: dict[str, str] = {}

    def on_progress(batch: Any) -> None:
        total, completed, failed = request_counts(batch)
        done = total if batch.status == "completed" else completed + failed
        board.report(batch.id, done, total, status=batch.status, completed=completed, failed=failed)
        if seen.get(batch.id) == batch.status:
            return
        event = "attached" if batch.id not in seen and reattached else "status"
        seen[batch.id] = batch.status
        record_batch(batch, event=event)
        log.info("batch %s %s: %d/%d done", batch.id, batch.status, completed + failed, total)

    return on_progress


@task(
    name="wait-for-batch",
    task_run_name="wait for {ref.batch_ids[0]}",
    cache_policy=NO_CACHE,  # live state
    retries=3,
    retry_delay_seconds=[30, 120, 600],
    retry_condition_fn=_transient,  # the service being unreachable for a while is not a batch failure
)
def wait_for_batch(
    ref: BatchRef,
    poll_interval: float = 60.0,
    max_poll_interval: float = 600.0,
    timeout: float | None = None,
    token_limit_retries: int = 5,
) -> BatchRef:
    """Poll the batches with a growing interval until they have ended (`BatchJob.settle`).

    A batch refused for the enqueued-token limit is created again from the same upload once this job's
    batches have left the queue. Returns the ref with each batch's final status, and `resubmit` set
    when a batch must be made again on purpose (one this run re-attached to was cancelled or deleted
    remotely: see `batch_openai.lifecycle.resubmit_reason`).
    """
    from batch_openai import BatchJob, BatchNotFoundError
    from batch_openai.lifecycle import resubmit_reason

    client = build_client(ref.base_url, ref.api_key_block)
    reattached = ref.submitted_by != _current_flow_run_id()
    try:
        job = BatchJob.from_ids(client, ref.batch_ids)
    except BatchNotFoundError:
        get_run_logger().warning("batch %s no longer exists (deleted remotely)", ref.batch_ids)
        return ref.model_copy(update={"resubmit": resubmit_reason(None, reattached=reattached)})
    on_progress = _progress_hook(ref, reattached)
    for batch in job.batches:  # a batch already over is never polled again: record what it is now
        on_progress(batch)
    job.settle(
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        on_progress=on_progress,
        timeout=timeout,
        token_limit_retries=token_limit_retries,
    )
    reasons = [resubmit_reason(b, reattached=reattached) for b in job.batches]
    reason = next((r for r in reasons if r is not None), None)
    if reason is not None:
        get_run_logger().warning("batch %s must be made again: %s", ref.batch_ids, reason)
    return ref.model_copy(
        update={
            "batch_ids": job.batch_ids,  # a requeued batch has a new id
            "statuses": {b.id: b.status for b in job.batches},
            "resubmit": reason,
            "batch_errors": [{"code": e.code, "message": e.message, "line": e.line} for e in job.errors[:5]],
        }
    )


# ---------------------------------------------------------------- collect and parse
@task(
    name="collect-batch",
    task_run_name="collect {ref.batch_ids[0]}",
    cache_policy=NO_CACHE,
    persist_result=False,  # a file-backed object: its files are the record
)
def collect_batch(ref: BatchRef, download_dir: str | None = None) -> Any:
    """Stream the ended batches' output and error files to disk; return a file-backed `BatchResult`.

    One outcome per input `custom_id`, in input order. Files land in `download_dir/<batch id>/` (a temp
    directory when None); a terminal batch never changes, so finished downloads are reused.
    """
    from batch_openai import BatchJob, BatchResult

    target = Path(download_dir) / ref.batch_ids[0] if download_dir else None
    expected = ref.expected_ids()
    if target is not None:
        done = target / ".complete"
        if not done.exists():
            job = BatchJob.from_ids(build_client(ref.base_url, ref.api_key_block), ref.batch_ids)
            job.download(target)
            done.write_bytes(b"")
        output, errors = (target / f"{ref.batch_ids[0]}_{kind}.jsonl" for kind in ("output", "errors"))
        return BatchResult.from_files(
            output if output.exists() else None, errors if errors.exists() else None, expected_ids=expected
        )
    job = BatchJob.from_ids(build_client(ref.base_url, ref.api_key_block), ref.batch_ids)
    return job.result(expected_ids=expected)


@task(name="parse-batch", cache_policy=NO_CACHE, persist_result=False)
def parse_batch(done: Any, model: type, download_dir: str | None = None) -> list[Any]:
    """Validate each answer against a pydantic model: a `ParsedItem` (`.custom_id`, `.ok`, `.value`,
    `.error`) per input, in input order. `done`: a `BatchRef` from `wait_for_batch`, or a `BatchResult`."""
    result = collect_batch.fn(done, download_dir) if isinstance(done, BatchRef) else done
    return result.parse_each(model)
