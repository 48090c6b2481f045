"""Result-line fuzzing: arbitrary and corrupt output/error lines never crash collection.

Each line must become an outcome: a well-formed line the one the contract gives it, anything else a
`failed` item whose `error` says why; every expected custom_id ends up exactly once. Both the library
(`BatchResult.from_files`) and the flow's rows step (`batch_openai.flows.results.write_rows`) are fed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batch_openai import BatchJob, BatchResult
from batch_openai._items import Outcome
from batch_openai.local import LocalBatchServer

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Found by this file's fuzzing; each crashed `item_from_line` (batch_openai/_items.py) before 2254645.
CRASHERS: list[bytes] = [
    b"not json",
    b"[1, 2]",
    b'"a string"',
    b'{"custom_id": "x", "error": {"code": [1]}}',
    b'{"custom_id": "x", "response": {"status_code": 200, "body": {"choices": [1]}}}',
    b'{"custom_id": "x", "response": {"status_code": 200, "body": {"output": [1]}}}',
    b'{"custom_id": "x", "response": {"status_code": 200, "body": {"data": [1]}}}',
    b'{"custom_id": "x", "response": {"status_code": 200, "body": {"choices": [{"message": {}}]}',
    b"\xff\xfe{}",
    b'{"custom_id": "x", "response": null, "error": {"code": null}}',
]
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["custom_id", "id", "response", "error", "status_code", "body", "choices", "message", "content",
     "output", "data", "embedding", "results", "code", "message", "text", "type", "usage"]
)  # fmt: skip


def _envelope(draw: st.DrawFn) -> dict[str, Any]:
    """An object shaped like a result line, with any JSON in any of its fields."""
    body = draw(st.dictionaries(field_names, json_values, max_size=4))
    response = draw(
        st.one_of(json_values, st.fixed_dictionaries({"status_code": json_values, "body": st.just(body)}))
    )
    line = {"custom_id": draw(st.one_of(st.text(max_size=6), json_values)), "response": response}
    line["error"] = draw(st.one_of(st.none(), json_values, st.fixed_dictionaries({"code": json_values})))
    for key in draw(st.lists(st.sampled_from(["custom_id", "response", "error"]), max_size=2)):
        line.pop(key, None)
    return line


envelopes = st.composite(_envelope)()
any_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelopes.map(lambda v: json.dumps(v).encode()),
)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _check(result: BatchResult, expected: list[str]) -> list[Any]:
    """Collection survived: every item has an outcome and, unless it succeeded, a reason."""
    items = list(result)
    for item in items:
        assert isinstance(item.outcome, Outcome)
        if item.outcome is not Outcome.SUCCEEDED:
            assert isinstance(item.error, dict) and (item.error.get("message") or item.error.get("code"))
    counted = Counter(i.custom_id for i in items)
    assert all(counted[cid] == 1 for cid in expected)
    return items


@FUZZ
@given(lines=st.lists(any_line, min_size=1, max_size=6))
@example(lines=CRASHERS)
def test_arbitrary_lines_never_crash_collection(lines: list[bytes], tmp_path: Path):
    path = _write(tmp_path / "out.jsonl", lines)
    _check(BatchResult.from_files(path, expected_ids=["e1", "e2"]), ["e1", "e2"])


@FUZZ
@given(cut=st.integers(min_value=1, max_value=10_000))
@example(cut=77)
def test_a_file_torn_anywhere_still_gives_every_id_once(cut: int, tmp_path: Path):
    lines = [_success(f"r{i}", 200, f"answer {i}") for i in range(12)]
    whole = b"".join(line + b"\n" for line in lines)
    path = tmp_path / "out.jsonl"
    path.write_bytes(whole[: cut % len(whole)])
    items = _check(BatchResult.from_files(path, expected_ids=[f"r{i}" for i in range(12)]), [])
    assert {i.custom_id for i in items} >= {f"r{i}" for i in range(12)}


def _success(custom_id: str, status: int, content: str) -> bytes:
    body = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    return json.dumps(
        {
            "id": "batch_req_1",
            "custom_id": custom_id,
            "response": {"status_code": status, "body": body},
            "error": None,
        }
    ).encode()


never_ran = st.sampled_from(["batch_expired", "batch_cancelled", "request_timeout", "anything_else"])


@FUZZ
@given(
    cases=st.lists(
        st.tuples(st.integers(100, 599), st.one_of(st.none(), never_ran), st.text(max_size=20)),
        min_size=1,
        max_size=20,
    )
)
def test_well_formed_lines_get_the_contracts_outcome(
    cases: list[tuple[int, str | None, str]], tmp_path: Path
):
    lines, want = [], {}
    for i, (status, code, content) in enumerate(cases):
        cid = f"c{i}"
        if code is not None:  # never ran: response null, error set
            lines.append(
                json.dumps(
                    {"custom_id": cid, "response": None, "error": {"code": code, "message": "m"}}
                ).encode()
            )
            want[cid] = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(code, "failed")
        else:
            lines.append(_success(cid, status, content))
            want[cid] = "succeeded" if 200 <= status < 300 else "failed"
    ids = [*want, "never-seen"]
    items = _check(BatchResult.from_files(_write(tmp_path / "o.jsonl", lines), expected_ids=ids), ids)
    got = {i.custom_id: i.outcome.value for i in items}
    assert got == {**want, "never-seen": "missing"}
    for item in items:
        if item.outcome is Outcome.SUCCEEDED:
            assert item.content == cases[int(item.custom_id[1:])][2]


def _completed_batch(server: LocalBatchServer, n: int) -> tuple[Any, list[str], Path]:
    """A real completed batch of `n` chat lines on `server`; returns (batch, ids, shard path)."""
    from batch_openai import BatchRequestBuilder

    builder = BatchRequestBuilder()
    for i in range(n):
        builder.add([{"role": "user", "content": f"item {i}"}], model="gpt-4o-mini", custom_id=f"r{i}")
    job = builder.submit(server.client())
    shard = builder.to_jsonl(server.state_dir.parent / f"shard-{job.batch_id}.jsonl")
    client = server.client()
    batch = client.batches.retrieve(job.batch_id)
    deadline = time.monotonic() + 30
    while batch.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = client.batches.retrieve(job.batch_id)
    return batch, [f"r{i}" for i in range(n)], shard


@pytest.mark.parametrize("damage", ["corrupt-line", "torn-tail"])
def test_flow_collect_turns_a_damaged_output_file_into_rows(damage: str, tmp_path: Path):
    """The flow's collect step on a real batch whose stored output file was damaged on the server."""
    from batch_openai.flows.results import write_rows
    from batch_openai.flows.tasks import BatchRef

    with LocalBatchServer(step_seconds=0.0, state_dir=tmp_path / "state") as server:
        batch, ids, shard = _completed_batch(server, 6)
        stored = server.state_dir / "files" / f"{batch.output_file_id}.data"
        lines = stored.read_bytes().splitlines(keepends=True)
        if damage == "corrupt-line":
            lines[2] = b'{"custom_id": "r2", "response": {"status_code": 200, "body": {"choices": [7]}}}\n'
        else:
            lines[-1] = lines[-1][: len(lines[-1]) // 2]
        stored.write_bytes(b"".join(lines))
        job = BatchJob.from_id(server.client(), batch.id)
        ref = BatchRef(batch_ids=[batch.id], input_files=[str(shard)], statuses={batch.id: batch.status})
        result = job.result(expected_ids=ref.expected_ids())
        summary = write_rows(result, ref, tmp_path / "rows.jsonl", 1)
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == ids
    assert sum(summary["outcomes"].values()) == 6
    damaged = [r for r in rows if r["outcome"] != "succeeded"]
    assert len(damaged) == 1 and damaged[0]["error"]


def test_a_line_without_a_usable_custom_id_never_answers_an_input(tmp_path: Path):
    """A line with no custom_id (or a non-string one) must not be matched to an input called "None" or "5"."""
    body = {"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    lines = [
        json.dumps({"response": {"status_code": 200, "body": body}, "error": None}).encode(),
        json.dumps({"custom_id": 5, "response": {"status_code": 200, "body": body}, "error": None}).encode(),
    ]
    items = _check(
        BatchResult.from_files(_write(tmp_path / "o.jsonl", lines), expected_ids=["None", "5"]), []
    )
    by_id = {i.custom_id: i for i in items}
    assert by_id["None"].outcome is Outcome.MISSING and by_id["5"].outcome is Outcome.MISSING
    assert not any(i.ok for i in items)
