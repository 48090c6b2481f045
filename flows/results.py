"""Turning a terminal batch into output rows, and merging rounds into the final output file.

Rows are plain dicts (`batch_openai.flows.output.ROW_FIELDS`), one per input `custom_id`, written as
JSONL files on disk; only small summaries (counts, usage) travel through Prefect.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from batch_openai.flows.classify import count_outcomes, is_retryable_row
from batch_openai.flows.output import dumps_row
from batch_openai.flows.tasks import iter_custom_ids
from batch_openai.storage import atomic_binary

USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def normalise_usage(usage: Any) -> dict[str, int] | None:
    """Chat (`prompt_tokens`), Responses (`input_tokens`) and embeddings usage as input/output/total."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        usage = usage.model_dump() if hasattr(usage, "model_dump") else dict(vars(usage))
    inp = usage.get("input_tokens", usage.get("prompt_tokens")) or 0
    out = usage.get("output_tokens", usage.get("completion_tokens")) or 0
    total = usage.get("total_tokens") or (inp + out)
    return {"input_tokens": int(inp), "output_tokens": int(out), "total_tokens": int(total)}


def _encoded(row: dict[str, Any]) -> tuple[bytes, str, bool, dict[str, int]]:
    """A row as (JSON line, outcome, retryable, usage): what is kept per line until it is written."""
    again = row["outcome"] != "succeeded" and is_retryable_row(row)
    return dumps_row(row), row["outcome"], again, row["usage"] or {}


def _missing_row(
    custom_id: str, failed_batch: bool, ref: Any, batch_id: str, round_no: int
) -> dict[str, Any]:
    """A line in neither file; when its batch failed in validation, nothing ran: the batch's reason."""
    if failed_batch:
        return _empty_row(custom_id, "failed", _batch_error(ref), batch_id, round_no)
    return _empty_row(
        custom_id, "missing", {"code": "missing", "message": "in neither file"}, batch_id, round_no
    )


def _batch_error(ref: Any) -> dict[str, Any]:
    """The first batch-level error of a failed batch, as a row error."""
    if ref.batch_errors:
        first = ref.batch_errors[0]
        return {**first, "batch_status": "failed"}
    return {"code": "batch_failed", "message": "the batch failed without a reason", "batch_status": "failed"}


def item_row(item: Any, batch_id: str, round_no: int) -> dict[str, Any]:
    """One output row from a library `BatchResultItem`."""
    outcome = getattr(item.outcome, "value", item.outcome)
    return {
        "custom_id": item.custom_id,
        "outcome": str(outcome),
        "content": item.content,
        "error": item.error,
        "status_code": item.status_code,
        "usage": normalise_usage(item.usage),
        "batch_id": batch_id,
        "round": round_no,
    }


def write_rows(result: Any, ref: Any, rows_path: Path, round_no: int) -> dict[str, Any]:
    """One row per input line of an ended batch (`result`, a `BatchResult`), in input order; summarise.

    A batch that failed in validation ran nothing: every line carries the batch's reason as `failed`.
    Lines answering no input are dropped; an input with no line is `missing`. Memory stays at the
    batch's ids, not its rows.
    """
    statuses = list(ref.statuses.values())
    failed_batch = bool(statuses) and all(s == "failed" for s in statuses)
    batch_id = ref.batch_ids[0]
    expected = ref.expected_ids()
    wanted = set(expected)
    # The result iterates in input order, so rows stream straight out; `pending` only holds lines that
    # arrive ahead of their turn (none, unless the result's order and the shard's disagree).
    pending: dict[str, tuple[bytes, str, bool, dict[str, int]]] = {}
    position = 0
    counts: Counter[str] = Counter()
    usage = Counter[str]()
    retryable = 0
    with atomic_binary(rows_path, durable=False) as fh:  # checked by line count before any reuse
        block: list[bytes] = []

        def emit(found: tuple[bytes, str, bool, dict[str, int]]) -> None:
            nonlocal retryable
            line, outcome, again, row_usage = found
            counts[outcome] += 1
            usage.update(row_usage)
            retryable += again
            block.append(line)
            if len(block) >= 2048:  # a few large writes instead of 50,000 small ones
                fh.write(b"".join(block))
                block.clear()

        for item in result:
            custom_id = item.custom_id
            if custom_id not in wanted:  # answering no input (e.g. torn beyond its custom_id), or twice
                continue
            wanted.discard(custom_id)
            outcome = str(getattr(item.outcome, "value", item.outcome))
            if outcome == "missing":
                row = _missing_row(custom_id, failed_batch, ref, batch_id, round_no)
            else:
                row = item_row(item, batch_id, round_no)
            pending[custom_id] = _encoded(row)
            while position < len(expected) and expected[position] in pending:
                emit(pending.pop(expected[position]))
                position += 1
        for custom_id in expected[position:]:  # inputs the result never named
            found = pending.pop(custom_id, None)
            emit(found or _encoded(_missing_row(custom_id, failed_batch, ref, batch_id, round_no)))
        fh.write(b"".join(block))
    return {
        "batch_id": batch_id,
        "status": statuses[0] if len(set(statuses)) == 1 else "mixed",
        "model": ref.models[0] if ref.models else None,
        "rows_path": str(rows_path),
        "shard_path": ref.input_files[0],
        "round": round_no,
        "outcomes": count_outcomes(counts),
        "usage": {k: int(usage[k]) for k in USAGE_KEYS},
        "retryable": retryable,
    }


def _empty_row(
    custom_id: str, outcome: str, error: dict[str, Any], batch_id: str, round_no: int
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "outcome": outcome,
        "content": None,
        "error": error,
        "status_code": None,
        "usage": None,
        "batch_id": batch_id,
        "round": round_no,
    }


def write_retry_input(rows_paths: Iterable[str], shard_paths: Iterable[str], target: Path) -> int:
    """Write the original request lines of every retryable row to `target` (deterministic order)."""
    retry_ids: set[str] = set()
    for rows_path in rows_paths:
        with open(rows_path, "rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                if is_retryable_row(row):
                    retry_ids.add(row["custom_id"])
    if not retry_ids:
        return 0
    n = 0
    with atomic_binary(target) as out:
        for shard_path in shard_paths:
            with open(shard_path, "rb") as fh:
                for line in fh:
                    if line.strip() and orjson.loads(line)["custom_id"] in retry_ids:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        n += 1
    return n


def count_lines(path: str | Path) -> int:
    """Newline-terminated lines in a file, counted in 1 MB blocks."""
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def concatenate(paths: Iterable[str], target: Path) -> None:
    """Concatenate files into `target`, atomically."""
    with atomic_binary(target) as out:
        for path in paths:
            with open(path, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)


def merge_rows(input_path: str, rows_paths_by_round: list[list[str]], target: Path) -> dict[str, Any]:
    """Write the final rows in input order, later rounds replacing earlier ones; return counts and usage.

    Rows are kept as raw bytes keyed by custom_id (not parsed objects), so 50,000 rows cost tens of MB.
    """
    latest: dict[str, tuple[bytes, str]] = {}
    for rows_paths in rows_paths_by_round:
        for rows_path in rows_paths:
            with open(rows_path, "rb") as fh:
                for line in fh:
                    row = orjson.loads(line)
                    latest[row["custom_id"]] = (line, row["outcome"])
    counts: Counter[str] = Counter()
    n = 0
    with atomic_binary(target) as out:
        for custom_id in iter_custom_ids(input_path):
            found = latest.pop(custom_id, None)
            if found is None:  # belt and braces: never drop an input silently
                row = _empty_row(custom_id, "missing", {"code": "missing", "message": "no result row"}, "", 0)
                found = (dumps_row(row), "missing")
            counts[found[1]] += 1
            out.write(found[0])
            n += 1
    return {"total": n, "outcomes": count_outcomes(counts)}
