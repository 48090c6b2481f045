"""Prefect artifacts for people watching a run: a progress bar while waiting, a summary table at the end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

# Batch prices in USD per 1M tokens (input, output): half the synchronous list price. An estimate for
# the summary table only; pass `prices=` to the flow for your own contract, unknown models show no cost.
BATCH_PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.075, 0.30),
    "gpt-4o": (1.25, 5.00),
    "gpt-4.1": (1.00, 4.00),
    "gpt-4.1-mini": (0.20, 0.80),
    "gpt-4.1-nano": (0.05, 0.20),
    "gpt-5": (0.625, 5.00),
    "gpt-5-mini": (0.125, 1.00),
    "gpt-5-nano": (0.025, 0.20),
    "text-embedding-3-small": (0.01, 0.0),
    "text-embedding-3-large": (0.065, 0.0),
}


def price_for(model: str | None, prices: Mapping[str, Any] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for a model: exact name first, then the longest known prefix."""
    table = {**BATCH_PRICES_PER_MTOK, **{k: tuple(v) for k, v in (prices or {}).items()}}
    if not model:
        return None
    if model in table:
        return table[model]  # type: ignore[return-value]
    best = max((name for name in table if model.startswith(name)), key=len, default=None)
    return table[best] if best else None  # type: ignore[return-value]


def estimate_cost(
    usage_by_model: Mapping[str, Mapping[str, int]], prices: Mapping[str, Any] | None = None
) -> float | None:
    """Estimated USD for the tokens used, or None when a model's price is unknown."""
    total = 0.0
    for model, usage in usage_by_model.items():
        price = price_for(model, prices)
        if price is None:
            return None
        total += (
            usage.get("input_tokens", 0) / 1e6 * price[0] + usage.get("output_tokens", 0) / 1e6 * price[1]
        )
    return round(total, 6)


def publish_summary(summary: Mapping[str, Any], *, key: str = "batch-openai-summary") -> None:
    """A table artifact: one row per outcome, then tokens and estimated cost."""
    from prefect.artifacts import create_table_artifact

    rows: list[dict[str, Any]] = [
        {"metric": f"outcome: {name}", "value": count} for name, count in summary["outcomes"].items()
    ]
    for name in ("input_tokens", "output_tokens", "total_tokens"):
        rows.append({"metric": name, "value": summary["usage"].get(name, 0)})
    cost = summary.get("estimated_cost_usd")
    rows.append({"metric": "estimated_cost_usd", "value": "unknown" if cost is None else f"{cost:.4f}"})
    rows.append({"metric": "batches", "value": len(summary.get("batch_ids", []))})
    rows.append({"metric": "rounds", "value": summary.get("rounds", 1)})
    create_table_artifact(
        table=rows,
        key=key,
        description=f"batch-openai: {summary.get('total', 0)} inputs → {summary.get('output')}",
    )


class ProgressBoard:
    """Thread-safe per-batch counters behind one Prefect progress artifact (updated at most once a second)."""

    def __init__(self, key: str = "batch-openai-progress", min_interval: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # batch_id -> (done, total)
        self._artifact_id: Any = None
        self._last = 0.0
        self._key = key
        self._min_interval = min_interval

    def start(self) -> None:
        """Create the artifact (call from the flow, where Prefect has a run context)."""
        from prefect.artifacts import create_progress_artifact

        try:
            self._artifact_id = create_progress_artifact(
                progress=0.0, key=self._key, description="requests finished across this run's batches"
            )
        except Exception:  # a progress bar must never fail a run
            self._artifact_id = None

    def report(self, batch_id: str, done: int, total: int) -> float:
        """Record one batch's counts; push the overall percentage when enough time has passed."""
        with self._lock:
            self._counts[batch_id] = (done, total)
            percent = self.percent()
            now = time.monotonic()
            due = now - self._last >= self._min_interval or percent >= 100.0
            if due:
                self._last = now
        if due and self._artifact_id is not None:
            from prefect.artifacts import update_progress_artifact

            with contextlib.suppress(Exception):
                update_progress_artifact(artifact_id=self._artifact_id, progress=percent)
        return percent

    def percent(self) -> float:
        """Overall percentage of requests finished (0 when nothing is known yet)."""
        done = sum(d for d, _ in self._counts.values())
        total = sum(t for _, t in self._counts.values())
        return round(100.0 * done / total, 2) if total else 0.0


_boards: dict[str, ProgressBoard] = {}
_boards_lock = threading.Lock()


def board_for(flow_run_id: str) -> ProgressBoard:
    """The progress board of a flow run in this process (tasks run in threads of the flow's process)."""
    with _boards_lock:
        board = _boards.get(flow_run_id)
        if board is None:
            board = _boards[flow_run_id] = ProgressBoard()
        return board


def drop_board(flow_run_id: str) -> None:
    """Forget a finished flow run's board."""
    with _boards_lock:
        _boards.pop(flow_run_id, None)
