"""Turning a table of records plus a prompt template into a native batch-input JSONL file.

This is what the UI deployment offers people who have a CSV or JSONL of records rather than batch
requests: `prompt_template` uses `{field}` placeholders, `id_field` names the column that becomes the
`custom_id`. Every record is checked before anything is written; errors name the record and the fix.

`response_schema` (a JSON Schema object, or its JSON text as pasted into a UI form) or `response_model`
(`"package.module:Model"`, a Pydantic model) turn every rendered request into a strict structured-output
request: `response_format_for` builds the chat `response_format` both arrive at.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import os
import re
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a .csv file (header line) or a .jsonl file (one JSON object a line): a path or a URL,
    streamed."""
    import io

    from batch_openai.storage import basename, is_file, open_read

    name = basename(path)
    if not is_file(path):
        raise FileNotFoundError(f"records file {str(path)!r} does not exist; check the input path")
    if Path(name).suffix.lower() == ".csv":
        with open_read(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)
        return
    with open_read(path) as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(
                        f"{name} line {number} is not valid JSON ({exc}); records files are CSV (with a "
                        "header line) or JSONL (one JSON object a line)"
                    ) from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{name} line {number}: expected a JSON object per line")
                yield obj


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses, in order; a template that cannot be parsed is a ValueError."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(
            f"prompt_template is not a valid template ({exc}); use {{field}} placeholders and write a "
            "literal brace as {{ or }}"
        ) from None
    for name in names:
        if not name.isidentifier():
            raise ValueError(
                f"prompt_template has the placeholder {{{name}}}; placeholders must be plain field names "
                "such as {text} (write a literal brace as {{ or }})"
            )
    return names


def render_requests(
    records_path: str | Path,
    target: str | Path,
    *,
    prompt_template: str,
    model: str,
    id_field: str = "id",
    system_prompt: str | None = None,
    params: dict[str, Any] | None = None,
    response_format: dict[str, Any] | None = None,
) -> Path:
    """Write one /v1/chat/completions request per record to `target` (validated by the library builder).

    With `response_format` (see `response_format_for`) every request carries it.
    """
    from batch_openai import BatchRequestBuilder

    fields = template_fields(prompt_template)
    extra = dict(params or {})
    if response_format is not None:
        extra["response_format"] = response_format
    builder = BatchRequestBuilder()
    number = 0
    for number, record in enumerate(iter_records(records_path), 1):
        missing = [f for f in [*fields, id_field] if f not in record]
        if missing:
            raise ValueError(
                f"record {number} has no field(s) {missing}; the template and id_field need them "
                f"(fields present: {sorted(str(k) for k in record)})"
            )
        try:
            prompt = prompt_template.format(**record)
        except (ValueError, TypeError) as exc:  # e.g. a format spec such as {n:d} on a text value
            raise ValueError(f"record {number}: the template could not be filled in ({exc})") from None
        messages = [{"role": "user", "content": prompt}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        builder.add(messages, model=model, custom_id=str(record[id_field]), **extra)
    if number == 0:
        raise ValueError(f"records file {str(records_path)!r} holds no records; nothing to send")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    builder.to_jsonl(tmp)
    tmp.replace(target)
    return target


def render_key(records_path: str | Path, **options: Any) -> str:
    """A short content key for a rendered input: the records' bytes plus every rendering option."""
    from batch_openai import fingerprint_file

    digest = hashlib.sha256(fingerprint_file(records_path).encode())  # streamed: a big file is never held
    digest.update(orjson.dumps(options, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]


# --- structured output -------------------------------------------------------------------------------

_NESTED_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_NESTED_MAPS = ("$defs", "definitions")


def response_format_for(
    response_schema: dict[str, Any] | str | None, response_model: str | None
) -> dict[str, Any] | None:
    """The strict chat `response_format` for a JSON Schema or a Pydantic model; None when neither is given.

    `response_model` is `"package.module:Model"`, importable where the flow runs (the current directory is
    tried too). `response_schema` is a JSON Schema object (or its JSON text) whose root is an object; it is
    made strict by `strict_schema`, which fills in what OpenAI's strict mode needs where it is absent and
    refuses what contradicts it. Every problem is a `ValueError` whose message names the fix.
    """
    if response_schema is not None and response_model is not None:
        raise ValueError("pass either response_schema or response_model, not both")
    if response_model is not None:
        from openai.lib._parsing._completions import type_to_response_format_param

        model_class = import_model(response_model)
        try:
            return dict(type_to_response_format_param(model_class))  # type: ignore[arg-type]
        except Exception as exc:  # the SDK refuses models strict mode cannot express
            raise ValueError(
                f"response_model {response_model!r} cannot be used for strict structured output ({exc})"
            ) from None
    if response_schema is not None:
        schema = strict_schema(response_schema)
        return {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(schema), "schema": schema, "strict": True},
        }
    return None


def import_model(spec: str) -> type:
    """The Pydantic model class that `"package.module:Model"` names."""
    from pydantic import BaseModel

    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"response_model {spec!r} is not 'package.module:Model'; name the module and the class, "
            "e.g. 'myproject.schemas:Review'"
        )
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            cwd = os.getcwd()
            if exc.name != module_name.split(".")[0] or cwd in sys.path:
                raise
            sys.path.append(cwd)  # `batch-openai run` from a project folder: its modules are importable
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(
            f"response_model {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
            "install the package where the flow runs or fix the module path"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(
                f"response_model {spec!r}: module {module_name!r} has no {attr!r}; check the class name"
            )
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, BaseModel)) or target is BaseModel:
        raise ValueError(
            f"response_model {spec!r} is not a Pydantic model (a pydantic.BaseModel subclass); "
            "point it at one"
        )
    return target


def load_schema(response_schema: dict[str, Any] | str) -> dict[str, Any]:
    """A JSON Schema object from a dict or its JSON text, checked against JSON Schema 2020-12."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    schema: Any = response_schema
    if isinstance(schema, str | bytes):
        try:
            schema = orjson.loads(schema)
        except orjson.JSONDecodeError as exc:
            raise ValueError(
                f"response_schema is not valid JSON ({exc}); paste a JSON Schema object"
            ) from None
    if not isinstance(schema, dict):
        raise ValueError(
            f"response_schema must be a JSON Schema object, got {type(schema).__name__}; "
            'e.g. {"type": "object", "properties": {"label": {"type": "string"}}}'
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the root"
        raise ValueError(f"response_schema is not a valid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError(
            'response_schema needs "type": "object" at its root (strict structured output returns an '
            "object); wrap other values in an object property"
        )
    return schema


def strict_schema(response_schema: dict[str, Any] | str) -> dict[str, Any]:
    """A copy of the schema as OpenAI's strict mode needs it, or a `ValueError` naming the path and fix.

    Normalises what is absent, refuses what contradicts: on every object, a missing
    `additionalProperties` becomes `false` and a missing `required` lists every property; an
    `additionalProperties` other than `false`, or a `required` that leaves a property out, is refused
    (strict mode has no optional properties: list them all and make the optional ones nullable).
    """
    schema = orjson.loads(orjson.dumps(load_schema(response_schema)))  # a deep copy to normalise
    _make_strict(schema, "")
    return schema


def _make_strict(node: Any, path: str) -> None:
    if isinstance(node, list):
        for i, sub in enumerate(node):
            _make_strict(sub, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    props = node.get("properties")
    where = f"response_schema at {path or 'its root'}"
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or isinstance(props, dict):
        if "additionalProperties" not in node:
            node["additionalProperties"] = False
        elif node["additionalProperties"] is not False:
            raise ValueError(
                f"{where}: strict mode needs 'additionalProperties': false on every object; remove it or "
                "set it to false"
            )
        names = list(props or {})
        if "required" not in node:
            node["required"] = names
        else:
            required = node["required"]
            left_out = [n for n in names if n not in required]
            unknown = [n for n in required if n not in names]
            if left_out:
                raise ValueError(
                    f"{where}: strict mode needs every property in 'required' (not required: {left_out}); "
                    'list them all and make optional ones nullable, e.g. "type": ["string", "null"]'
                )
            if unknown:
                raise ValueError(
                    f"{where}: 'required' names {unknown}, which are not in 'properties'; "
                    "add them to 'properties' or drop them from 'required'"
                )
        for name, sub in (props or {}).items():
            _make_strict(sub, _join(path, f"properties.{name}"))
    if "items" in node:
        _make_strict(node["items"], _join(path, "items"))
    for key in _NESTED_LISTS:
        if key in node:
            _make_strict(node[key], _join(path, key))
    for key in _NESTED_MAPS:
        for name, sub in (node.get(key) or {}).items():
            _make_strict(sub, _join(path, f"{key}.{name}"))


def _join(path: str, step: str) -> str:
    return f"{path}.{step}" if path else step


def _schema_name(schema: dict[str, Any]) -> str:
    """The json_schema `name` (letters, digits, _ and -, at most 64): the schema's title or "response"."""
    title = schema.get("title")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", title).strip("_")[:64] if isinstance(title, str) else ""
    return name or "response"
