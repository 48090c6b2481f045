"""Prefect artifacts for people watching a run: a progress bar while waiting, a summary table at the end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

# One price table for the whole project: the library's (`batch_openai.BATCH_PRICES`, dated and sourced).
# `prices=` on the flow overrides it per run ({model: [input, output]} or [input, cached_input, output]).


def price_for(model: str | None, prices: Mapping[str, Any] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens at batch prices for a model (a dated snapshot matches), or None."""
    from batch_openai import price_for as library_price_for

    price = library_price_for(model, prices)
    return None if price is None else (price.input, price.output)


def estimate_cost(
    usage_by_model: Mapping[str, Mapping[str, Any]], prices: Mapping[str, Any] | None = None
) -> float | None:
    """USD for the tokens used at batch prices, or None when a model that used tokens has no known price."""
    from batch_openai import cost_of

    total = 0.0
    for model, usage in usage_by_model.items():
        if not any(usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")):
            continue
        cost = cost_of(usage, model, prices)
        if cost is None:
            return None
        total += cost
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
