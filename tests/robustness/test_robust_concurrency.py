"""The local server under 20 concurrent submitters (issue 8, item 6) loses and mixes up nothing.

Each submitter uploads its own file, creates its batch and waits, all at once. Afterwards every
submitter has exactly its own ids back, each answer is the one a lone batch of the same request gets
(the mock's answer depends only on the request), and the server holds one batch per submitter.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from batch_openai import BatchRequestBuilder, BatchResult
from batch_openai.local import LocalBatchServer

SUBMITTERS = 20


def _builder(who: int, n: int) -> BatchRequestBuilder:
    builder = BatchRequestBuilder()
    for i in range(n):
        prompt = f"Submitter {who}, item {i}: say something about {who * 7919 + i}."
        builder.add([{"role": "user", "content": prompt}], model="gpt-4o-mini", custom_id=f"s{who}-{i}")
    return builder


def _contents(result: BatchResult) -> dict[str, object]:
    return {item.custom_id: item.content for item in result if item.ok}


def _run_concurrently(server: LocalBatchServer, n: int) -> None:
    start = Barrier(SUBMITTERS)

    def submit_and_wait(who: int) -> tuple[str, BatchResult]:
        client = server.client()
        builder = _builder(who, n)
        start.wait(30)  # everyone uploads and creates at the same moment
        job = builder.submit(client, description=f"submitter {who}")
        return job.batch_id, job.wait(poll_interval=0.05, timeout=300)

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        done = list(pool.map(submit_and_wait, range(SUBMITTERS)))

    batch_ids = {batch_id for batch_id, _ in done}
    assert len(batch_ids) == SUBMITTERS
    listed = {b.id: b for b in server.client().batches.list(limit=100)}
    assert set(listed) == batch_ids
    # The reference: every request again, in one batch on its own.
    reference = BatchRequestBuilder()
    for who in range(SUBMITTERS):
        for request_line in (
            _builder(who, n).to_jsonl(server.state_dir / f"ref-{who}.jsonl").read_text().splitlines()
        ):
            reference.add_request("/v1/chat/completions", _body(request_line), custom_id=_cid(request_line))
    expected = _contents(reference.submit(server.client()).wait(poll_interval=0.05, timeout=300))
    for who, (batch_id, result) in enumerate(done):
        items = list(result)
        assert sorted(i.custom_id for i in items) == sorted(f"s{who}-{i}" for i in range(n))
        assert all(i.ok for i in items), [i for i in items if not i.ok][:3]
        assert _contents(result) == {k: v for k, v in expected.items() if k.startswith(f"s{who}-")}
        batch = listed[batch_id]
        assert batch.request_counts.total == n and batch.request_counts.completed == n
        assert batch.metadata["description"] == f"submitter {who}"


def _body(line: str) -> dict:
    return json.loads(line)["body"]


def _cid(line: str) -> str:
    return json.loads(line)["custom_id"]


def test_twenty_concurrent_submitters_lose_and_mix_up_nothing():
    with LocalBatchServer(step_seconds=0.0, shuffle_output=True) as server:
        _run_concurrently(server, n=50)


@pytest.mark.slow
def test_twenty_concurrent_submitters_at_size(slow_size):
    with LocalBatchServer(step_seconds=0.0, shuffle_output=True) as server:
        _run_concurrently(server, n=slow_size(5_000))
