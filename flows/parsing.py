"""The parse step of template mode's structured output: each row gains `parsed` and `parse_error`.

`row_parser` turns the run's `response_schema` / `response_model` into a function from a row's
`content` (the JSON text the model answered) to `(parsed, parse_error)`; `parse_rows_file` applies it
to a rows JSONL, streaming, and writes the result atomically. Only succeeded rows are parsed: the others
get `parsed: null, parse_error: null` (their `error` already says what went wrong); a succeeded row
whose content is not JSON or does not validate gets `parsed: null` and a short `parse_error`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

RowParser = Callable[[Any], tuple[Any, "str | None"]]

_BLOCK_ROWS = 1_000  # rows encoded per write: few syscalls, bounded memory
_MAX_REASON = 300


def row_parser(response_schema: dict[str, Any] | str | None, response_model: str | None) -> RowParser | None:
    """A function content -> (parsed, parse_error), or None when neither schema nor model is set.

    With a model: `Model.model_validate_json(content)`, dumped in JSON mode. With a schema: the JSON is
    validated against the schema as sent (made strict by `template.strict_schema`), compiled once.
    Content that is not JSON or does not validate gives `(None, "<short reason>")`; content that is None
    (a row that did not succeed) gives `(None, None)`. Content already decoded (a dict) is validated as is.
    """
    from batch_openai.flows.template import import_model, strict_schema

    if response_schema is not None and response_model is not None:
        raise ValueError("pass either response_schema or response_model, not both")
    if response_model is not None:
        from pydantic import ValidationError

        model_class: Any = import_model(response_model)

        def parse_model(content: Any) -> tuple[Any, str | None]:
            if content is None:
                return None, None
            try:
                if isinstance(content, str | bytes):
                    return model_class.model_validate_json(content).model_dump(mode="json"), None
                return model_class.model_validate(content).model_dump(mode="json"), None
            except ValidationError as exc:
                return None, _short(_pydantic_reason(exc))
            except (TypeError, ValueError) as exc:
                return None, _short(f"{type(exc).__name__}: {exc}")

        return parse_model
    if response_schema is not None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        validator = Draft202012Validator(strict_schema(response_schema))

        def parse_schema(content: Any) -> tuple[Any, str | None]:
            if content is None:
                return None, None
            if isinstance(content, str | bytes):
                try:
                    value = orjson.loads(content)
                except orjson.JSONDecodeError as exc:
                    return None, _short(f"not valid JSON: {exc}")
            else:
                value = content
            error = best_match(validator.iter_errors(value))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "the root"
                return None, _short(f"does not match the schema at {where}: {error.message}")
            return value, None

        return parse_schema
    return None


def parse_rows_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], parser: RowParser
) -> dict[str, int]:
    """Write every row of the rows JSONL `src` to `dst` with `parsed` and `parse_error` added.

    Streams line by line and writes in blocks, so memory stays bounded for any file size; `dst` appears
    atomically (a temporary file beside it, then `os.replace`), so `src` may equal `dst`. Rows whose
    `outcome` is not "succeeded" are not parsed. Returns `{"parsed": ok, "parse_failed": bad}`.
    """
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    counts = {"parsed": 0, "parse_failed": 0}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
            block: list[bytes] = []
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(
                        f"rows file {str(src)!r} line {number} is not valid JSON ({exc})"
                    ) from None
                if row.get("outcome") != "succeeded":
                    parsed, parse_error = None, None
                else:
                    content = row.get("content")
                    if content is None:  # succeeded without text: a refusal, or a tool call
                        parsed, parse_error = None, "the row has no content to parse (a refusal?)"
                    else:
                        try:
                            parsed, parse_error = parser(content)
                        except Exception as exc:  # one odd row must not sink the whole file
                            parsed, parse_error = None, _short(f"{type(exc).__name__}: {exc}")
                    counts["parse_failed" if parse_error is not None else "parsed"] += 1
                row["parsed"], row["parse_error"] = parsed, parse_error
                block.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
                if len(block) >= _BLOCK_ROWS:
                    out.write(b"".join(block))
                    block.clear()
            out.write(b"".join(block))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts


def _pydantic_reason(exc: Any) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "the root"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"does not match the model at {where}: {first.get('msg')}{more}"


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
