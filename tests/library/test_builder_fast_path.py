"""`add()`'s fast path for plain chat bodies must accept and refuse exactly what the general path does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from batch_openai import BatchRequestBuilder, BatchValidationError
from batch_openai._jsonl import encode_block, encode_line


def general(messages: Any, **kw: Any) -> BatchRequestBuilder:
    """The same request through the general path (add_request runs every check of check_body)."""
    return BatchRequestBuilder().add_request(
        "/v1/chat/completions", {"model": kw.pop("model", "gpt-4o-mini"), "messages": messages}, **kw
    )


def outcome(fn: Any) -> tuple[str, str]:
    try:
        b = fn()
    except BatchValidationError as exc:
        return "error", str(exc).split(": ", 1)[-1]
    except TypeError as exc:
        return "typeerror", type(exc).__name__
    return "ok", b"".join(b._bodies).decode()


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        ({"role": "user", "content": "a tuple"},),
        [{"role": "user", "content": "hi", "name": float("nan")}],  # a NaN beside plain fields
        [{"role": "user", "content": [{"type": "text", "text": "x"}], "w": float("inf")}],
        [{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
        [{"role": "user", "content": "hi", "name": None}],  # a real null: fine
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": None}],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user"}],
        [{"content": "hi", "x": 1}],
        [],
        "just a string",
        [["role", "user"]],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "t"}]}],
        [{"role": "user", "content": "\ud800 lone surrogate"}],
        [{"role": "user", "content": 1.5}],
    ],
)
def test_fast_path_matches_general_path(messages: Any) -> None:
    fast = outcome(lambda: BatchRequestBuilder().add(messages, model="gpt-4o-mini", custom_id="c"))
    slow = outcome(lambda: general(messages, custom_id="c"))
    assert fast[0] == slow[0]
    if fast[0] == "error":
        assert fast[1] == slow[1]
    elif fast[0] == "ok":
        assert orjson.loads("{" + fast[1]) == orjson.loads("{" + slow[1])


def test_nan_in_plain_looking_message_is_refused() -> None:
    with pytest.raises(BatchValidationError, match="finite"):
        BatchRequestBuilder().add([{"role": "user", "content": "hi", "x": float("nan")}], model="m")


@pytest.mark.parametrize(
    "ids",
    [
        ["a", "b", "c"],
        ['q"uote', "back\\slash", "tab\there", "日本", "ok"],
        ["line\nbreak", "x"],
    ],
)
def test_encode_block_equals_encode_line(ids: list[str]) -> None:
    bodies = [orjson.dumps({"model": "m", "i": i})[1:] for i in range(len(ids))]
    for url in ("/v1/chat/completions", "/v1/embeddings"):
        expected = b"".join(encode_line(c, url, b) for c, b in zip(ids, bodies, strict=True))
        assert encode_block(ids, url, bodies) == expected
    assert encode_block([], "/v1/embeddings", []) == b""


def test_to_jsonl_keeps_order_across_models_and_endpoints(tmp_path: Path) -> None:
    b = BatchRequestBuilder()
    for i in range(5000):  # more than one write block
        model = "gpt-4o-mini" if i % 3 else "gpt-4.1-nano"
        if i % 7 == 0:
            b.add_embedding(f"text {i}", model="text-embedding-3-small", custom_id=f'e"{i}')
        else:
            b.add([{"role": "user", "content": f"q {i}"}], model=model, custom_id=None if i % 5 else f"c{i}")
    rows = [orjson.loads(x) for x in b.to_jsonl(tmp_path / "x.jsonl").read_bytes().splitlines()]
    assert [r["custom_id"] for r in rows] == b.custom_ids
    assert rows[7]["url"] == "/v1/embeddings" and rows[7]["body"]["input"] == "text 7"
    assert rows[3]["body"] == {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "q 3"}]}


def test_the_fast_path_still_refuses_a_model_of_another_endpoint() -> None:
    """A plain chat body naming an embedding model is caught although it takes the fast path."""
    from batch_openai import BatchRequestBuilder, BatchValidationError

    b = BatchRequestBuilder()
    b.add([{"role": "user", "content": "hi"}], model="gpt-4o-mini", custom_id="ok")
    with pytest.raises(BatchValidationError) as refused:
        b.add([{"role": "user", "content": "hi"}], model="text-embedding-3-small", custom_id="bad")
    assert refused.value.param == "model"
    assert len(b) == 1  # nothing half-added
    b.add([{"role": "user", "content": "again"}], model="gpt-4o-mini", custom_id="ok2")
    assert b.custom_ids == ["ok", "ok2"]
