"""The async path: `async_submit`, `await_completion`, `async_from_id`, cancel, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from library_helpers import FAST, chat_builder

from batch_openai import BatchJob, BatchJobError, BatchTimeoutError, Outcome, async_submit_file
from batch_openai.local import LocalBatchServer


def test_async_submit_and_await_completion(server: LocalBatchServer) -> None:
    async def main() -> None:
        client = server.async_client()
        b = chat_builder(5, prefix="async")
        seen: list[str] = []
        job = await b.async_submit(client, description="async run")
        result = await job.await_completion(
            poll_interval=0.02, on_progress=lambda batch: seen.append(batch.status)
        )
        assert seen[-1] == "completed"
        assert [i.custom_id for i in result.items] == b.custom_ids
        assert result.counts[Outcome.SUCCEEDED] == 5
        again = await BatchJob.async_from_id(client, job.batch_id)
        assert again.description == "async run"
        assert len(await again.async_result(expected_ids=b.custom_ids)) == 5
        # idempotent: same content, same batch
        assert (await b.async_submit(client)).batch_id == job.batch_id

    asyncio.run(main())


def test_async_sharded_with_faults(server: LocalBatchServer) -> None:
    server.add_fault(route="POST /v1/batches", kind="drop", nth=1)
    server.add_fault(route="GET /v1/batches/{batch_id}", kind="500", nth=2)

    async def main() -> None:
        client = server.async_client()
        b = chat_builder(5, prefix="async-shard")
        job = await b.async_submit(client, max_requests=2, retry=FAST)
        assert len(job.batch_ids) == 3
        result = await job.await_completion(poll_interval=0.02)
        assert [i.custom_id for i in result.items] == b.custom_ids

    asyncio.run(main())


def test_async_cancel_and_timeout(tmp_path: Any) -> None:
    async def main(srv: LocalBatchServer) -> None:
        client = srv.async_client()
        job = await chat_builder(30, prefix="async-cancel").async_submit(client)
        with pytest.raises(BatchTimeoutError):
            await job.await_completion(poll_interval=0.05, timeout=0.2)
        await job.async_cancel()
        with pytest.raises(BatchJobError) as info:
            await job.await_completion(poll_interval=0.1, timeout=60)
        assert info.value.status == "cancelled"
        assert sum(info.value.result.counts.values()) == 30

    with LocalBatchServer(step_seconds=1.0, seed=2) as srv:
        asyncio.run(main(srv))


def test_async_submit_file(server: LocalBatchServer, tmp_path: Any) -> None:
    path = chat_builder(2, prefix="async-file").to_jsonl(tmp_path / "in.jsonl")

    async def main() -> None:
        client = server.async_client()
        job = await async_submit_file(client, path, endpoint="/v1/chat/completions", description="f")
        result = await job.await_completion(poll_interval=0.02)
        assert len(result.succeeded) == 2
        out, err = await job.async_download(tmp_path / "dl")
        assert out is not None and len(out.read_bytes().splitlines()) == 2 and err is None

    asyncio.run(main())


def test_sync_methods_refuse_an_async_client(server: LocalBatchServer) -> None:
    async def main() -> BatchJob:
        return await chat_builder(1, prefix="async-guard").async_submit(server.async_client())

    job = asyncio.run(main())
    assert job.is_async
    with pytest.raises(TypeError, match="async_wait"):
        job.wait()
    with pytest.raises(TypeError, match="async_cancel"):
        job.cancel()
