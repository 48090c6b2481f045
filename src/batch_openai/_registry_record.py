"""`BatchRecord`, and how one record is stored as one Prefect Variable.

One batch is one Variable: its name is derived from the batch id, its JSON value holds the record,
and its tags carry the status so the Prefect UI and the API can filter on it. Pure functions only:
no Prefect, no network, so this module is cheap to import and easy to test.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "NAME_PREFIX",
    "RECORD_TAG",
    "STATUS_TAG_PREFIX",
    "TERMINAL_STATUSES",
    "BatchRecord",
    "decode_record",
    "encode_record",
    "merge_records",
    "record_from_batch",
    "status_tags",
    "variable_name",
]

#: Every registry Variable carries this tag and this name prefix (`-` is not a SQL LIKE wildcard).
RECORD_TAG = "batch-openai"
NAME_PREFIX = "batch-openai-"
STATUS_TAG_PREFIX = "status:"
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})

# Prefect limits (prefect.types): names `[a-z0-9_-]`, at most 255 characters; JSON values at most 5000.
_MAX_NAME = 255
_MAX_VALUE = 5000
_PLAIN_ID = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")
_SCHEMA_VERSION = 1

# How far along the lifecycle a status is. An automatic observation never moves a record backwards,
# so a slow poller that read `in_progress` cannot overwrite the `completed` another process wrote.
_RANK = {
    "validating": 0,
    "in_progress": 1,
    "finalizing": 2,
    "cancelling": 2,
    "completed": 3,
    "failed": 3,
    "expired": 3,
    "cancelled": 3,
}


@dataclass
class BatchRecord:
    """One tracked batch: the seed's five fields first, then what the Batch API and Prefect add."""

    batch_id: str
    input_file_id: str
    description: str | None
    status: str
    created_at: datetime
    endpoint: str | None = None
    model: str | None = None
    #: `{"total": n, "completed": n, "failed": n}` as last observed, or None before the first observation.
    request_counts: dict[str, int] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: The Prefect flow run that created the batch (None outside a flow run).
    flow_run_id: str | None = None
    updated_at: datetime | None = field(default=None)

    @property
    def is_terminal(self) -> bool:
        """True once the batch can no longer change (completed, failed, expired, cancelled)."""
        return self.status in TERMINAL_STATUSES


def variable_name(batch_id: str) -> str:
    """The Prefect Variable name for a batch id: readable when it can be, an injective hash otherwise."""
    if not batch_id:
        raise ValueError("batch_id must be a non-empty string, e.g. 'batch_abc123'")
    if _PLAIN_ID.match(batch_id) and len(NAME_PREFIX) + len(batch_id) <= _MAX_NAME:
        return NAME_PREFIX + batch_id
    # Upper case or other characters: a plain id never starts with "-", so "--" cannot collide with one.
    return NAME_PREFIX + "-h" + hashlib.sha256(batch_id.encode()).hexdigest()


def status_tags(status: str) -> list[str]:
    """Tags of a record's Variable: the registry tag and the status (filterable in the UI and API)."""
    return [RECORD_TAG, STATUS_TAG_PREFIX + status]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def encode_record(record: BatchRecord) -> dict[str, Any]:
    """The JSON value stored in the Variable (the description is shortened to keep it ≤ 5000 chars)."""
    value: dict[str, Any] = {
        "v": _SCHEMA_VERSION,
        "batch_id": record.batch_id,
        "input_file_id": record.input_file_id,
        "description": record.description,
        "status": record.status,
        "created_at": _iso(record.created_at),
        "endpoint": record.endpoint,
        "model": record.model,
        "request_counts": record.request_counts,
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
        "flow_run_id": record.flow_run_id,
        "updated_at": _iso(record.updated_at),
    }
    size = len(orjson.dumps(value))
    if size > _MAX_VALUE and record.description:
        # Only the free text can be long (ids and counts are short); keep its start.
        keep = max(0, len(record.description) - (size - _MAX_VALUE) - 16)
        value["description"] = record.description[:keep] + "…"
    return value


def decode_record(value: Mapping[str, Any]) -> BatchRecord:
    """Rebuild a `BatchRecord` from a Variable's JSON value (unknown keys are ignored)."""
    counts = value.get("request_counts")
    return BatchRecord(
        batch_id=str(value["batch_id"]),
        input_file_id=str(value.get("input_file_id") or ""),
        description=value.get("description"),
        status=str(value.get("status") or "unknown"),
        created_at=_parse_time(value.get("created_at")) or datetime.fromtimestamp(0, UTC),
        endpoint=value.get("endpoint"),
        model=value.get("model"),
        request_counts=dict(counts) if isinstance(counts, Mapping) else None,
        output_file_id=value.get("output_file_id"),
        error_file_id=value.get("error_file_id"),
        flow_run_id=value.get("flow_run_id"),
        updated_at=_parse_time(value.get("updated_at")),
    )


def merge_records(old: BatchRecord | None, new: BatchRecord, *, force_status: bool = False) -> BatchRecord:
    """Combine a stored record with a fresh observation of the same batch.

    The status only moves forward along the lifecycle unless `force_status` (an explicit
    `update_status`); ids and counts are taken from the observation when it has them; the creation
    time and the flow run that made the batch are kept from the first record.
    """
    if old is None:
        return new
    forward = force_status or _RANK.get(new.status, -1) >= _RANK.get(old.status, -1)
    merged = replace(old)
    for f in fields(BatchRecord):
        if f.name in {"batch_id", "created_at", "flow_run_id", "status", "request_counts", "updated_at"}:
            continue
        fresh = getattr(new, f.name)
        if fresh not in (None, ""):
            setattr(merged, f.name, fresh)
    if forward:
        merged.status = new.status
        if new.request_counts is not None:
            merged.request_counts = new.request_counts
    merged.flow_run_id = old.flow_run_id or new.flow_run_id
    merged.updated_at = new.updated_at or old.updated_at
    return merged


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _counts(raw: Any) -> dict[str, int] | None:
    if raw is None:
        return None
    return {k: int(_get(raw, k) or 0) for k in ("total", "completed", "failed")}


def record_from_batch(
    batch: Any, *, description: str | None = None, flow_run_id: str | None = None
) -> BatchRecord:
    """A record from an `openai.types.Batch` (or the same fields as a mapping)."""
    metadata = _get(batch, "metadata") or {}
    created = _get(batch, "created_at")
    return BatchRecord(
        batch_id=str(_get(batch, "id")),
        input_file_id=str(_get(batch, "input_file_id") or ""),
        description=description if description is not None else _get(metadata, "description"),
        status=str(_get(batch, "status") or "validating"),
        created_at=_parse_time(created) or datetime.now(UTC),
        endpoint=_get(batch, "endpoint"),
        model=_get(batch, "model"),
        request_counts=_counts(_get(batch, "request_counts")),
        output_file_id=_get(batch, "output_file_id"),
        error_file_id=_get(batch, "error_file_id"),
        flow_run_id=flow_run_id,
        updated_at=datetime.now(UTC),
    )
