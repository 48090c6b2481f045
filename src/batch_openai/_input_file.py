"""Reading a native batch-input JSONL file line by line, each defect named with its line number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from batch_openai._errors import BatchValidationError
from batch_openai._jsonl import iter_lines
from batch_openai._validation import MAX_FILE_BYTES, check_custom_id, check_endpoint
from batch_openai.storage import basename, is_file

__all__ = ["check_input_file", "read_input_lines"]


def check_input_file(path: str | Path) -> None:
    """Refuse a path or URL that names no file, before anything is read."""
    if not is_file(path):
        raise BatchValidationError(
            f"input file {str(path)!r} does not exist (or is not a file); check the path"
        )


def read_input_lines(path: str | Path) -> Iterator[tuple[int, str, str, Any]]:
    """Yield (line number, custom_id, url, body) for each line of a file or URL; the body is checked by
    the builder."""
    name = basename(path)
    for number, raw in iter_lines(path):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BatchValidationError(
                f"{name} line {number}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8",
                line=number,
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise BatchValidationError(
                f"{name} line {number}: {len(raw):,} bytes, over the {MAX_FILE_BYTES:,}-byte file "
                "limit on its own; shorten that request",
                line=number,
            )
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BatchValidationError(
                f"{name} line {number}: invalid JSON ({exc}); each line must be one JSON object",
                line=number,
            ) from None
        if not isinstance(obj, dict):
            raise BatchValidationError(
                f"{name} line {number}: expected a JSON object with custom_id, method, url and body, "
                f"got {type(obj).__name__}",
                line=number,
            )
        for key in ("custom_id", "method", "url", "body"):
            if key not in obj:
                raise BatchValidationError(
                    f"{name} line {number}: missing {key!r}; each line needs custom_id, method, url and body",
                    line=number,
                    custom_id=obj.get("custom_id") if isinstance(obj.get("custom_id"), str) else None,
                )
        custom_id = check_custom_id(obj["custom_id"], number)
        if obj["method"] != "POST":
            raise BatchValidationError(
                f'{name} line {number}: method {obj["method"]!r}; batch requests use "POST"',
                line=number,
                custom_id=custom_id,
            )
        url = check_endpoint(obj["url"], custom_id, number)
        yield number, custom_id, url, obj["body"]
