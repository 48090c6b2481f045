"""Writing the result rows: JSONL (default), CSV or Parquet, always atomically.

A reader never sees a half-written output: rows go to a temporary file in the target directory,
which is flushed, fsynced and renamed over the target in one step.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from batch_openai.storage import atomic_binary, filesystem, is_url, local_path

OutputFormat = Literal["jsonl", "csv", "parquet"]
ROW_FIELDS: tuple[str, ...] = (
    "custom_id",
    "outcome",
    "content",
    "error",
    "status_code",
    "usage",
    "batch_id",
    "round",
)


class OutputPathError(ValueError):
    """The output path can never be written (checked before anything is uploaded)."""


def check_output_path(path: str | os.PathLike[str]) -> Path | str:
    """Refuse an output path that can never be written: an existing directory, a path under a regular
    file, or a directory without write permission; for a URL, a missing back end or bucket. Returns the
    absolute path (the URL as given)."""
    if is_url(path):
        return _check_output_url(str(path))
    target = local_path(path).absolute()
    if target.is_dir():
        raise OutputPathError(
            f"output {str(target)!r} is a directory; give a file path such as {target}/results.jsonl"
        )
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(
            f"output {str(target)!r} lies under {str(parent)!r}, which is a file; choose another path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"cannot write in {str(parent)!r} (permission denied); choose a writable directory"
        )
    return target


def _check_output_url(url: str) -> str:
    fs, inner = filesystem(url)  # an unknown scheme or a missing extra: BatchStorageError
    bucket = inner.split("/", 1)[0]
    try:
        found = fs.exists(bucket)
    except OSError as exc:
        raise OutputPathError(
            f"output {url!r}: cannot reach its storage ({' '.join(str(exc).split())})"
        ) from None
    if not found:
        raise OutputPathError(
            f"output {url!r}: the bucket {bucket!r} does not exist or these credentials cannot see it; "
            "create it or check the URL and credentials"
        )
    if inner.rstrip("/") != inner or fs.isdir(inner):
        raise OutputPathError(
            f"output {url!r} is a folder; give an object name such as {url.rstrip('/')}/results.jsonl"
        )
    return url


def infer_format(path: str | os.PathLike[str], requested: str | None = None) -> OutputFormat:
    """The output format: the one requested, else the file suffix (.jsonl, .json, .csv, .parquet, or none:
    JSONL). Any other suffix (`out.xlsx`) is refused unless `requested` says what to write."""
    fmt = (requested or "").lower().lstrip(".")
    if not fmt:
        suffix = Path(path).suffix.lower()
        known = {"": "jsonl", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
        fmt = {**known, ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "")
        if not fmt:
            raise ValueError(
                f"output {Path(path).name!r}: the suffix {suffix!r} names no format this can write; use "
                ".jsonl, .csv or .parquet, or say what to write with --output-format / output_format"
            )
    if fmt not in ("jsonl", "csv", "parquet"):
        raise ValueError(f"unknown output format {fmt!r}: use one of jsonl, csv, parquet")
    return fmt  # type: ignore[return-value]


def dumps_row(row: dict[str, Any]) -> bytes:
    """One JSONL line (with its newline) for a row."""
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Stream rows to a JSONL file atomically; returns the number of rows written."""
    n = 0
    with atomic_binary(path) as fh:
        for row in rows:
            fh.write(dumps_row(row))
            n += 1
    return n


def _csv_cell(value: Any) -> Any:
    """CSV cells are flat: nested values (error, usage) are written as compact JSON."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def convert_jsonl(
    jsonl_path: str | os.PathLike[str], target: str | os.PathLike[str], fmt: OutputFormat
) -> None:
    """Write the rows of a finished JSONL file to `target` as `fmt`, atomically."""
    if fmt == "jsonl":
        with atomic_binary(target) as out, open(jsonl_path, "rb") as src:
            for line in src:
                out.write(line)
        return
    if fmt == "csv":
        with atomic_binary(target) as out, open(jsonl_path, "rb") as src:
            text = _TextAdapter(out)
            writer = csv.DictWriter(text, fieldnames=list(ROW_FIELDS), extrasaction="ignore")
            writer.writeheader()
            for line in src:
                row = orjson.loads(line)
                writer.writerow({k: _csv_cell(row.get(k)) for k in ROW_FIELDS})
        return
    try:
        import pyarrow  # noqa: F401  (only to give a clear message when it is missing)
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("Parquet output needs pyarrow: pip install 'batch-openai[parquet]'") from exc
    import pandas as pd

    frame = pd.read_json(jsonl_path, lines=True, dtype=False)
    for column in ("error", "usage"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: None if v is None else orjson.dumps(v).decode())
    with atomic_binary(target) as out:
        frame.to_parquet(out, index=False)


class _TextAdapter:
    """Minimal text-to-binary shim so `csv` can write into an atomic binary file."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, text: str) -> int:
        """Encode and write text as UTF-8."""
        return self._fh.write(text.encode())
