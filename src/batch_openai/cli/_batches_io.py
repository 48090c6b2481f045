"""What the batch commands print and write: the registry table, merged JSONL, outcome rows.

Kept apart from the commands so each piece is small; nothing here talks to the network.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from batch_openai.cli._context import CliError
from batch_openai.records import BatchRecord, encode_record

__all__ = [
    "RESULT_COLUMNS",
    "age",
    "atomic_output",
    "counts_text",
    "merge_jsonl",
    "record_json",
    "records_table",
    "result_row",
    "write_csv",
    "write_jsonl",
    "write_parquet",
]

#: The columns of `batch-openai results` (csv and parquet; jsonl rows carry the same keys).
RESULT_COLUMNS = (
    "custom_id",
    "outcome",
    "status_code",
    "content",
    "error_code",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
)


def age(when: datetime, now: datetime | None = None) -> str:
    """A short age such as `45s`, `12m`, `3h`, `9d`."""
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def counts_text(counts: dict[str, int] | None) -> str:
    """`done/total` plus failures, e.g. `7/10 (1 failed)`; `-` when unknown."""
    if not counts:
        return "-"
    done = counts.get("completed", 0) + counts.get("failed", 0)
    text = f"{done}/{counts.get('total', 0)}"
    return text + (f" ({counts['failed']} failed)" if counts.get("failed") else "")


def record_json(record: BatchRecord) -> dict[str, Any]:
    """A record as plain JSON data (times in ISO 8601, UTC)."""
    value = encode_record(record)
    value.pop("v", None)
    return value


_STATUS_COLOURS = {"completed": "green", "failed": "red", "expired": "red", "cancelled": "yellow"}


def records_table(
    records: list[BatchRecord], *, colour: bool = False, width: int | None = None
) -> Iterator[str]:
    """The lines of the `list` table: full ids, status, counts, age, description (cut only to `width`).

    Formatted by hand: rich's table layout costs ~1 s for 1,000 rows, half of `list`'s budget.
    """
    import typer

    now = datetime.now(UTC)
    header = ("BATCH ID", "STATUS", "REQUESTS", "AGE", "DESCRIPTION")
    rows = [
        (r.batch_id, r.status, counts_text(r.request_counts), age(r.created_at, now), r.description or "")
        for r in records
    ]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]

    def line(cells: tuple[str, ...], status_colour: str | None = None) -> str:
        status = cells[1].ljust(widths[1])
        if status_colour:
            status = typer.style(status, fg=status_colour)
        text = "  ".join(
            [cells[0].ljust(widths[0]), status, cells[2].rjust(widths[2]), cells[3].rjust(widths[3]), ""]
        )
        desc = cells[4].replace("\n", " ")
        if width is not None:
            room = max(width - sum(widths) - 8, 10)
            desc = desc if len(desc) <= room else desc[: room - 1] + "…"
        return text + desc

    yield typer.style(line(header), bold=True) if colour else line(header)
    for row in rows:
        yield line(row, (_STATUS_COLOURS.get(row[1], "cyan") if colour else None))


@contextmanager
def atomic_output(path: Path | None, *, binary: bool = True) -> Iterator[BinaryIO | IO[str]]:
    """Write to `path` through a temporary file renamed into place on success; stdout when None."""
    import sys

    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        if binary:
            sys.stdout.buffer.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_jsonl(sources: Iterable[Path], out: BinaryIO) -> int:
    """Copy the lines of each JSONL file to `out`, one valid line each (blank lines dropped); count them."""
    written = 0
    for source in sources:
        with open(source, "rb") as f:
            for line in f:  # streamed: one line in memory at a time
                line = line.strip()
                if line:
                    out.write(line + b"\n")
                    written += 1
    return written


def result_row(item: Any) -> dict[str, Any]:
    """One outcome row of `results` from a `BatchResultItem`."""
    error = item.error if isinstance(item.error, dict) else None
    usage = item.usage if isinstance(item.usage, dict) else {}
    outcome = getattr(item.outcome, "value", item.outcome)
    return {
        "custom_id": item.custom_id,
        "outcome": outcome,
        "status_code": item.status_code,
        "content": item.content,
        "error_code": (error or {}).get("code") or (error or {}).get("type"),
        "error_message": (error or {}).get("message"),
        "prompt_tokens": usage.get("prompt_tokens", usage.get("input_tokens")),
        "completion_tokens": usage.get("completion_tokens", usage.get("output_tokens")),
        "total_tokens": usage.get("total_tokens"),
    }


def write_jsonl(rows: Iterable[dict[str, Any]], out: BinaryIO) -> int:
    """One JSON object a line; returns the count."""
    n = 0
    for row in rows:
        out.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        n += 1
    return n


def _cell(value: Any) -> Any:
    """A CSV/Parquet cell: strings and numbers as they are, anything else as JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return orjson.dumps(value).decode()


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """CSV with a header row; structured content is JSON-encoded; returns the count."""
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in RESULT_COLUMNS})
        n += 1
    return n


def write_parquet(rows: Iterable[dict[str, Any]], out: BinaryIO, *, chunk: int = 10_000) -> int:
    """Parquet written in row groups of `chunk` rows (bounded memory); needs pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CliError(
            "--format parquet needs pyarrow: pip install 'batch-openai[parquet]' (or use jsonl/csv)"
        ) from None
    schema = pa.schema(
        [
            ("custom_id", pa.string()),
            ("outcome", pa.string()),
            ("status_code", pa.int64()),
            ("content", pa.string()),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("total_tokens", pa.int64()),
        ]
    )
    n = 0
    buffer: list[dict[str, Any]] = []
    with pq.ParquetWriter(out, schema) as writer:

        def flush() -> None:
            cols: dict[str, list[Any]] = {}
            for field in schema:
                values = [_cell(r.get(field.name)) for r in buffer]
                cast = str if pa.types.is_string(field.type) else int
                cols[field.name] = [None if v is None else cast(v) for v in values]
            writer.write_table(pa.table(cols, schema=schema))
            buffer.clear()

        for row in rows:
            buffer.append(row)
            n += 1
            if len(buffer) >= chunk:
                flush()
        if buffer or n == 0:
            flush()
    return n
