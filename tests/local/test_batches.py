"""Batches: create (and its 400s), retrieve, list with cursor, cancel's 409, the full object."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from local_helpers import chat_line, read_lines, submit, upload, wait


def test_completed_batch_object_and_output(client: Any) -> None:
    lines = [chat_line(i) for i in range(5)]
    batch = submit(client, lines, metadata={"fingerprint": "sha256:" + "ab" * 32, "description": "t"})
    assert batch.status == "validating" and batch.object == "batch" and batch.completion_window == "24h"
    assert batch.expires_at - batch.created_at == 86400
    done = wait(client, batch.id)
    assert done.status == "completed"
    assert done.metadata == {"fingerprint": "sha256:" + "ab" * 32, "description": "t"}
    assert (
        done.request_counts.total == 5
        and done.request_counts.completed == 5
        and done.request_counts.failed == 0
    )
    for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at"):
        assert getattr(done, stamp) is not None, stamp
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
    assert done.error_file_id is None and done.model == "gpt-4o-mini"
    out = read_lines(client, done.output_file_id)
    assert sorted(x["custom_id"] for x in out) == [f"req-{i}" for i in range(5)]
    assert all(x["error"] is None and x["response"]["status_code"] == 200 for x in out)
    assert all(x["id"].startswith("batch_req_") for x in out)
    usage = done.usage
    assert usage.input_tokens == sum(x["response"]["body"]["usage"]["prompt_tokens"] for x in out)
    assert usage.output_tokens == sum(x["response"]["body"]["usage"]["completion_tokens"] for x in out)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    output_file = client.files.retrieve(done.output_file_id)
    assert output_file.purpose == "batch_output"


def test_list_is_newest_first_with_cursor(client: Any) -> None:
    f = upload(client, [chat_line(1)])
    ids = [
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(5)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more is True
    second = client.batches.list(limit=2, after=page.data[-1].id)
    assert [b.id for b in second.data] == ids[::-1][2:4]
    walked = [b.id for b in client.batches.list(limit=3)]  # the SDK follows the cursor
    assert walked[:5] == ids[::-1] and len(walked) == len(set(walked))
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)


def test_unknown_batch_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_nope")


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"endpoint": "/v1/nothing"}, "endpoint", "invalid_value"),
        ({"completion_window": "48h"}, "completion_window", "invalid_value"),
        ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"metadata": {"k": "x" * 513}}, "metadata.k", "string_above_max_length"),
        ({"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65, "string_above_max_length"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "object_above_max_properties"),
        ({"input_file_id": "file-missing"}, "input_file_id", "invalid_value"),
        (
            {"output_expires_after": {"anchor": "created_at", "seconds": 10}},
            "output_expires_after.seconds",
            None,
        ),
    ],
)
def test_create_rejects_bad_parameters(
    client: Any, kwargs: dict[str, Any], param: str, code: str | None
) -> None:
    f = upload(client, [chat_line(1)])
    params: dict[str, Any] = {
        "input_file_id": f.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    params.update(kwargs)
    before = len(client.batches.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(**params)
    body = err.value.body
    assert isinstance(body, dict) and body["param"] == param
    if code is not None:
        assert body["code"] == code
    assert len(client.batches.list(limit=100).data) == before  # nothing was created


def test_metadata_limits_accepted_at_the_edge(client: Any) -> None:
    meta = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    batch = submit(client, [chat_line(1)], metadata=meta)
    assert client.batches.retrieve(batch.id).metadata == meta
    assert meta == next(b.metadata for b in client.batches.list(limit=100) if b.id == batch.id)


def test_cancel_finished_batch_is_409(client: Any) -> None:
    batch = wait(client, submit(client, [chat_line(1)]).id)
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_input_file_of_wrong_purpose_is_rejected(client: Any) -> None:
    done = wait(client, submit(client, [chat_line(1)]).id)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.batches.create(
            input_file_id=done.output_file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_async_client_round_trip(server: Any) -> None:
    import asyncio
    import io

    from local_helpers import jsonl

    async def main() -> Any:
        client = server.async_client(max_retries=0)
        f = await client.files.create(file=("a.jsonl", io.BytesIO(jsonl([chat_line(1)]))), purpose="batch")
        batch = await client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status not in ("completed", "failed"):
            await asyncio.sleep(0.02)
            batch = await client.batches.retrieve(batch.id)
        content = await client.files.content(batch.output_file_id)
        await client.close()
        return batch, content.content

    batch, content = asyncio.run(main())
    assert batch.status == "completed" and b'"custom_id":"req-1"' in content


def test_output_expires_after_applies_to_output_files(client: Any) -> None:
    batch = submit(client, [chat_line(1)], output_expires_after={"anchor": "created_at", "seconds": 3600})
    out = client.files.retrieve(wait(client, batch.id).output_file_id)
    assert out.expires_at is not None and out.expires_at - out.created_at == 3600
