"""Outcome bookkeeping for the flow's rows: which rows get another round, counts in a stable order.

The rule of which lines can pass on another try is the library's (`batch_openai.lifecycle.is_retryable`);
this module only applies it to the flow's row dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batch_openai.lifecycle import is_retryable

OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "expired", "cancelled", "missing")


def is_retryable_row(row: Mapping[str, Any]) -> bool:
    """True when an output row failed for a reason that can pass on a second try."""
    return is_retryable(str(row.get("outcome")), row.get("status_code"), row.get("error"))


def count_outcomes(rows_outcomes: Mapping[str, int]) -> dict[str, int]:
    """Outcome counts with every known outcome present (zeros included), in a stable order."""
    counts = {name: int(rows_outcomes.get(name, 0)) for name in OUTCOMES}
    for name, value in rows_outcomes.items():
        if name not in counts:
            counts[name] = int(value)
    return counts
