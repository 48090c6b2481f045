"""Pure rules of a record: naming, encoding within Prefect's limits, merging observations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from batch_openai.records import (
    BatchRecord,
    decode_record,
    encode_record,
    merge_records,
    record_from_batch,
    status_tags,
    variable_name,
)

NAME_OK = re.compile(r"^[a-z0-9_-]{1,255}$")


@given(st.text(min_size=1, max_size=400), st.text(min_size=1, max_size=400))
def test_variable_names_are_valid_and_distinct_for_distinct_ids(a: str, b: str) -> None:
    assert NAME_OK.match(variable_name(a)) and NAME_OK.match(variable_name(b))
    assert (variable_name(a) == variable_name(b)) == (a == b)


def test_plain_ids_keep_readable_names() -> None:
    assert variable_name("batch_abc123") == "batch-openai-batch_abc123"
    assert status_tags("completed") == ["batch-openai", "status:completed"]


@given(st.text(max_size=20_000))
def test_any_description_fits_prefects_5000_character_limit(description: str) -> None:
    record = BatchRecord("batch_x", "file-x", description, "completed", datetime.now(UTC))
    value = encode_record(record)
    assert len(orjson.dumps(value)) <= 5000  # Prefect measures the orjson bytes
    back = decode_record(value)
    assert back.batch_id == "batch_x" and back.created_at == record.created_at
    assert description.startswith((back.description or "").rstrip("…"))


def _rec(status: str, **kw: object) -> BatchRecord:
    base = record_from_batch({"id": "batch_m", "input_file_id": "f", "status": status, "created_at": 100})
    for key, value in kw.items():
        setattr(base, key, value)
    return base


def test_merge_moves_forward_only_and_keeps_origin() -> None:
    first = _rec("validating", flow_run_id="run-1", created_at=datetime.fromtimestamp(100, UTC))
    later = _rec("completed", output_file_id="out", request_counts={"total": 2, "completed": 2, "failed": 0})
    merged = merge_records(first, later)
    assert merged.status == "completed" and merged.output_file_id == "out"
    assert merged.flow_run_id == "run-1" and merged.created_at == first.created_at

    stale = _rec("in_progress", request_counts={"total": 2, "completed": 1, "failed": 0})
    kept = merge_records(merged, stale)
    assert kept.status == "completed" and kept.request_counts == {"total": 2, "completed": 2, "failed": 0}
    forced = merge_records(merged, stale, force_status=True)
    assert forced.status == "in_progress"
    assert merge_records(None, later) is later


def test_cancelling_is_not_undone_by_a_stale_in_progress() -> None:
    assert merge_records(_rec("cancelling"), _rec("in_progress")).status == "cancelling"
    assert merge_records(_rec("cancelling"), _rec("cancelled")).status == "cancelled"
