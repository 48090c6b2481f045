"""Pure rules for the flow: which lines get another round, how a result becomes an output row.

No Prefect and no network here, so the rules are cheap to unit-test and easy to read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "expired", "cancelled", "missing")

# Per-line error codes (the `error.code` of a line that never ran, or `response.body.error.code`)
# that can pass on a second try. `batch_cancelled` is deliberately absent: a cancel is a person's decision.
RETRYABLE_CODES: frozenset[str] = frozenset({"batch_expired", "request_timeout", "token_limit_exceeded"})

# Batch-level failure code that means "too many tokens enqueued right now", not "bad input".
TOKEN_LIMIT_CODE = "token_limit_exceeded"


def is_retryable_status(status_code: int | None) -> bool:
    """True for HTTP statuses worth another try: 408, 429 and every 5xx."""
    return status_code is not None and (status_code in (408, 429) or 500 <= status_code <= 599)


def error_code(error: Any) -> str | None:
    """The machine-readable code inside a line's error, whatever shape the error has."""
    if isinstance(error, Mapping):
        code = error.get("code")
        if code is None and isinstance(error.get("error"), Mapping):
            code = error["error"].get("code")
        return str(code) if code is not None else None
    code = getattr(error, "code", None)
    return str(code) if code is not None else None


def is_retryable_row(row: Mapping[str, Any]) -> bool:
    """True when an output row failed for a reason that can pass on a second try.

    `expired` lines (never ran before the 24 h window closed) and `missing` lines (the service
    lost them) are retried; so are transient HTTP statuses and the retryable error codes.
    `cancelled` lines and permanent failures (4xx other than 408/429, invalid input) are not.
    """
    outcome = row.get("outcome")
    if outcome in ("expired", "missing"):
        return True
    if outcome != "failed":
        return False
    if is_retryable_status(row.get("status_code")):
        return True
    return error_code(row.get("error")) in RETRYABLE_CODES


def batch_failed_for_token_limit(batch_errors: Any) -> bool:
    """True when a failed batch's `errors.data[]` says the enqueued-token limit was hit."""
    data = getattr(batch_errors, "data", None)
    if data is None and isinstance(batch_errors, Mapping):
        data = batch_errors.get("data")
    return any(error_code(item) == TOKEN_LIMIT_CODE for item in data or ())


def count_outcomes(rows_outcomes: Mapping[str, int]) -> dict[str, int]:
    """Outcome counts with every known outcome present (zeros included), in a stable order."""
    counts = {name: int(rows_outcomes.get(name, 0)) for name in OUTCOMES}
    for name, value in rows_outcomes.items():
        if name not in counts:
            counts[name] = int(value)
    return counts
