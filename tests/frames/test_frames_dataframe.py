"""DataFrames in and out, through the real client and the local server."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pandas as pd
import pytest
from pydantic import BaseModel

from batch_openai import BatchRequestBuilder, BatchResult, BatchValidationError
from batch_openai.local import LocalBatchServer


class Review(BaseModel):
    sentiment: str
    score: int


def _bodies(builder: BatchRequestBuilder, tmp_path: Any) -> list[dict[str, Any]]:
    path = builder.to_jsonl(tmp_path / "in.jsonl")
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_template_fills_columns_and_ids_come_from_the_index(tmp_path: Any) -> None:
    df = pd.DataFrame({"text": ["good", "bad"], "stars": [5, 1]}, index=[7, 9])
    b = BatchRequestBuilder.from_dataframe(
        df, model="gpt-4o-mini", messages="Review ({stars} stars): {text}", temperature=0
    )
    lines = _bodies(b, tmp_path)
    assert [ln["custom_id"] for ln in lines] == ["7", "9"]
    assert lines[0]["body"] == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Review (5 stars): good"}],
        "temperature": 0,
    }
    assert lines[1]["body"]["messages"][0]["content"] == "Review (1 stars): bad"


def test_callable_gets_each_row_and_custom_id_column(tmp_path: Any) -> None:
    df = pd.DataFrame({"doc": ["a", "b"], "text": ["alpha", "beta"]})
    seen: list[Any] = []

    def messages(row: Any) -> list[dict[str, str]]:
        seen.append(row.name)
        return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": row.text}]

    b = BatchRequestBuilder.from_dataframe(df, model="gpt-4o-mini", messages=messages, custom_id="doc")
    lines = _bodies(b, tmp_path)
    assert seen == [0, 1]  # row.name is the index label, as in DataFrame.apply(axis=1)
    assert [ln["custom_id"] for ln in lines] == ["a", "b"]
    assert lines[1]["body"]["messages"][1] == {"role": "user", "content": "beta"}


@pytest.mark.parametrize(
    ("kwargs", "df", "match"),
    [
        ({"messages": "Hi {missing}"}, pd.DataFrame({"text": ["x"]}), r"\{missing\}, not a column"),
        ({"messages": "Hi {text}"}, pd.DataFrame({"text": ["x", None]}), r"row 1: column 'text' is empty"),
        ({"messages": "Hi {text}"}, pd.DataFrame({"text": ["x", math.nan]}), r"dropna\(subset=\['text'\]\)"),
        ({"messages": "Hi {0}"}, pd.DataFrame({"text": ["x"]}), r"must name a column"),
        ({"messages": "Hi {text"}, pd.DataFrame({"text": ["x"]}), r"not a valid format string"),
        ({"messages": "Hi", "custom_id": "id"}, pd.DataFrame({"text": ["x"]}), r"custom_id column 'id'"),
        ({"messages": "Hi {text}"}, pd.DataFrame({"text": []}), r"no rows"),
        (
            {"messages": "Hi {text}"},
            pd.DataFrame({"text": ["x", "y"]}, index=[1, 1]),
            r"duplicate custom_id '1'",
        ),
        ({"messages": 42}, pd.DataFrame({"text": ["x"]}), r"template string .* or a callable"),
    ],
)
def test_bad_frames_are_refused_naming_the_fix(kwargs: dict[str, Any], df: pd.DataFrame, match: str) -> None:
    with pytest.raises(BatchValidationError, match=match):
        BatchRequestBuilder.from_dataframe(df, model="gpt-4o-mini", **kwargs)


def test_not_a_dataframe_is_refused() -> None:
    with pytest.raises(BatchValidationError, match="needs a pandas DataFrame"):
        BatchRequestBuilder.from_dataframe([{"text": "x"}], model="gpt-4o-mini", messages="{text}")  # type: ignore[arg-type]


def test_round_trip_to_pandas_and_join(fast_client: Any, fast_server: LocalBatchServer) -> None:
    df = pd.DataFrame(
        {"key": [f"k{i}" for i in range(6)], "text": [f"review number {i}" for i in range(6)]},
        index=range(100, 106),
    )
    b = BatchRequestBuilder.from_dataframe(
        df, model="gpt-4o-mini", messages="Rate: {text}", custom_id="key", response_format=Review
    )
    # One line answers 500 in the error file: its row must say so, not vanish.
    fast_server.set_line_failure_rate(0.3)
    try:  # the batch completes: failed lines are items, not a BatchJobError
        result = b.submit(fast_client).wait(poll_interval=0.02)
    finally:
        fast_server.set_line_failure_rate(0.0)
    frame = result.to_pandas(Review)
    assert list(frame["custom_id"]) == list(df["key"])  # input order, not file order
    by_id = {item.custom_id: item for item in result}
    for row in frame.itertuples():
        item = by_id[row.custom_id]
        assert row.outcome == item.outcome.value
        if item.ok:
            parsed = Review.model_validate_json(item.content)
            assert (row.sentiment, row.score) == (parsed.sentiment, parsed.score)
            assert row.input_tokens == item.usage["prompt_tokens"] and row.model == "gpt-4o-mini"
            assert row.output_tokens == item.usage["completion_tokens"] and row.finish_reason == "stop"
            assert pd.isna(row.parse_error)
        else:
            assert row.error_code == item.error["code"] and pd.isna(row.input_tokens)
            assert pd.isna(row.score) and pd.isna(row.parse_error)
    assert str(frame["input_tokens"].dtype) == "Int64"
    failed = int((frame["outcome"] == "failed").sum())
    assert 0 < failed < 6, "the failure rate should fail some, not all, lines"

    joined = result.join_dataframe(df, on="key", model=Review)
    assert list(joined.index) == list(df.index) and list(joined["text"]) == list(df["text"])
    assert list(joined["outcome"]) == list(frame["outcome"])
    assert list(joined["score"].fillna(-1)) == list(frame["score"].fillna(-1))


def test_join_on_the_index_and_colliding_names_get_a_suffix(fast_client: Any) -> None:
    df = pd.DataFrame({"content": ["first", "second"]}, index=["a", "b"])
    result = (
        BatchRequestBuilder.from_dataframe(df, model="gpt-4o-mini", messages="{content}")
        .submit(fast_client)
        .wait(poll_interval=0.02)
    )
    joined = result.join_dataframe(df)
    assert list(joined["content"]) == ["first", "second"]  # the input column is kept as it was
    assert joined["content_result"].tolist() == [result.get("a").content, result.get("b").content]
    assert (joined["outcome"] == "succeeded").all()


def test_parse_errors_and_missing_items_become_columns(tmp_path: Any) -> None:
    out = tmp_path / "out.jsonl"
    good = {
        "custom_id": "a",
        "response": {
            "status_code": 200,
            "body": {
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [
                    {"message": {"content": '{"sentiment": "up", "score": 3}'}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
            },
        },
        "error": None,
    }
    bad = {
        "custom_id": "b",
        "response": {
            "status_code": 200,
            "body": {
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"message": {"content": "not json"}, "finish_reason": "stop"}],
            },
        },
        "error": None,
    }
    out.write_bytes(b"\n".join(orjson.dumps(x) for x in (bad, good)) + b"\n")
    frame = BatchResult.from_files(out, expected_ids=["a", "b", "c"]).to_pandas(Review)
    assert frame["custom_id"].tolist() == ["a", "b", "c"]
    assert frame["outcome"].tolist() == ["succeeded", "succeeded", "missing"]
    assert frame.loc[0, "score"] == 3 and pd.isna(frame.loc[0, "parse_error"])
    assert str(frame["score"].dtype) == "Int64"  # a missing score does not turn the column into floats
    assert frame.loc[1, "parse_error"].startswith("invalid:") and pd.isna(frame.loc[1, "score"])
    assert frame.loc[2, "error_code"] == "missing" and pd.isna(frame.loc[2, "total_tokens"])
    assert frame.loc[0, "total_tokens"] == 6
