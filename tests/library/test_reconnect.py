"""Reconnecting to batches by id, sync and async, and the one-definition twins behind it."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from library_helpers import chat_builder

from batch_openai import BatchJob, BatchValidationError
from batch_openai.local import LocalBatchServer


@pytest.mark.parametrize("bad", ["", "   "])
def test_an_empty_batch_id_is_refused_before_any_call(
    client: Any, server: LocalBatchServer, bad: str
) -> None:
    before = server.stats().get("GET /v1/batches/{batch_id}", 0)
    with pytest.raises(BatchValidationError, match=r"batch id .* is empty"):
        BatchJob.from_id(client, bad)
    assert server.stats().get("GET /v1/batches/{batch_id}", 0) == before


def test_async_from_ids_reconnects_to_a_sharded_job(server: LocalBatchServer) -> None:
    builder = chat_builder(2, prefix="reconnect-a")
    for i in range(2):
        builder.add([{"role": "user", "content": f"other model {i}"}], model="gpt-4o", custom_id=f"b-{i}")
    job = builder.submit(server.client())
    assert len(job.batch_ids) == 2

    async def main() -> BatchJob:
        again = await BatchJob.async_from_ids(server.async_client(), job.batch_ids)
        await again.async_settle(poll_interval=0.02)
        return again

    again = asyncio.run(main())
    assert again.batch_ids == job.batch_ids and again.is_terminal


def test_every_public_pair_shows_one_signature() -> None:
    """The sync method and its async twin are made from one definition: same parameters, same result."""
    for name in ("refresh", "cancel", "settle", "wait", "download", "result"):
        sync, twin = getattr(BatchJob, name), getattr(BatchJob, f"async_{name}")
        assert inspect.signature(sync) == inspect.signature(twin), name
        assert inspect.iscoroutinefunction(twin) and not inspect.iscoroutinefunction(sync)
    assert BatchJob.await_completion is BatchJob.async_wait
    params = list(inspect.signature(BatchJob.async_from_ids).parameters)
    assert params[:2] == ["async_client", "batch_ids"]
