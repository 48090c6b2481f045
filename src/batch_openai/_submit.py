"""Idempotent submission of one input file: find by fingerprint, else upload and create, never twice.

Rules (documented in docs/library.md):
- The fingerprint (sha256 of the file's bytes) goes into batch metadata as `batch_openai_fingerprint`.
- Before uploading, `batches.list` is searched for a batch with that fingerprint and endpoint whose status is
  one of REUSABLE (validating, in_progress, finalizing, completed): that batch is returned, nothing is
  uploaded.
  A failed, expired, cancelling or cancelled batch is not reused: submitting again makes a fresh batch.
- A create rejected by the service (4xx) deletes the upload. A create whose answer was lost (connection
  drop, timeout, 5xx, 429) is retried only after looking for the fingerprint again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchValidationError, OpenAIBatchError, classify, redact
from batch_openai._file_limits import check_file_limits
from batch_openai._jsonl import fingerprint_file
from batch_openai._retry import RetryPolicy, call, no_sdk_retries
from batch_openai._validation import check_endpoint

if TYPE_CHECKING:
    from openai.types import Batch

    from batch_openai._job import BatchJob
    from batch_openai._registry import BatchRegistry

__all__ = [
    "FINGERPRINT_KEY",
    "REUSABLE",
    "build_metadata",
    "find_batch_by_fingerprint",
    "submit_file",
]

log = logging.getLogger("batch_openai")

FINGERPRINT_KEY = "batch_openai_fingerprint"
REUSABLE = frozenset({"validating", "in_progress", "finalizing", "completed"})
DEFAULT_MAX_PAGES = 10  # 1,000 most recent batches


def build_metadata(
    description: str | None, metadata: Mapping[str, str] | None, fingerprint: str
) -> dict[str, str]:
    """Batch metadata: the caller's pairs, description and fingerprint, checked against service limits."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BatchValidationError(
                f"metadata {key!r}: keys and values must be strings, got {type(value).__name__}; use str(...)"
            )
        out[key] = value
    if description is not None:
        out["description"] = description
    out[FINGERPRINT_KEY] = fingerprint
    if len(out) > 16:
        raise BatchValidationError(
            f"metadata has {len(out)} pairs with description and fingerprint; the service allows 16"
        )
    for key, value in out.items():
        if len(key) > 64 or len(value) > 512:
            raise BatchValidationError(
                f"metadata {key!r}: keys are limited to 64 characters and values to 512; shorten it"
            )
    return out


def matches(batch: Any, fingerprint: str, endpoint: str | None) -> bool:
    """True if `batch` carries `fingerprint`, is for `endpoint` (when given) and can be reused."""
    meta = batch.metadata or {}
    return (
        meta.get(FINGERPRINT_KEY) == fingerprint
        and batch.status in REUSABLE
        and (endpoint is None or batch.endpoint == endpoint)
    )


def _find_raw(client: Any, fingerprint: str, endpoint: str | None, max_pages: int) -> Batch | None:
    after: str | None = None
    for _ in range(max_pages):
        page = client.batches.list(limit=100, **({"after": after} if after else {}))
        data = list(page.data)
        for batch in data:
            if matches(batch, fingerprint, endpoint):
                return batch
        if not data or not getattr(page, "has_more", False):
            return None
        after = data[-1].id
    return None


def find_batch_by_fingerprint(
    client: Any,
    fingerprint: str,
    *,
    endpoint: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    retry: RetryPolicy | None = None,
) -> Batch | None:
    """The newest reusable batch whose metadata carries `fingerprint` (searching `max_pages` pages of 100)."""
    client = no_sdk_retries(client)
    return call(
        lambda: _find_raw(client, fingerprint, endpoint, max_pages),
        policy=retry,
        context="looking for batch by fingerprint",
    )


def answer_may_be_lost(exc: BaseException | None) -> bool:
    """True for a connection drop, timeout or 5xx (the create may have happened); 4xx/429: it did not."""
    if exc is None or classify(exc) != "transient":
        return False
    status = getattr(exc, "status_code", None)
    return status is None or status >= 500


def _delete_quietly(client: Any, file_id: str) -> None:
    try:
        client.files.delete(file_id)
    except Exception as exc:  # cleanup must not hide the real error
        log.warning("batch_openai: could not delete upload %s: %s", file_id, redact(str(exc)))


def submit_file(
    client: Any,
    path: str | os.PathLike[str],
    *,
    endpoint: str,
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
    fingerprint: str | None = None,
    retry: RetryPolicy | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    registry: BatchRegistry | None = None,
) -> BatchJob:
    """Create ONE batch for one input file, idempotently (see the module docstring); return its `BatchJob`.

    `registry`: a `BatchRegistry` that records the batch once created (or found) and, through the job's
    `refresh()`/`wait()`, each change of its status or files; a tracking error is logged, never raised.
    """
    from batch_openai._job import BatchJob

    check_endpoint(endpoint)
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise BatchValidationError(f"input file {str(p)!r} is missing or empty; write the requests first")
    check_file_limits(p, endpoint)  # 50,000 requests / inputs, 200 MB: refused before any upload
    fingerprint = fingerprint or fingerprint_file(p)
    meta = build_metadata(description, metadata, fingerprint)
    client = no_sdk_retries(client)

    existing = find_batch_by_fingerprint(
        client, fingerprint, endpoint=endpoint, max_pages=max_pages, retry=retry
    )
    if existing is not None:
        log.info("batch_openai: reusing batch %s for fingerprint %s", existing.id, fingerprint[:12])
        return BatchJob(client, [existing], retry=retry)._attach(registry)

    def upload() -> Any:
        with open(p, "rb") as f:  # reopened per attempt so a retry sends the whole file
            return client.files.create(file=(p.name, f), purpose="batch")

    uploaded = call(upload, policy=retry, context=f"uploading {p.name}")
    attempted = False

    def create() -> Batch:
        nonlocal attempted
        if attempted:
            # The previous create may have succeeded with its answer lost: look before creating again.
            found = _find_raw(client, fingerprint, endpoint, max_pages)
            if found is not None:
                return found
        attempted = True
        return client.batches.create(
            input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h", metadata=meta
        )

    try:
        batch = call(create, policy=retry, context="creating batch")
    except OpenAIBatchError as exc:
        if not answer_may_be_lost(exc.__cause__):
            _delete_quietly(client, uploaded.id)  # rejected for sure: the upload is of no use
        raise
    return BatchJob(client, [batch], retry=retry)._attach(registry)
