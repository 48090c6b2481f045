"""Pure parts of the flows: retry rules, output writers, merging rounds, templates, cache keys, locks."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from flows_harness import read_rows, write_requests

from batch_openai import fingerprint_file
from batch_openai.flows.caching import StaleAwareLockManager, shard_cache_key
from batch_openai.flows.classify import is_retryable_row
from batch_openai.flows.output import convert_jsonl, infer_format, write_jsonl
from batch_openai.flows.results import merge_rows, write_retry_input
from batch_openai.flows.template import render_requests, template_fields
from batch_openai.lifecycle import token_limited


@pytest.mark.parametrize(
    ("row", "retry"),
    [
        ({"outcome": "expired", "error": {"code": "batch_expired"}}, True),
        ({"outcome": "missing"}, True),
        ({"outcome": "failed", "status_code": 500}, True),
        ({"outcome": "failed", "status_code": 429}, True),
        ({"outcome": "failed", "status_code": 408}, True),
        ({"outcome": "failed", "status_code": None, "error": {"code": "request_timeout"}}, True),
        ({"outcome": "failed", "status_code": 400, "error": {"code": "context_length_exceeded"}}, False),
        ({"outcome": "failed", "status_code": 404}, False),
        ({"outcome": "cancelled", "error": {"code": "batch_cancelled"}}, False),
        ({"outcome": "succeeded", "status_code": 200}, False),
    ],
)
def test_only_lines_that_can_pass_on_a_second_try_are_retried(row: dict, retry: bool):
    assert is_retryable_row(row) is retry


def test_token_limit_is_read_from_batch_errors_in_either_shape():
    def failed(errors):
        return SimpleNamespace(status="failed", errors=errors)

    as_dict = {"data": [{"code": "token_limit_exceeded", "message": "Enqueued token limit reached"}]}
    as_obj = SimpleNamespace(data=[SimpleNamespace(code="token_limit_exceeded")])
    assert token_limited(failed(as_dict)) and token_limited(failed(as_obj))
    assert not token_limited(failed({"data": [{"code": "invalid_json_line"}]}))
    assert not token_limited(failed(None))
    assert not token_limited(SimpleNamespace(status="completed", errors=as_obj))


def test_an_output_path_that_can_never_be_written_is_refused(tmp_path: Path):
    from batch_openai.flows.output import OutputPathError, check_output_path

    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_path(tmp_path / "adir")
    with pytest.raises(OutputPathError, match="which is a file"):
        check_output_path(tmp_path / "afile" / "deeper" / "out.jsonl")
    assert (
        check_output_path(tmp_path / "new" / "dirs" / "out.jsonl") == tmp_path / "new" / "dirs" / "out.jsonl"
    )


def test_output_format_follows_the_suffix_unless_asked(tmp_path: Path):
    assert infer_format(tmp_path / "a.csv") == "csv"
    assert infer_format(tmp_path / "a.parquet") == "parquet"
    assert infer_format(tmp_path / "a") == infer_format(tmp_path / "a.jsonl") == "jsonl"
    with pytest.raises(ValueError, match=r"'\.out' names no format"):
        infer_format(tmp_path / "a.out")  # an unknown suffix is refused ...
    assert infer_format(tmp_path / "a.out", "jsonl") == "jsonl"  # ... unless the format is given
    assert infer_format(tmp_path / "a.csv", "jsonl") == "jsonl"
    with pytest.raises(ValueError, match="jsonl, csv, parquet"):
        infer_format(tmp_path / "a", "xlsx")


def test_jsonl_is_written_atomically(tmp_path: Path):
    target = tmp_path / "rows.jsonl"
    write_jsonl(target, [{"custom_id": "old"}])

    def broken():
        yield {"custom_id": "new"}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(target, broken())
    assert read_rows(target) == [{"custom_id": "old"}]  # the reader still sees the complete old file
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # and no temp file is left behind


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path):
    rows = [
        {
            "custom_id": "a",
            "outcome": "succeeded",
            "content": "hi, there",
            "error": None,
            "status_code": 200,
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            "batch_id": "b1",
            "round": 1,
        },
        {
            "custom_id": "b",
            "outcome": "failed",
            "content": None,
            "error": {"code": "x", "message": "m"},
            "status_code": 400,
            "usage": None,
            "batch_id": "b1",
            "round": 1,
        },
    ]
    src = tmp_path / "rows.jsonl"
    write_jsonl(src, rows)
    convert_jsonl(src, tmp_path / "rows.csv", "csv")
    with open(tmp_path / "rows.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["custom_id"] for r in got] == ["a", "b"] and got[0]["content"] == "hi, there"
    assert json.loads(got[1]["error"]) == {"code": "x", "message": "m"}
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    convert_jsonl(src, tmp_path / "rows.parquet", "parquet")
    frame = pd.read_parquet(tmp_path / "rows.parquet")
    assert list(frame["custom_id"]) == ["a", "b"] and list(frame["outcome"]) == ["succeeded", "failed"]


def _row(cid: str, outcome: str, round_no: int, **extra) -> dict:
    return {
        "custom_id": cid,
        "outcome": outcome,
        "content": None,
        "error": None,
        "status_code": None,
        "usage": None,
        "batch_id": f"b{round_no}",
        "round": round_no,
        **extra,
    }


def test_later_rounds_replace_earlier_rows_and_the_input_order_is_kept(tmp_path: Path):
    src = write_requests(tmp_path / "in.jsonl", 4)
    r1 = tmp_path / "r1.jsonl"
    r2 = tmp_path / "r2.jsonl"
    write_jsonl(r1, [_row("r3", "succeeded", 1), _row("r0", "expired", 1), _row("r1", "succeeded", 1)])
    write_jsonl(r2, [_row("r0", "succeeded", 2)])
    merged = merge_rows(str(src), [[str(r1)], [str(r2)]], tmp_path / "out.jsonl")
    rows = read_rows(tmp_path / "out.jsonl")
    assert [r["custom_id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert rows[0]["outcome"] == "succeeded" and rows[0]["round"] == 2
    assert rows[2]["outcome"] == "missing"  # an input without any row is reported, never dropped
    assert merged["outcomes"]["succeeded"] == 3 and merged["outcomes"]["missing"] == 1


def test_retry_input_holds_the_original_lines_of_retryable_rows_only(tmp_path: Path):
    shard = write_requests(tmp_path / "shard.jsonl", 5)
    rows = tmp_path / "rows.jsonl"
    write_jsonl(
        rows,
        [
            _row("r4", "failed", 1, status_code=503),
            _row("r1", "expired", 1),
            _row("r2", "cancelled", 1),
            _row("r0", "failed", 1, status_code=400),
            _row("r3", "succeeded", 1),
        ],
    )
    target = tmp_path / "retry.jsonl"
    assert write_retry_input([str(rows)], [str(shard)], target) == 2
    originals = {json.loads(line)["custom_id"]: line for line in shard.read_text().splitlines()}
    assert target.read_text().splitlines() == [originals["r1"], originals["r4"]]  # shard order: deterministic
    again = tmp_path / "retry-again.jsonl"
    write_retry_input([str(rows)], [str(shard)], again)
    assert fingerprint_file(again) == fingerprint_file(target)  # same content: a rerun re-attaches


def test_template_renders_one_request_per_record_and_names_missing_fields(tmp_path: Path):
    records = tmp_path / "r.jsonl"
    records.write_text('{"id": "a", "text": "good"}\n{"id": "b", "text": "bad"}\n')
    out = render_requests(
        records, tmp_path / "req.jsonl", prompt_template="Rate: {text}", model="gpt-4o-mini"
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == ["a", "b"]
    assert lines[1]["body"]["messages"][0]["content"] == "Rate: bad"
    assert template_fields("{a} and {b}") == ["a", "b"]
    with pytest.raises(ValueError, match=r"record 1 has no field\(s\) \['body'\]"):
        render_requests(records, tmp_path / "x.jsonl", prompt_template="{body}", model="gpt-4o-mini")


def test_cache_key_is_task_name_content_and_service_not_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    a = write_requests(tmp_path / "a.jsonl", 3)
    (tmp_path / "copy").mkdir()
    b = write_requests(tmp_path / "copy" / "other-name.jsonl", 3)
    c = write_requests(tmp_path / "c.jsonl", 4)
    ctx = SimpleNamespace(task=SimpleNamespace(name="submit-shard"))
    other_task = SimpleNamespace(task=SimpleNamespace(name="another-task"))

    def key(path: Path, context=ctx, **kw) -> str:
        return shard_cache_key(context, {"shard_path": str(path), "fingerprint": "unused", **kw})

    assert key(a) == key(b)  # same bytes, different place: same batch
    assert key(a) != key(c)  # different bytes: different batch
    assert key(a) != key(a, context=other_task)  # task identity is part of it
    assert key(a) != key(a, attempt=1)  # a deliberate resubmission is a new identity
    assert key(a) != key(a, base_url="http://127.0.0.1:9/v1")  # another service is another batch
    assert fingerprint_file(a) in key(a)


def test_a_lock_left_by_a_dead_process_does_not_block_the_rerun(tmp_path: Path):
    manager = StaleAwareLockManager(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    assert manager.acquire_lock("k1", holder="someone")
    lock = tmp_path / "k1.lock"
    info = json.loads(lock.read_bytes())
    assert info["pid"] == os.getpid() and info["expiration"]  # stamped with holder pid and a hold timeout
    info["pid"] = pid  # pretend a process that has exited (SIGKILLed) holds it
    lock.write_text(json.dumps(info))
    fresh = StaleAwareLockManager(tmp_path)
    assert not fresh.is_locked("k1")
    assert fresh.acquire_lock("k1", holder="rerun", acquire_timeout=1)

    info = json.loads(lock.read_bytes())
    info["pid"] = 1  # a live process (init) holds it: respected
    lock.write_text(json.dumps(info))
    assert StaleAwareLockManager(tmp_path).is_locked("k1")
