"""Prefect artifacts for people watching a run: a progress bar with a per-batch status table while waiting,
and at the end a summary table and a markdown report (outcomes, tokens and cost per model, batch ids, the
output location and the first failures with their reasons)."""

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


def outcome_line(summary: Mapping[str, Any]) -> str:
    """The run's outcome in one line: "300 rows: 298 succeeded, 2 failed" (other outcomes when present)."""
    outcomes = summary.get("outcomes") or {}
    parts = [f"{outcomes.get('succeeded', 0)} succeeded", f"{outcomes.get('failed', 0)} failed"]
    parts += [f"{n} {name}" for name, n in outcomes.items() if n and name not in ("succeeded", "failed")]
    return f"{summary.get('total', 0)} rows: {', '.join(parts)}"


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


def _cell(value: Any, limit: int = 160) -> str:
    """A markdown table cell: one line, pipes escaped, long text cut."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_markdown(
    summary: Mapping[str, Any],
    failures: list[Mapping[str, Any]],
    prices: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> str:
    """The end-of-run report as markdown (see `publish_report`)."""
    from batch_openai import cost_of

    lines = [f"# {_cell(title or 'batch-openai run')}", "", f"**{outcome_line(summary)}**", ""]
    lines += [f"Output: `{summary.get('output')}`  ", f"Work directory: `{summary.get('work_dir')}`", ""]
    lines += ["| outcome | rows |", "|---|---:|"]
    lines += [f"| {name} | {n} |" for name, n in (summary.get("outcomes") or {}).items()]
    lines += ["", "## Tokens and cost per model (batch prices)", ""]
    lines += [
        "| model | input tokens | output tokens | total tokens | estimated cost |",
        "|---|---:|---:|---:|---:|",
    ]
    for model, usage in (summary.get("usage_by_model") or {}).items():
        cost = cost_of(usage, model, prices) if any(usage.values()) else 0.0
        shown = "unknown (no price)" if cost is None else f"${cost:.4f}"
        lines.append(
            f"| {_cell(model)} | {usage.get('input_tokens', 0):,} | {usage.get('output_tokens', 0):,} "
            f"| {usage.get('total_tokens', 0):,} | {shown} |"
        )
    total_cost = summary.get("estimated_cost_usd")
    lines.append(
        f"| **all** | | | {summary.get('usage', {}).get('total_tokens', 0):,} | "
        f"{'unknown' if total_cost is None else f'${total_cost:.4f}'} |"
    )
    batch_ids = list(summary.get("batch_ids") or [])
    lines += ["", f"## Batches ({len(batch_ids)}, {summary.get('rounds', 1)} round(s))", ""]
    lines += [f"- `{b}`" for b in batch_ids]
    if failures:
        lines += ["", f"## First {len(failures)} rows that did not succeed", ""]
        lines += ["| custom_id | outcome | reason |", "|---|---|---|"]
        for row in failures:
            lines.append(
                f"| `{_cell(row.get('custom_id'), 80)}` | {row.get('outcome')} | {_cell(_reason(row))} |"
            )
    return "\n".join(lines) + "\n"


def _reason(row: Mapping[str, Any]) -> str:
    error = row.get("error")
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
        return f"{code}: {message}" if code and message else str(message or code or error)
    if error:
        return str(error)
    status = row.get("status_code")
    return f"HTTP {status}" if status else "no answer"


def publish_report(
    summary: Mapping[str, Any],
    failures: list[Mapping[str, Any]],
    *,
    prices: Mapping[str, Any] | None = None,
    title: str | None = None,
    key: str = "batch-openai-report",
) -> None:
    """A markdown artifact: outcome counts, tokens and cost per model, batch ids, the output location and
    the first failures with their reasons. Never fails a run."""
    from prefect.artifacts import create_markdown_artifact

    with contextlib.suppress(Exception):
        create_markdown_artifact(
            markdown=report_markdown(summary, failures, prices, title),
            key=key,
            description=outcome_line(summary),
        )


class ProgressBoard:
    """Thread-safe per-batch counters behind one Prefect progress artifact: the bar is the share of requests
    finished, its description a table of each batch's status and counts (updated at most once a second, and
    at once when a batch changes status)."""

    def __init__(self, key: str = "batch-openai-progress", min_interval: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # batch_id -> (done, total)
        self._rows: dict[str, dict[str, Any]] = {}  # batch_id -> label, status, completed, failed, total
        self._labels: dict[str, str] = {}
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

    def label(self, batch_id: str, label: str) -> None:
        """Name a batch for the table (e.g. "shard 3/12")."""
        with self._lock:
            self._labels[batch_id] = label

    def report(
        self,
        batch_id: str,
        done: int,
        total: int,
        *,
        status: str | None = None,
        completed: int | None = None,
        failed: int = 0,
    ) -> float:
        """Record one batch's counts; push the overall percentage (and the table) when enough time has
        passed or the batch's status changed."""
        with self._lock:
            self._counts[batch_id] = (done, total)
            row = self._rows.setdefault(batch_id, {})
            changed = status is not None and row.get("status") != status
            if status is not None:
                row.update(
                    status=status,
                    completed=done - failed if completed is None else completed,
                    failed=failed,
                    total=total,
                )
            percent = self.percent()
            now = time.monotonic()
            due = changed or now - self._last >= self._min_interval or percent >= 100.0
            if due:
                self._last = now
            description = self.describe() if due else None
        if due and self._artifact_id is not None:
            from prefect.artifacts import update_progress_artifact

            with contextlib.suppress(Exception):
                update_progress_artifact(
                    artifact_id=self._artifact_id, progress=percent, description=description
                )
        return percent

    def fail(self, reason: str) -> None:
        """Say on the progress artifact that the run failed, and why (else it stays where it was)."""
        with self._lock:
            description = f"**Failed**: {reason}\n\n{self.describe()}"
            percent = self.percent()
        if self._artifact_id is not None:
            from prefect.artifacts import update_progress_artifact

            with contextlib.suppress(Exception):
                update_progress_artifact(
                    artifact_id=self._artifact_id, progress=percent, description=description
                )

    def describe(self) -> str:
        """The per-batch markdown table shown under the bar."""
        lines = [
            f"**{self.percent():.0f} %** of the requests across this run's batches have finished",
            "",
            "| shard | batch | status | completed | failed | total |",
            "|---|---|---|---:|---:|---:|",
        ]
        for batch_id, row in self._rows.items():
            lines.append(
                f"| {self._labels.get(batch_id, '')} | `{batch_id}` | {row.get('status', '')} "
                f"| {row.get('completed', 0)} | {row.get('failed', 0)} | {row.get('total', 0)} |"
            )
        return "\n".join(lines)

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
