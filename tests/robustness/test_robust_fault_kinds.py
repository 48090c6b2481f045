"""The local server's `lost` and `truncate` faults: a handled call whose answer never (fully) arrives."""

from __future__ import annotations

import io
import time

import openai
import pytest

from batch_openai.local import LocalBatchServer

LINE = (
    b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions",'
    b'"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}\n'
)


def test_lost_create_answer_still_creates_the_batch():
    with LocalBatchServer(step_seconds=0.0) as server:
        client = server.client(max_retries=0)
        f = client.files.create(file=("a.jsonl", io.BytesIO(LINE)), purpose="batch")
        server.add_fault(route="POST /v1/batches", kind="lost", nth=1)
        with pytest.raises(openai.APIConnectionError):
            client.batches.create(
                input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        [batch] = client.batches.list().data  # made, though its answer was lost
        assert batch.input_file_id == f.id


def test_truncated_answer_is_a_connection_error_and_the_next_call_is_whole():
    with LocalBatchServer(step_seconds=0.0) as server:
        client = server.client(max_retries=0)
        f = client.files.create(file=("a.jsonl", io.BytesIO(LINE)), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 30
        while batch.status != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
            batch = client.batches.retrieve(batch.id)
        server.add_fault(route="GET /v1/files/{file_id}/content", kind="truncate", nth=1)
        with pytest.raises(openai.APIConnectionError):
            client.files.content(batch.output_file_id).read()
        whole = client.files.content(batch.output_file_id).read()
        assert whole.count(b"\n") == 1 and b'"custom_id":"a"' in whole
        assert [f["fired"] for f in server.faults()] == [1]


def test_unknown_fault_kind_names_the_known_ones():
    with LocalBatchServer() as server, pytest.raises(ValueError, match="lost, truncate"):
        server.add_fault(route="*", kind="explode")
