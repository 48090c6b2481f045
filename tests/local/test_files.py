"""Files: upload, retrieve, content, list, delete, and their errors."""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest
from local_helpers import chat_line, jsonl, upload


def test_upload_retrieve_content_delete(client: Any) -> None:
    data = jsonl([chat_line(1), chat_line(2)])
    f = upload(client, data, name="two.jsonl")
    assert (f.object, f.purpose, f.filename, f.bytes) == ("file", "batch", "two.jsonl", len(data))
    assert f.expires_at is not None and f.expires_at - f.created_at == 30 * 86400
    assert client.files.retrieve(f.id).id == f.id
    assert client.files.content(f.id).content == data
    with client.files.with_streaming_response.content(f.id) as resp:
        assert b"".join(resp.iter_bytes()) == data
    deleted = client.files.delete(f.id)
    assert deleted.deleted is True and deleted.id == f.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(f.id)


def test_list_newest_first_with_purpose_and_cursor(client: Any) -> None:
    ids = [upload(client, [chat_line(i)]).id for i in range(3)]
    listed = [f.id for f in client.files.list(purpose="batch", limit=10000)]
    assert [i for i in listed if i in ids] == ids[::-1]
    page = client.files.list(limit=2)
    assert len(page.data) == 2 and page.has_more is True
    assert client.files.list(purpose="batch_output", limit=10000).data == [] or all(
        f.purpose == "batch_output" for f in client.files.list(purpose="batch_output")
    )
    everything = [f.id for f in client.files.list(limit=1)]  # auto-pagination follows `after`
    assert set(ids) <= set(everything)


def test_batch_upload_must_be_jsonl(client: Any) -> None:
    with pytest.raises(openai.BadRequestError, match=r"\.jsonl"):
        client.files.create(file=("input.csv", io.BytesIO(b"a,b\n")), purpose="batch")


def test_unknown_purpose_is_rejected(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.body["param"] == "purpose"  # type: ignore[index]


def test_expires_after_sets_expiry(client: Any) -> None:
    f = client.files.create(
        file=("x.jsonl", io.BytesIO(jsonl([chat_line(1)]))),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert f.expires_at - f.created_at == 7200
