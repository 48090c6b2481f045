"""The library's registry hook: `submit(..., registry=)`, `submit_file`, `BatchJob.from_id` and the async
twins keep a `BatchRegistry` record current, on Prefect's ephemeral engine (as tests/registry does)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flows_harness import shared_registry_home
from library_helpers import chat_builder

from batch_openai import BatchJob, BatchRegistry, BatchRegistryError
from batch_openai.local import LocalBatchServer


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchRegistry]:
    """A registry with a home of its own, written through the ephemeral engine: the session's registry
    home (`shared_registry_home`, the one tests/registry uses; its engine start is the slow part)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("hook-prefect-home")))
        mp.delenv("PREFECT_API_URL", raising=False)
        yield BatchRegistry(shared_registry_home())


@pytest.fixture(scope="module")
def paced_server() -> Iterator[LocalBatchServer]:
    """Batches take a few polls, so wait() sees in_progress and finalizing before completed."""
    with LocalBatchServer(step_seconds=0.2, seed=3) as srv:
        yield srv


def test_submit_and_wait_keep_the_record_current(registry: BatchRegistry, paced_server: Any) -> None:
    client = paced_server.client()
    job = chat_builder(4, prefix="hook").submit(client, description="hooked", registry=registry)
    first = registry.get_record(job.batch_id)  # tracked at create, before any poll
    assert (first.status, first.description, first.input_file_id) == (job.status, "hooked", job.input_file_id)
    seen: list[str] = []
    job.wait(poll_interval=0.05, on_progress=lambda b: seen.append(b.status))
    done = registry.get_record(job.batch_id)
    assert "completed" in seen and done.is_terminal and done.status == "completed"
    assert done.output_file_id == job.batches[0].output_file_id and done.output_file_id
    assert done.request_counts == {"total": 4, "completed": 4, "failed": 0}

    # from_id (async twin) records a batch it reconnects to; await_completion on a finished one keeps it.
    registry.delete(job.batch_id)

    async def reconnect() -> None:
        again = await BatchJob.async_from_id(paced_server.async_client(), job.batch_id, registry=registry)
        await again.await_completion(poll_interval=0.05)

    asyncio.run(reconnect())
    assert registry.get_record(job.batch_id).status == "completed"


def test_async_submit_tracks_and_a_broken_registry_never_fails_the_job(
    registry: BatchRegistry, paced_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> BatchJob:
        job = await chat_builder(2, prefix="hook-async").async_submit(
            paced_server.async_client(), registry=registry
        )
        assert registry.get_record(job.batch_id).status == job.status
        await job.await_completion(poll_interval=0.05)
        return job

    job = asyncio.run(run())
    assert registry.get_record(job.batch_id).status == "completed"

    class Unreachable(BatchRegistry):
        """A registry whose every write fails the way an unreachable Prefect does."""

        def track_batch(self, batch: Any, *, description: str | None = None) -> Any:
            raise BatchRegistryError("Prefect is unreachable (sk-secret-key-1234 in the message)")

    caplog.set_level(logging.WARNING, logger="batch_openai")
    broken = Unreachable(tmp_path / "never-started")
    job = chat_builder(2, prefix="hook-broken").submit(paced_server.client(), registry=broken)
    result = job.wait(poll_interval=0.05)
    assert len(result.succeeded) == 2
    warnings = [r.getMessage() for r in caplog.records if "registry" in r.getMessage()]
    assert len(warnings) >= 2 and all("sk-secret" not in w for w in warnings)  # at create and on changes
