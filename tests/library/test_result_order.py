"""Iterating a result follows input order (as `.items` does), streaming when the file is already in order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from batch_openai import BatchParseError, BatchRequestBuilder, BatchResult, Outcome
from batch_openai._result import _order
from batch_openai.local import LocalBatchServer


class Answer(BaseModel):
    value: int


def test_two_model_job_iterates_in_input_order(client: Any, server: LocalBatchServer) -> None:
    b = BatchRequestBuilder()
    for i in range(8):  # id0 (model A), id1 (model B), id2 (A), id3 (B) ...: one shard per model
        model = "gpt-4o-mini" if i % 2 == 0 else "gpt-4.1-nano"
        b.add([{"role": "user", "content": f"question {i}"}], model=model, custom_id=f"id{i}")
    job = b.submit(client, description="two models")
    assert len(job.batch_ids) == 2
    result = job.wait(poll_interval=0.02)
    assert [item.custom_id for item in result] == b.custom_ids
    assert result._items is None  # iterating did not build the list
    assert [item.custom_id for item in job.result()] == b.custom_ids
    assert [item.custom_id for item in result.items] == b.custom_ids
    assert all(item.outcome is Outcome.SUCCEEDED for item in result)


def line(cid: Any, content: str | None = '{"value": 1}', status: int = 200) -> str:
    body: dict[str, Any] = {"object": "chat.completion", "choices": [{"message": {"content": content}}]}
    return json.dumps({"custom_id": cid, "response": {"status_code": status, "body": body}, "error": None})


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def reference(result: BatchResult) -> list[tuple[str, Outcome, Any]]:
    """The order `.items` gave before iteration followed it: file order, then a stable sort by position."""
    items = _order(list(result._stream()), result._expected)
    return [(i.custom_id, i.outcome, i.content) for i in items]


def summary(items: Any) -> list[tuple[str, Outcome, Any]]:
    return [(i.custom_id, i.outcome, i.content) for i in items]


@pytest.mark.parametrize("seed", range(12))
def test_iteration_matches_sorted_items_for_shuffled_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    expected = [f"r{i}" for i in range(40)]
    present = [cid for cid in expected if rng.random() > 0.15]  # some requests are missing
    rows = [line(cid, f'{{"value": {i}}}') for i, cid in enumerate(present)]
    rows += [line(rng.choice(present), '{"value": -1}') for _ in range(3)]  # duplicates: first counts
    rows += [line("stranger"), "not json", json.dumps({"custom_id": 5}), "[1, 2]"]  # no expected id
    if seed % 3:
        rng.shuffle(rows)
    half = len(rows) // 2
    out = write(tmp_path / "out.jsonl", rows[:half])
    err = write(tmp_path / "err.jsonl", rows[half:])
    result = BatchResult.from_files(out, err, expected_ids=expected)
    want = reference(result)
    assert summary(result) == want
    assert summary(result) == want  # a second pass reads the files again
    assert summary(result.items) == want
    assert len(result) == len(want)
    if seed % 3 == 0:  # not shuffled: the duplicates come after the first lines, which count
        fresh = BatchResult.from_files(out, err, expected_ids=expected)
        values = {i.custom_id: i.content for i in fresh if i.outcome is Outcome.SUCCEEDED}
        assert all(values[cid] != '{"value": -1}' for cid in values if cid != "stranger")


def test_in_order_file_streams_and_reports_missing_in_place(tmp_path: Path) -> None:
    out = write(tmp_path / "out.jsonl", [line("a"), line("c"), line("d")])
    result = BatchResult.from_files(out, expected_ids=["a", "b", "c", "d", "e"])
    assert [(i.custom_id, i.outcome) for i in result] == [
        ("a", Outcome.SUCCEEDED),
        ("b", Outcome.MISSING),
        ("c", Outcome.SUCCEEDED),
        ("d", Outcome.SUCCEEDED),
        ("e", Outcome.MISSING),
    ]


def test_invalid_lines_keep_their_line_numbers_when_reordered(tmp_path: Path) -> None:
    bad = json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": {"choices": [5]}}})
    out = write(tmp_path / "out.jsonl", [line("b"), "", bad])
    result = BatchResult.from_files(out, expected_ids=["a", "b"])
    items = list(result)
    assert [i.custom_id for i in items] == ["a", "b"]
    assert items[0].error["code"] == "invalid_result_line"
    assert "line 3 of out.jsonl" in items[0].error["message"]


def test_parse_follows_input_order_and_matches_parse_each(tmp_path: Path) -> None:
    rows = [line("c", '{"value": 3}'), line("a", '{"value": 1}'), line("b", "not json"), line("z", None)]
    rows.append(line("e", '{"value": 5}', status=500))
    out = write(tmp_path / "out.jsonl", rows)
    expected = ["a", "b", "c", "d", "e", "z"]
    with pytest.raises(BatchParseError) as info:
        BatchResult.from_files(out, expected_ids=expected).parse(Answer)
    assert [v.value for v in info.value.parsed] == [1, 3]
    each = BatchResult.from_files(out, expected_ids=expected).parse_each(Answer)
    want = [(p.custom_id, p.error) for p in each if p.item.outcome is Outcome.SUCCEEDED and p.error]
    assert info.value.failures == want
    assert [cid for cid, _ in want] == ["b", "z"]
    built = BatchResult.from_files(out, expected_ids=expected)
    built.items  # noqa: B018 - parse over a built list gives the same answer
    with pytest.raises(BatchParseError) as again:
        built.parse(Answer)
    assert again.value.failures == want and again.value.parsed == info.value.parsed


def test_parse_without_expected_ids_keeps_file_order(tmp_path: Path) -> None:
    out = write(tmp_path / "out.jsonl", [line(f"r{i}", f'{{"value": {i}}}') for i in (3, 1, 2)])
    assert [a.value for a in BatchResult.from_files(out).parse(Answer)] == [3, 1, 2]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["a", "b"], ["", "d", "c", "e"]),  # out of step in the second file, after a blank line
        (["b", "", "a", "d"], ["c", "", "e"]),  # out of step in the first file, the rest read on
    ],
)
def test_reordering_spans_files_and_blank_lines(tmp_path: Path, first: list[str], second: list[str]) -> None:
    out = write(tmp_path / "out.jsonl", [line(c) if c else "" for c in first])
    err = write(tmp_path / "err.jsonl", [line(c) if c else "" for c in second])
    result = BatchResult.from_files(out, err, expected_ids=["a", "b", "c", "d", "e", "f"])
    assert [i.custom_id for i in result] == ["a", "b", "c", "d", "e", "f"]
    assert [i.outcome for i in result][-1] is Outcome.MISSING
    assert summary(result) == reference(result)
