"""`BatchResult` read from local output/error files: outcomes, content per endpoint, parse, join, save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from batch_openai import BatchParseError, BatchResult, Outcome


class Answer(BaseModel):
    value: int


def ok(cid: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {
        "id": f"br_{cid}",
        "custom_id": cid,
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }


def chat(content: str | None, **message: Any) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message}}],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 2,
            "total_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }


def never_ran(cid: str, code: str) -> dict[str, Any]:
    return {"id": f"br_{cid}", "custom_id": cid, "response": None, "error": {"code": code, "message": code}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    out = write(
        tmp_path / "out.jsonl",
        [
            ok("c", chat('{"value": 3}')),
            ok("a", chat('{"value": 1}')),
            ok("refused", chat(None, refusal="I can't help with that")),
            ok(
                "tool",
                chat(
                    None,
                    tool_calls=[
                        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                ),
            ),
            ok("badjson", chat("not json")),
        ],
    )
    err = write(
        tmp_path / "err.jsonl",
        [
            ok("e503", {}, status=503),  # a 5xx with no error key: still a failure
            ok(
                "e400",
                {
                    "error": {
                        "message": "too long",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    }
                },
                status=400,
            ),
            never_ran("exp", "batch_expired"),
            never_ran("can", "batch_cancelled"),
            never_ran("tmo", "request_timeout"),
        ],
    )
    return out, err


EXPECTED = ["a", "c", "refused", "tool", "badjson", "e503", "e400", "exp", "can", "tmo", "gone"]


def test_outcomes_from_error_and_status_code(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    outcome = {i.custom_id: i.outcome for i in result.items}
    assert outcome == {
        "a": Outcome.SUCCEEDED,
        "c": Outcome.SUCCEEDED,
        "refused": Outcome.SUCCEEDED,
        "tool": Outcome.SUCCEEDED,
        "badjson": Outcome.SUCCEEDED,
        "e503": Outcome.FAILED,
        "e400": Outcome.FAILED,
        "exp": Outcome.EXPIRED,
        "can": Outcome.CANCELLED,
        "tmo": Outcome.FAILED,
        "gone": Outcome.MISSING,
    }
    assert [i.custom_id for i in result.items] == EXPECTED  # input order, not file order
    assert len(result) == 11
    assert result.counts == {
        Outcome.SUCCEEDED: 5,
        Outcome.FAILED: 3,
        Outcome.EXPIRED: 1,
        Outcome.CANCELLED: 1,
        Outcome.MISSING: 1,
    }
    assert len(result.succeeded) == 5 and len(result.failed) == 6


def test_item_fields(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    a = result.get("a")
    assert a is not None and a.content == '{"value": 1}' and a.status_code == 200 and a.error is None
    assert a.raw_response["choices"][0]["message"]["content"] == '{"value": 1}'
    assert a.usage["total_tokens"] == 5 and a.endpoint == "/v1/chat/completions"
    refused = result.get("refused")
    assert refused.refusal == "I can't help with that" and refused.content is None
    assert result.get("tool").tool_calls[0]["function"]["name"] == "f"
    e503 = result.get("e503")
    assert e503.status_code == 503 and e503.error["code"] == "http_503" and e503.content is None
    assert result.get("e400").error["code"] == "context_length_exceeded"
    assert result.get("exp").error == {"code": "batch_expired", "message": "batch_expired"}
    assert result.get("gone").error["code"] == "missing"
    assert result.usage == {
        "prompt_tokens": 15,
        "completion_tokens": 10,
        "total_tokens": 25,
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


def test_parse_raises_listing_failures(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    with pytest.raises(BatchParseError) as info:
        result.parse(Answer)
    err = info.value
    assert err.custom_ids == ["refused", "tool", "badjson"]
    reasons = dict(err.failures)
    assert reasons["refused"].startswith("refused") and reasons["badjson"].startswith("invalid")
    assert [p.value for p in err.parsed] == [1, 3]


def test_parse_each_never_raises(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    each = result.parse_each(Answer)
    assert [p.custom_id for p in each] == EXPECTED
    assert each[0].ok and each[0].value == Answer(value=1)
    assert not each[5].ok and each[5].error.startswith("failed")
    assert each[-1].error.startswith("missing")


def test_parse_all_good(tmp_path: Path) -> None:
    out = write(tmp_path / "o.jsonl", [ok(f"r{i}", chat(f'{{"value": {i}}}')) for i in range(3)])
    assert BatchResult.from_files(out).parse(Answer) == [Answer(value=i) for i in range(3)]


def test_join(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    docs = [{"id": "a"}, {"id": "zzz"}]
    joined = result.join(docs, key=lambda d: d["id"])
    assert joined[0].input == {"id": "a"} and joined[0].output.content == '{"value": 1}'
    assert joined[1].output is None


def test_streaming_iteration_holds_no_list(files: tuple[Path, Path]) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    ids = [i.custom_id for i in result]  # input order (the files hold "c" before "a"), missing in place
    assert ids == EXPECTED
    assert result._items is None  # iterating did not materialise the list


def test_duplicate_lines_count_once(tmp_path: Path) -> None:
    out = write(tmp_path / "o.jsonl", [ok("a", chat("1")), ok("a", chat("2"))])
    result = BatchResult.from_files(out, expected_ids=["a"])
    assert len(result) == 1 and result.items[0].content == "1"


def test_save_and_load(files: tuple[Path, Path], tmp_path: Path) -> None:
    result = BatchResult.from_files(*files, expected_ids=EXPECTED)
    path = result.save(tmp_path / "saved.jsonl")
    rows = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [r["custom_id"] for r in rows] == EXPECTED
    assert {r["outcome"] for r in rows} == {"succeeded", "failed", "expired", "cancelled", "missing"}
    back = BatchResult.load(path)
    assert [(i.custom_id, i.outcome, i.content) for i in back] == [
        (i.custom_id, i.outcome, i.content) for i in result.items
    ]
    assert back.get("a").usage["total_tokens"] == 5


def test_content_for_other_endpoints(tmp_path: Path) -> None:
    rows = [
        ok(
            "resp",
            {
                "object": "response",
                "output": [
                    {"type": "reasoning", "summary": []},
                    {
                        "type": "message",
                        "content": [
                            {"type": "output_text", "text": "Hello "},
                            {"type": "output_text", "text": "there"},
                        ],
                    },
                ],
            },
        ),
        ok(
            "resp_refusal",
            {
                "object": "response",
                "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}],
            },
        ),
        ok(
            "resp_tool",
            {"object": "response", "output": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        ),
        ok(
            "emb1", {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}
        ),
        ok(
            "emb2",
            {"object": "list", "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]},
        ),
        ok("mod", {"id": "modr", "results": [{"flagged": False, "categories": {}}]}),
        ok("cmpl", {"object": "text_completion", "choices": [{"index": 0, "text": "done"}]}),
    ]
    result = BatchResult.from_files(write(tmp_path / "o.jsonl", rows))
    got = {i.custom_id: i for i in result}
    assert got["resp"].content == "Hello there" and got["resp"].endpoint == "/v1/responses"
    assert got["resp_refusal"].refusal == "no"
    assert got["resp_tool"].tool_calls[0]["name"] == "f"
    assert got["emb1"].content == [0.1, 0.2] and got["emb1"].endpoint == "/v1/embeddings"
    assert got["emb2"].content == [[1.0], [2.0]]
    assert (
        got["mod"].content == {"flagged": False, "categories": {}}
        and got["mod"].endpoint == "/v1/moderations"
    )
    assert got["cmpl"].content == "done"


def test_from_files_needs_existing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BatchResult.from_files(tmp_path / "nope.jsonl")
    assert len(BatchResult.from_files(expected_ids=["a"])) == 1  # no files: everything missing


def test_unreadable_lines_become_failed_items_naming_line_and_file(tmp_path: Path) -> None:
    good = orjson.dumps(ok("a", chat("fine")))
    lines = [
        good,
        b"{not json",  # torn: no trustworthy id, so "b" stays missing (and is retried by the flow)
        b'{"custom_id": "c", "response": {"status_code": 200, "body": {"choices": [7]}}}',
        b'{"custom_id": 5, "response": {"status_code": 200, "body": {}}}',
        b'{"custom_id": "d", "error": {"code": null}}',
        b'{"custom_id": "e", "response": {"status_code": 500, "body": {"error": {}}}}',
    ]
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = BatchResult.from_files(path, expected_ids=["a", "b", "c", "d", "e"])
    items = list(result)
    by_id = {i.custom_id: i for i in items if i.custom_id}
    assert by_id["a"].outcome is Outcome.SUCCEEDED and by_id["a"].content == "fine"
    assert by_id["b"].outcome is Outcome.MISSING
    assert by_id["c"].outcome is Outcome.FAILED
    assert by_id["c"].error["code"] == "invalid_result_line"
    assert by_id["c"].error["message"].startswith("line 3 of out.jsonl: ")
    assert by_id["d"].outcome is Outcome.FAILED and by_id["d"].error["code"] == "unknown_error"
    assert by_id["e"].error["code"] == "http_500"
    nameless = [i for i in items if not i.custom_id]  # line 2 (not JSON) and line 4 (id 5): both reported
    assert [i.error["message"].split(":")[0] for i in nameless] == [
        "line 2 of out.jsonl",
        "line 4 of out.jsonl",
    ]
    assert "not JSON" in nameless[0].error["message"] and "custom_id" in nameless[1].error["message"]
    assert result.counts[Outcome.FAILED] == 5 and len(result) == 7
