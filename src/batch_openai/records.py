"""The registry's core, without Prefect: a tracked batch's record, where records live, and the fast reads.

`BatchRegistry` itself belongs to the Prefect layer (`batch_openai.flows.registry`: it writes Prefect
Variables); everything here is plain Python that the CLI and that layer share: the record and its
encoding as a Variable value, resolving where the records live from Prefect's settings files without
importing Prefect, and reading them straight from a local SQLite database or a server's REST API.
The library itself needs only `BatchTracker`: something its `registry=` parameters can call.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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
    "legacy_env_path",
    "list_pages",
    "merge_records",
    "read_all",
    "read_legacy",
    "read_one",
    "record_from_batch",
    "resolve_target",
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
