"""The registry's core, without Prefect: a tracked batch's record, where records live, and the fast reads.

`BatchRegistry` itself belongs to the Prefect layer (`batch_openai.flows.registry`: it writes Prefect
Variables); everything here is plain Python that the CLI and that layer share: the record and its
encoding as a Variable value, resolving where the records live from Prefect's settings files without
importing Prefect, and reading them straight from a local SQLite database or a server's REST API.
The library itself needs only `BatchTracker`: something its `registry=` parameters can call.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import orjson

from batch_openai._registry_legacy import delete_legacy, read_legacy
from batch_openai._registry_record import (
    NAME_PREFIX,
    RECORD_TAG,
    STATUS_TAG_PREFIX,
    TERMINAL_STATUSES,
    BatchRecord,
    decode_record,
    encode_record,
    merge_records,
    record_from_batch,
    status_tags,
    variable_name,
)
from batch_openai._registry_rest import PAGE, RestReader, list_pages
from batch_openai._registry_sqlite import UnreadableDatabase, read_all, read_one
from batch_openai._registry_target import Target, legacy_env_path, resolve_target, sqlite_file

__all__ = [
    "NAME_PREFIX",
    "PAGE",
    "RECORD_TAG",
    "STATUS_TAG_PREFIX",
    "TERMINAL_STATUSES",
    "BatchRecord",
    "BatchTracker",
    "RestReader",
    "Target",
    "UnreadableDatabase",
    "decode_record",
    "delete_legacy",
    "encode_record",
    "id_filter",
    "id_tag",
    "legacy_env_path",
    "list_pages",
    "merge_records",
    "pick",
    "read_all",
    "read_legacy",
    "read_one",
    "read_record",
    "readable_name",
    "record_from_batch",
    "record_tags",
    "resolve_target",
    "rest_read",
    "sqlite_file",
    "status_tags",
    "variable_name",
]


@runtime_checkable
class BatchTracker(Protocol):
    """What the library's `registry=` parameters accept: `batch_openai.BatchRegistry` is one."""

    def track_batch(self, batch: Any, *, description: str | None = None) -> Any:
        """Record one `openai.types.Batch` as just observed."""
        ...


# -- names a person can tell apart -------------------------------------------------------------------
# A record's Variable is named `batch-openai-<slug>-<short id>` when it is created: the slug is the
# batch's description (else its model, else its endpoint), so the Prefect UI lists "nightly-eval-…" next
# to "review-sentiment-…" instead of a column of `batch-openai-batch_…`. The name is chosen once and never
# changes; the id is found through the record's `id:<batch_id>` tag (and the value holds the id).
# Records written under the old names (`variable_name(batch_id)`) stay readable and keep their names.
_SLUG_MAX = 60
_ID_TAG_PREFIX = "id:"
_NOT_NAME = re.compile(r"[^a-z0-9]+")


def _slug(text: str | None) -> str:
    return _NOT_NAME.sub("-", (text or "").lower()).strip("-")[:_SLUG_MAX].strip("-")


def readable_name(record: BatchRecord, *, full_id: bool = False) -> str:
    """The Variable name a new record gets: `batch-openai-<description or model slug>-<short id>`.

    `full_id` uses the whole (sanitised) id: the fallback when two batches' short names collide.
    """
    endpoint = (record.endpoint or "").rsplit("/", 1)[-1]
    slug = _slug(record.description) or _slug(record.model) or _slug(endpoint)
    plain = _slug(record.batch_id.removeprefix("batch_"))
    if not plain or plain != record.batch_id.removeprefix("batch_").lower():
        plain = hashlib.sha256(record.batch_id.encode()).hexdigest()[:16]  # odd characters: a stable hash
    short = plain if full_id else plain[-8:]
    name = f"{NAME_PREFIX}{slug or 'batch'}-{short}"
    return name[:255]


def id_tag(batch_id: str) -> str:
    """The tag by which a record is found from its batch id, whatever its name."""
    return _ID_TAG_PREFIX + batch_id


def record_tags(record: BatchRecord) -> list[str]:
    """Tags of a record's Variable: registry, status (filterable in the UI and API) and id."""
    return [*status_tags(record.status), id_tag(record.batch_id)]


def id_filter(batch_id: str) -> dict[str, Any]:
    """The `/variables/filter` body that finds a record by its id tag."""
    return {"variables": {"tags": {"all_": [RECORD_TAG, id_tag(batch_id)]}}, "limit": 10}


def pick(variables: list[dict[str, Any]], batch_id: str) -> dict[str, Any] | None:
    """The variable (as JSON) among `variables` whose record is `batch_id`'s."""
    for item in variables:
        value = item.get("value")
        if isinstance(value, dict) and value.get("batch_id") == batch_id:
            return item
    return None


def read_record(db: Path, batch_id: str) -> BatchRecord | None:
    """One record from a local SQLite database by id, under its readable or its old name.

    Raises `UnreadableDatabase` like `read_one`.
    """
    record = read_one(db, batch_id)  # the old name: one index lookup
    if record is not None or not db.is_file():
        return record
    try:
        conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                "SELECT value FROM variable WHERE name >= ? AND name < ? AND instr(tags, ?) > 0",
                (NAME_PREFIX, NAME_PREFIX[:-1] + ".", orjson.dumps(id_tag(batch_id)).decode()),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise UnreadableDatabase(str(exc)) from exc
    for (raw,) in rows:
        value = orjson.loads(raw)
        if isinstance(value, dict) and value.get("batch_id") == batch_id:
            return decode_record(value)
    return None


def rest_read(
    api_url: str, batch_id: str, *, api_key: str | None = None, auth_string: str | None = None
) -> BatchRecord | None:
    """One record from a Prefect server over plain HTTP by id (id tag first, then the old name)."""
    import httpx

    headers = {}
    if auth_string:
        headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    with httpx.Client(base_url=api_url.rstrip("/") + "/", headers=headers, timeout=30) as http:
        response = http.post("variables/filter", json=id_filter(batch_id))
        response.raise_for_status()
        found = pick(response.json(), batch_id)
    if found is not None:
        return decode_record(found["value"])
    return RestReader(api_url, api_key=api_key, auth_string=auth_string).read(batch_id)
