"""The answer store behind incremental reruns: keyed by request content, only succeeded rows."""

from __future__ import annotations

from pathlib import Path

import orjson

from batch_openai.flows.reuse import AnswerStore, remember, request_key, split_reusable


def _line(cid: str, text: str, model: str = "gpt-4o-mini") -> dict:
    return {
        "custom_id": cid,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def _write(path: Path, objs: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objs))
    return path


def test_the_key_is_the_request_content_not_its_id() -> None:
    a, b = _line("a", "hello"), _line("zzz", "hello")
    assert request_key(a) == request_key(b)
    reordered = {**b, "body": {"messages": b["body"]["messages"], "model": "gpt-4o-mini"}}
    assert request_key(reordered) == request_key(a)  # canonical: key order does not matter
    assert request_key(_line("a", "hello!")) != request_key(a)
    assert request_key(_line("a", "hello", model="gpt-4o")) != request_key(a)


def test_a_rerun_reuses_succeeded_answers_under_the_new_ids(tmp_path: Path) -> None:
    shard = _write(tmp_path / "shard.jsonl", [_line("1", "one"), _line("2", "two"), _line("3", "three")])
    rows = _write(
        tmp_path / "rows.jsonl",
        [
            {"custom_id": "1", "outcome": "succeeded", "content": "ONE", "batch_id": "batch_a"},
            {"custom_id": "2", "outcome": "failed", "content": None, "batch_id": "batch_a"},
            {"custom_id": "3", "outcome": "succeeded", "content": "THREE", "batch_id": "batch_a"},
        ],
    )
    with AnswerStore(tmp_path / "answers.sqlite") as store:
        assert remember([str(rows)], [str(shard)], store) == 2  # the failed line is not kept
    edited = _write(
        tmp_path / "edited.jsonl",
        [_line("new", "zero"), _line("1b", "one"), _line("2", "two"), _line("3", "THREE, edited")],
    )
    with AnswerStore(tmp_path / "answers.sqlite") as store:  # another process, the same file
        reused, left = split_reusable(edited, store, tmp_path / "reused.jsonl", tmp_path / "rest.jsonl")
    assert (reused, left) == (1, 3)
    (row,) = [orjson.loads(x) for x in (tmp_path / "reused.jsonl").read_bytes().splitlines()]
    assert row["custom_id"] == "1b" and row["content"] == "ONE" and row["reused"] is True
    rest = [orjson.loads(x)["custom_id"] for x in (tmp_path / "rest.jsonl").read_bytes().splitlines()]
    assert rest == ["new", "2", "3"]  # new, failed before, and edited: submitted again, in input order


def test_prune_forgets_old_answers(tmp_path: Path) -> None:
    with AnswerStore(tmp_path / "answers.sqlite") as store:
        store.put([("k1", b'{"custom_id": "x"}')])
        assert len(store) == 1
        assert store.prune(older_than_days=1) == 0
        assert store.prune(older_than_days=-1) == 1
        assert len(store) == 0


def test_the_run_works_from_a_snapshot_named_by_content(tmp_path: Path) -> None:
    from batch_openai.flows.reuse import previous_key, snapshot_input

    src = _write(tmp_path / "in.jsonl", [_line("1", "one")])
    snap, key = snapshot_input(src, tmp_path / "work")
    assert snap.read_bytes() == src.read_bytes() and snap.parent.name == key
    src.write_bytes(b"edited while the run waits\n")
    assert snap.read_bytes() != src.read_bytes()  # the run's copy is untouched
    assert previous_key(src, key, tmp_path / "work") is None  # first run of this path
    assert previous_key(src, key, tmp_path / "work") == key  # unchanged
    _write(src, [_line("1", "one"), _line("2", "two")])
    _, new_key = snapshot_input(src, tmp_path / "work")
    assert previous_key(src, new_key, tmp_path / "work") == key != new_key


def test_an_output_that_is_the_input_is_recognised(tmp_path: Path) -> None:
    import os

    from batch_openai.flows.reuse import same_file

    src = _write(tmp_path / "in.jsonl", [_line("1", "one")])
    os.link(src, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(src)
    assert same_file(src, tmp_path / "in.jsonl")
    assert same_file(src, tmp_path / "hard.jsonl") and same_file(src, tmp_path / "soft.jsonl")
    assert not same_file(src, tmp_path / "out.jsonl")
