"""Idempotent submission of one input file: find by fingerprint, else upload and create, never twice.

Rules (documented in docs/library.md):
- The fingerprint (sha256 of the file's bytes) goes into batch metadata as `batch_openai_fingerprint`.
- Before uploading, `batches.list` is searched for a batch with that fingerprint and endpoint whose status is
  one of REUSABLE (validating, in_progress, finalizing, completed): that batch is returned, nothing is
  uploaded.
  A failed, expired, cancelling or cancelled batch is not reused: submitting again makes a fresh batch.
- After a create, every live batch with the same fingerprint is compared and the oldest survives
  (`survivor`): a submitter whose batch is not the survivor cancels its own at once (still validating)
  and returns the survivor, so concurrent submitters (threads, processes, machines) pay once.
- A create rejected by the service (4xx) deletes the upload. A create whose answer was lost (connection
  drop, timeout, 5xx, 429) is retried only after looking for the fingerprint again.

Each operation is written once, as steps (`_steps.py`); the sync and async functions only drive them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchValidationError, OpenAIBatchError, classify, redact
from batch_openai._file_limits import check_file_limits
from batch_openai._jsonl import fingerprint_file
from batch_openai._retry import RetryPolicy
from batch_openai._steps import Blocking, Call, Steps, Upload, retried, retried_call, twins
from batch_openai._validation import check_endpoint
from batch_openai.lifecycle import FINGERPRINT_KEY, REUSABLE, reusable

if TYPE_CHECKING:
    from openai.types import Batch


__all__ = [
    "FINGERPRINT_KEY",
    "REUSABLE",
    "async_find_batch_by_fingerprint",
    "build_metadata",
    "find_batch_by_fingerprint",
    "find_steps",
    "submit_file_steps",
]

log = logging.getLogger("batch_openai")

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


def find_steps(
    fingerprint: str, endpoint: str | None, max_pages: int = DEFAULT_MAX_PAGES
) -> Steps[Batch | None]:
    """Steps: the reusable batch carrying `fingerprint` (the `survivor` of those made at once) in the
    `max_pages` newest pages of 100."""
    found = yield from find_all_steps(fingerprint, endpoint, max_pages, first=True)
    return survivor(found) if found else None


def find_all_steps(
    fingerprint: str, endpoint: str | None, max_pages: int = DEFAULT_MAX_PAGES, *, first: bool = False
) -> Steps[list[Batch]]:
    """Steps: every reusable batch carrying `fingerprint` in the `max_pages` newest pages, newest first;
    with `first`, those of the first page that holds any (batches made at once sit together)."""
    found: list[Batch] = []
    after: str | None = None
    for _ in range(max_pages):
        page = yield Call(
            lambda c, after=after: c.batches.list(limit=100, **({"after": after} if after else {}))
        )
        data = list(page.data)
        found.extend(b for b in data if reusable(b, fingerprint, endpoint))
        if (first and found) or not data or not getattr(page, "has_more", False):
            break
        after = data[-1].id
    return found


def _find_retried(
    fingerprint: str, endpoint: str | None, max_pages: int, retry: RetryPolicy | None
) -> Steps[Batch | None]:
    return retried(
        lambda: find_steps(fingerprint, endpoint, max_pages),
        policy=retry,
        context="looking for batch by fingerprint",
    )


def _find_batch_by_fingerprint(
    client: Any,
    fingerprint: str,
    *,
    endpoint: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    retry: RetryPolicy | None = None,
) -> Steps[Batch | None]:
    """The newest reusable batch whose metadata carries `fingerprint` (searching `max_pages` pages of 100)."""
    return (yield from _find_retried(fingerprint, endpoint, max_pages, retry))


find_batch_by_fingerprint, async_find_batch_by_fingerprint = twins(_find_batch_by_fingerprint)


def answer_may_be_lost(exc: BaseException | None) -> bool:
    """True for a connection drop, timeout or 5xx (the create may have happened); 4xx/429: it did not."""
    if exc is None or classify(exc) != "transient":
        return False
    status = getattr(exc, "status_code", None)
    return status is None or status >= 500


def create_attempt(
    fingerprint: str | None, endpoint: str, max_pages: int, create: Callable[[Any], Any]
) -> Callable[[], Steps[Batch]]:
    """Steps: `create(client)` under the retry policy; an attempt after the first looks for the fingerprint
    first, since the previous create may have succeeded with its answer lost."""
    attempted = False

    def attempt() -> Steps[Batch]:
        nonlocal attempted
        if attempted and fingerprint:
            found = yield from find_steps(fingerprint, endpoint, max_pages)
            if found is not None:
                return found
        attempted = True
        return (yield Call(create))

    return attempt


def submit_file_steps(
    path: str | os.PathLike[str],
    *,
    endpoint: str,
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
    fingerprint: str | None = None,
    retry: RetryPolicy | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Steps[Batch]:
    """Steps: ONE batch for one input file, idempotently (see the module docstring)."""
    check_endpoint(endpoint)
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise BatchValidationError(f"input file {str(p)!r} is missing or empty; write the requests first")
    yield Blocking(
        lambda: check_file_limits(p, endpoint)
    )  # 50,000 requests / inputs, 200 MB: before any upload
    if fingerprint is None:
        fingerprint = yield Blocking(lambda: fingerprint_file(p))
    meta = build_metadata(description, metadata, fingerprint)
    existing = yield from _find_retried(fingerprint, endpoint, max_pages, retry)
    if existing is not None:
        log.info("batch_openai: reusing batch %s for fingerprint %s", existing.id, fingerprint[:12])
        return existing
    uploaded = yield from retried_call(Upload(p), policy=retry, context=f"uploading {p.name}")
    create = create_attempt(
        fingerprint,
        endpoint,
        max_pages,
        lambda c: c.batches.create(
            input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h", metadata=meta
        ),
    )
    try:
        batch = yield from retried(create, policy=retry, context="creating batch")
    except OpenAIBatchError as exc:
        if not answer_may_be_lost(exc.__cause__):  # rejected for sure: the upload is of no use
            try:
                yield Call(lambda c: c.files.delete(uploaded.id))
            except Exception as cleanup:  # cleanup must not hide the real error
                log.warning("batch_openai: could not delete upload %s: %s", uploaded.id, redact(str(cleanup)))
        raise
    return (yield from reconcile_steps(batch, fingerprint, endpoint, max_pages, retry))


def survivor(candidates: Sequence[Any]) -> Any:
    """The one batch that concurrent submitters of the same content all keep: the oldest.

    `candidates` come newest first, as `batches.list` gives them: oldest `created_at` wins, and on a tie
    (one-second resolution) the one the service lists later, i.e. made earlier. A submitter that listed
    before a rival's batch existed kept its own; the rival, listing after, sees both and yields to it.
    """
    ranked = sorted(enumerate(candidates), key=lambda pair: (pair[1].created_at, -pair[0]))
    return ranked[0][1]


def reconcile_steps(
    mine: Batch, fingerprint: str, endpoint: str, max_pages: int, retry: RetryPolicy | None
) -> Steps[Batch]:
    """Steps: after a create, keep one live batch per content. Every live batch carrying the same
    fingerprint is compared (`survivor`); when ours is not the survivor it is cancelled at once, while
    still validating, and the survivor is returned instead: two submitters never both pay."""
    rivals = yield from retried(
        lambda: find_all_steps(fingerprint, endpoint, max_pages, first=True),
        policy=retry,
        context="reconciling batches",
    )
    if not any(b.id == mine.id for b in rivals):
        rivals = [mine, *rivals]  # not listed yet: it is the newest
    keep = survivor(rivals)
    if keep.id == mine.id:
        return mine
    log.info(
        "batch_openai: %s duplicates %s (same content, made concurrently): cancelling it", mine.id, keep.id
    )
    try:
        yield from retried_call(
            lambda c: c.batches.cancel(mine.id), policy=retry, context=f"cancelling duplicate {mine.id}"
        )
    except OpenAIBatchError as exc:  # the survivor is returned either way; a stray duplicate is only logged
        log.warning("batch_openai: could not cancel duplicate %s: %s", mine.id, redact(str(exc)))
    return keep
