"""Turning a table of records plus a prompt template into a native batch-input JSONL file.

This is what the UI deployment offers people who have a CSV or JSONL of records rather than batch
requests: `prompt_template` uses `{field}` placeholders, `id_field` names the column that becomes the
`custom_id`. Every record is checked before anything is written; errors name the record and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a .csv file (header line) or a .jsonl file (one JSON object a line)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"records file {str(p)!r} does not exist; check the input path")
    if p.suffix.lower() == ".csv":
        with open(p, newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
        return
    with open(p, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                obj = orjson.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"{p.name} line {number}: expected a JSON object per line")
                yield obj


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses, in order."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def render_requests(
    records_path: str | Path,
    target: str | Path,
    *,
    prompt_template: str,
    model: str,
    id_field: str = "id",
    system_prompt: str | None = None,
    params: dict[str, Any] | None = None,
) -> Path:
    """Write one /v1/chat/completions request per record to `target` (validated by the library builder)."""
    from batch_openai import BatchRequestBuilder

    fields = template_fields(prompt_template)
    builder = BatchRequestBuilder()
    for number, record in enumerate(iter_records(records_path), 1):
        missing = [f for f in [*fields, id_field] if f not in record]
        if missing:
            raise ValueError(
                f"record {number} has no field(s) {missing}; the template and id_field need them "
                f"(fields present: {sorted(record)})"
            )
        messages = [{"role": "user", "content": prompt_template.format(**record)}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        builder.add(messages, model=model, custom_id=str(record[id_field]), **(params or {}))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    builder.to_jsonl(tmp)
    tmp.replace(target)
    return target


def render_key(records_path: str | Path, **options: Any) -> str:
    """A short content key for a rendered input: the records' bytes plus every rendering option."""
    digest = hashlib.sha256(Path(records_path).read_bytes())
    digest.update(orjson.dumps(options, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]
