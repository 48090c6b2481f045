"""Validation in `validating`: the batch fails with `errors.data[]` naming code and line."""

from __future__ import annotations

from typing import Any

import pytest
from local_helpers import chat_line, jsonl, submit, wait

from batch_openai.local import LocalBatchServer


def failed_errors(client: Any, lines: list[Any] | bytes, **kw: Any) -> list[dict[str, Any]]:
    batch = wait(client, submit(client, lines, **kw).id)
    assert batch.status == "failed", batch.status
    assert batch.failed_at is not None and batch.output_file_id is None and batch.in_progress_at is None
    assert batch.errors.object == "list"
    return [e.model_dump() for e in batch.errors.data]


@pytest.mark.parametrize(
    ("bad", "code", "param"),
    [
        ("{not json", "invalid_json_line", None),
        ('["a list"]', "invalid_json_line", None),
        (
            {"method": "POST", "url": "/v1/chat/completions", "body": {}},
            "missing_required_parameter",
            "custom_id",
        ),
        (
            {"custom_id": "x", "url": "/v1/chat/completions", "body": {}},
            "missing_required_parameter",
            "method",
        ),
        ({"custom_id": "x", "method": "POST", "body": {}}, "missing_required_parameter", "url"),
        (
            {"custom_id": "x", "method": "POST", "url": "/v1/chat/completions"},
            "missing_required_parameter",
            "body",
        ),
        ({**chat_line("x"), "url": "/v1/embeddings"}, "invalid_url", "url"),
        (chat_line("x", stream=True), "streaming_unsupported", "body.stream"),
        (chat_line("x", model="gpt-4o"), "mismatched_model", "body.model"),
        (chat_line(0), "duplicate_custom_id", "custom_id"),
        (
            {**chat_line("x"), "body": {"messages": [{"role": "user", "content": "hi"}]}},
            "invalid_request",
            "body.model",
        ),
        ({**chat_line("x"), "body": {"model": "gpt-4o-mini"}}, "invalid_request", "body.messages"),
    ],
)
def test_bad_line_fails_the_batch_with_its_line(client: Any, bad: Any, code: str, param: str | None) -> None:
    errors = failed_errors(client, [chat_line(0), chat_line(1), bad])
    assert errors[0]["code"] == code
    assert errors[0]["line"] == 3
    assert errors[0]["param"] == param
    assert errors[0]["message"]


def test_every_bad_line_is_reported(client: Any) -> None:
    errors = failed_errors(client, [chat_line(0), "nope", chat_line(2, stream=True), "{"])
    assert [(e["code"], e["line"]) for e in errors] == [
        ("invalid_json_line", 2),
        ("streaming_unsupported", 3),
        ("invalid_json_line", 4),
    ]


def test_empty_file_fails(client: Any) -> None:
    errors = failed_errors(client, b"\n")
    assert errors[0]["code"] == "empty_file"


def test_too_many_lines_and_too_many_bytes() -> None:
    with LocalBatchServer(step_seconds=0) as srv:
        client = srv.client(max_retries=0)
        srv.config.max_lines = 3  # the real limits (50,000 / 200 MB) scaled down for a fast test
        errors = failed_errors(client, [chat_line(i) for i in range(4)])
        assert errors[0]["code"] == "request_limit_exceeded" and errors[0]["line"] == 4
        assert wait(client, submit(client, [chat_line(i) for i in range(3)]).id).status == "completed"
        srv.config.max_bytes = 100
        errors = failed_errors(client, [chat_line(i) for i in range(2)])
        assert errors[0]["code"] == "file_too_large"


def test_50000_lines_are_accepted_and_50001_are_not(client: Any) -> None:
    line = b'{"custom_id":"%d","method":"POST","url":"/v1/moderations","body":{"input":"x"}}'
    ok = b"\n".join(line % i for i in range(50_000))
    batch = wait(client, submit(client, ok, endpoint="/v1/moderations").id, timeout=60)
    assert batch.status == "completed" and batch.request_counts.completed == 50_000
    errors = failed_errors(client, ok + b"\n" + line % 50_000, endpoint="/v1/moderations")
    assert errors[0]["code"] == "request_limit_exceeded" and errors[0]["line"] == 50_001


def test_embeddings_batch_input_cap(client: Any) -> None:
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "m", "input": ["a"] * 30_000},
        }
        for i in range(2)
    ]
    errors = failed_errors(client, jsonl(lines), endpoint="/v1/embeddings")
    assert errors[0]["code"] == "too_many_inputs"


def test_enqueued_token_limit_fails_the_second_batch() -> None:
    with LocalBatchServer(step_seconds=0.5, enqueued_token_limit=60) as srv:
        client = srv.client(max_retries=0)
        first = submit(client, [chat_line(i, content="word " * 5) for i in range(3)])  # 3 x 14 tokens
        wait(client, first.id, until=("in_progress",))
        second = submit(client, [chat_line(i, content="word " * 5) for i in range(3)])
        failed = wait(client, second.id)
        assert failed.status == "failed"
        err = failed.errors.data[0]
        assert (
            err.code == "token_limit_exceeded"
            and "Enqueued token limit reached for gpt-4o-mini" in err.message
        )
        assert wait(client, first.id).status == "completed"
        # Once the first is done its tokens are no longer enqueued: the same file now passes.
        third = submit(client, [chat_line(i, content="word " * 5) for i in range(3)])
        assert wait(client, third.id).status == "completed"
