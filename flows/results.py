"""Turning a terminal batch into output rows, and merging rounds into the final output file.

Rows are plain dicts (`batch_openai.flows.output.ROW_FIELDS`), one per input `custom_id`, written as JSONL files on
disk; only small summaries (counts, usage) travel through Prefect.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from batch_openai.flows.classify import count_outcomes, is_retryable_row
from batch_openai.flows.output import atomic_binary, dumps_row

USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def iter_shard_ids(shard_path: str | Path) -> Iterator[str]:
    """The custom_ids of a batch-input JSONL file, in file order."""
    with open(shard_path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)["custom_id"]


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


def _batch_error(batch: Any) -> dict[str, Any]:
    """The first batch-level error of a failed batch, as a row error."""
    errors = getattr(batch, "errors", None)
    data = list(getattr(errors, "data", None) or [])
    if data:
        first = data[0]
        return {
            "code": getattr(first, "code", None),
            "message": getattr(first, "message", None),
            "line": getattr(first, "line", None),
            "batch_status": "failed",
        }
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


def collect_rows(
    job: Any, shard_path: str, download_dir: Path, rows_path: Path, round_no: int
) -> dict[str, Any]:
    """Download a terminal batch, classify every line of its shard, write rows in shard order; summarise."""
    from batch_openai import BatchResult

    batch = job.batches[0]
    expected = list(iter_shard_ids(shard_path))
    files_dir = download_dir / job.batch_id
    out_path, err_path = job.download(files_dir)
    result = BatchResult.from_files(out_path, err_path, expected_ids=expected)
    by_id = {item.custom_id: item for item in result}
    failed_batch = batch.status == "failed"
    counts: Counter[str] = Counter()
    usage = Counter[str]()
    retryable = 0
    block: list[bytes] = []
    with atomic_binary(rows_path, durable=False) as fh:  # checked by line count before any reuse
        for custom_id in expected:
            item = by_id.get(custom_id)
            if item is not None and not (
                failed_batch and str(getattr(item.outcome, "value", item.outcome)) == "missing"
            ):
                row = item_row(item, job.batch_id, round_no)
            elif failed_batch:  # failed in validation: nothing ran, every line carries the batch's reason
                row = _empty_row(custom_id, "failed", _batch_error(batch), job.batch_id, round_no)
            else:
                row = _empty_row(
                    custom_id,
                    "missing",
                    {"code": "missing", "message": "in neither file"},
                    job.batch_id,
                    round_no,
                )
            counts[row["outcome"]] += 1
            if row["usage"]:
                for key in USAGE_KEYS:
                    usage[key] += row["usage"][key]
            if row["outcome"] != "succeeded":
                retryable += is_retryable_row(row)
            block.append(dumps_row(row))
            if len(block) >= 2048:  # a few large writes instead of 50,000 small ones
                fh.write(b"".join(block))
                block.clear()
        fh.write(b"".join(block))
    return {
        "batch_id": job.batch_id,
        "status": batch.status,
        "model": _shard_model(shard_path),
        "rows_path": str(rows_path),
        "shard_path": str(shard_path),
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


def _shard_model(shard_path: str | Path) -> str | None:
    with open(shard_path, "rb") as fh:
        first = fh.readline()
    return orjson.loads(first).get("body", {}).get("model") if first.strip() else None


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
        for custom_id in iter_shard_ids(input_path):
            found = latest.pop(custom_id, None)
            if found is None:  # belt and braces: never drop an input silently
                row = _empty_row(custom_id, "missing", {"code": "missing", "message": "no result row"}, "", 0)
                found = (dumps_row(row), "missing")
            counts[found[1]] += 1
            out.write(found[0])
            n += 1
    return {"total": n, "outcomes": count_outcomes(counts)}
