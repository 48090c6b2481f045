"""The flow's Prefect tasks: build → submit → wait → collect. They pass paths and ids, never big objects.

Each task builds its own `openai` client (see `batch_openai.flows.client`), so no task parameter, result or log
holds the API key. The submit task is the only cached one: it is the one that spends money.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batch_openai.flows.caching import submit_cache_policy
from batch_openai.flows.classify import batch_failed_for_token_limit
from batch_openai.flows.client import build_client
from batch_openai.flows.output import atomic_binary
from batch_openai.flows.results import collect_rows, count_lines
from batch_openai.flows.tracking import record_batch

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
FINGERPRINT_KEY = "batch_openai_fingerprint"


def _current_flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "")


def _transient(state: Any) -> bool:
    """Retry a failed submit only for trouble that can pass (the library already retried it quickly)."""
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


# Not cached: the shard files must exist on this machine, and rebuilding them is cheap and deterministic.
@task(name="build-shards", task_run_name="build-shards-{round_no}", cache_policy=NO_CACHE)
def build_shards(
    input_path: str, shard_dir: str, max_requests: int, max_bytes: int, round_no: int = 1
) -> list[dict[str, Any]]:
    """Validate a native batch-input JSONL and write content-named shard files; returns their records."""
    from batch_openai import BatchRequestBuilder

    builder = BatchRequestBuilder.from_jsonl(input_path)
    shards = builder.write_shards(shard_dir, max_requests=max_requests, max_bytes=max_bytes)
    get_run_logger().info("round %d: %d request(s) in %d shard(s)", round_no, len(builder), len(shards))
    return [shard_record(s) for s in shards]


@task(
    name="submit-shard",
    task_run_name="submit-{fingerprint:.12}-a{attempt}",
    cache_policy=submit_cache_policy(),
    persist_result=True,
    result_serializer="json",
    cache_expiration=timedelta(days=30),
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=lambda task, run, state: _transient(state),
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

    Cached by content (see `batch_openai.flows.caching`); the fingerprint also goes into the batch metadata so a
    lost create answer or a lost cache record is recovered from `batches.list` instead of paying twice.
    """
    from batch_openai import submit_file

    client = build_client(base_url, api_key_block)
    # attempt > 0: a deliberate resubmission (token limit, cancelled or deleted remotely), a new identity.
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
    return {
        "batch_id": job.batch_id,
        "fingerprint": fingerprint,
        "attempt": attempt,
        "flow_run_id": _current_flow_run_id(),
    }


def _counts(batch: Any) -> tuple[int, int]:
    rc = getattr(batch, "request_counts", None)
    if rc is None:
        return 0, 0
    return int((rc.completed or 0) + (rc.failed or 0)), int(rc.total or 0)


@task(name="wait-batch", task_run_name="wait-{batch_id}", cache_policy=NO_CACHE)  # live state
def wait_for_batch(
    batch_id: str,
    submitted_by: str,
    poll_interval: float = 30.0,
    max_poll_interval: float = 600.0,
    timeout: float | None = None,
    base_url: str | None = None,
    api_key_block: str | None = None,
) -> dict[str, Any]:
    """Poll one batch with a growing interval until it is terminal; a polling error is not a batch failure.

    Returns `{"batch_id", "status", "resubmit": reason | None}`. `resubmit` asks the flow to make a new
    batch on purpose: the enqueued-token limit was hit, or a batch this run re-attached to (made by an
    earlier run) was cancelled or deleted remotely.
    """
    from batch_openai import BatchJob, BatchNotFoundError, OpenAIBatchError
    from batch_openai._job import LATE_FILE_POLLS, files_settled
    from batch_openai.flows.artifacts import board_for

    log = get_run_logger()
    client = build_client(base_url, api_key_block)
    reattached = submitted_by != _current_flow_run_id()
    board = board_for(_current_flow_run_id())
    interval = max(poll_interval, 0.05)
    started = time.monotonic()
    job = None
    late = 0
    last_status: str | None = None
    while True:
        try:
            if job is None:
                job = BatchJob.from_id(client, batch_id)
            else:
                job.refresh()
        except BatchNotFoundError:
            log.warning("batch %s no longer exists (deleted remotely): resubmitting", batch_id)
            return {"batch_id": batch_id, "status": "deleted", "resubmit": "deleted"}
        except OpenAIBatchError as exc:  # transient trouble polling: keep waiting, the batch is fine
            log.warning("polling %s failed (%s); retrying in %.0fs", batch_id, type(exc).__name__, interval)
        else:
            batch = job.batches[0]
            if batch.status != last_status:  # report changes, not every poll
                record_batch(batch, event="attached" if last_status is None and reattached else "status")
                last_status = batch.status
            done, total = _counts(batch)
            board.report(batch_id, done if batch.status != "completed" else total, total)
            status = batch.status
            if reattached and status in ("cancelling", "cancelled"):
                log.warning("re-attached batch %s was cancelled remotely: resubmitting", batch_id)
                return {"batch_id": batch_id, "status": status, "resubmit": "cancelled"}
            if status in TERMINAL and (files_settled(batch) or late >= LATE_FILE_POLLS):
                limited = status == "failed" and batch_failed_for_token_limit(batch.errors)
                log.info("batch %s is %s (%d/%d done)", batch_id, status, done, total)
                return {
                    "batch_id": batch_id,
                    "status": status,
                    "resubmit": "token_limit" if limited else None,
                }
            if status in TERMINAL:
                late += 1  # terminal, but a promised file id has not appeared yet: poll a little more
                interval = min(interval, 2.0)
            else:
                log.info("batch %s %s: %d/%d", batch_id, status, done, total)
        if timeout is not None and time.monotonic() - started > timeout:
            return {"batch_id": batch_id, "status": "timeout", "resubmit": None}
        time.sleep(interval)
        interval = min(interval * 1.5, max(max_poll_interval, poll_interval))


@task(name="collect-batch", task_run_name="collect-{batch_id}")
def collect_batch(
    batch_id: str,
    shard_path: str,
    download_dir: str,
    round_no: int,
    base_url: str | None = None,
    api_key_block: str | None = None,
) -> dict[str, Any]:
    """Stream a terminal batch's files to disk and write one row per shard line, in shard order.

    The rows file is named by batch id and written atomically; a terminal batch never changes, so a
    rerun after a crash reuses a finished rows file instead of downloading again.
    """
    from batch_openai import BatchJob

    rows_path = Path(download_dir) / f"{batch_id}.rows.jsonl"
    summary_path = rows_path.with_suffix(".summary.json")
    if rows_path.exists() and summary_path.exists():
        summary = orjson.loads(summary_path.read_bytes())
        if count_lines(rows_path) == sum(summary["outcomes"].values()):  # whole: reuse it
            return summary
    client = build_client(base_url, api_key_block)
    job = BatchJob.from_id(client, batch_id)
    summary = collect_rows(job, shard_path, Path(download_dir), rows_path, round_no)
    with atomic_binary(summary_path, durable=False) as fh:
        fh.write(orjson.dumps(summary))
    get_run_logger().info("batch %s: %s", batch_id, summary["outcomes"])
    return summary
