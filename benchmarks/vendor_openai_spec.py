"""Regenerate src/batch_openai/spec/*.json from OpenAI's published OpenAPI spec (one file per endpoint).

    .venv/bin/python benchmarks/vendor_openai_spec.py [--spec ../shared/openai-openapi/openapi.json.gz]

Each endpoint's request schema (CreateChatCompletionRequest, ...) is flattened: its top-level `allOf` merged
into one `properties` map with `required`, every `$ref` it reaches copied into `$defs` (refs rewritten to
`#/$defs/Name`), OpenAPI 3.0 `nullable` turned into JSON Schema `null` types, prose (descriptions, examples,
`x-*`) dropped, `oneOf` read as `anyOf` (its branches overlap; the service picks by discriminator).
`models.json` lists, per endpoint, the model ids the spec names for it (the local server's
catalogue, and the pre-upload check's "known model" list). A few service rules the spec does not state but
OpenAI enforces (answers recorded from the API) are added as OVERLAY, so both sides still read one file.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "batch_openai" / "spec"
DEFAULT_SPEC = ROOT.parent / "shared" / "openai-openapi" / "openapi.json.gz"
SPEC_COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"

ENDPOINTS = {
    "/v1/chat/completions": ("chat_completions", "CreateChatCompletionRequest"),
    "/v1/responses": ("responses", "CreateResponse"),
    "/v1/embeddings": ("embeddings", "CreateEmbeddingRequest"),
    "/v1/completions": ("completions", "CreateCompletionRequest"),
    "/v1/moderations": ("moderations", "CreateModerationRequest"),
}
#: Rules OpenAI enforces that the spec leaves out: endpoint -> property -> keywords merged into its schema.
OVERLAY: dict[str, dict[str, dict[str, Any]]] = {
    # "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got -5 instead."
    "/v1/chat/completions": {"max_tokens": {"minimum": 1}, "max_completion_tokens": {"minimum": 1}},
    "/v1/completions": {"max_tokens": {"minimum": 0}},
}
_DROP = {"description", "example", "examples", "externalDocs", "discriminator", "deprecated", "title"}


def _clean(node: Any) -> Any:
    """Prose and OpenAPI-only keywords out; `nullable` as JSON Schema; refs local to `$defs`."""
    if isinstance(node, list):
        return [_clean(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-") or key == "nullable":
            continue
        if key == "$ref":
            out[key] = "#/$defs/" + value.rsplit("/", 1)[-1]
        elif key == "oneOf":
            # The spec's oneOf are discriminated unions whose branches overlap (an input message is both
            # an EasyInputMessage and an InputMessage): "exactly one" would refuse valid requests.
            out["anyOf"] = _clean(value)
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {k: _clean(v) for k, v in value.items()}
        else:
            out[key] = _clean(value)
    if node.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any, acc: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                acc.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, acc)
    elif isinstance(node, list):
        for value in node:
            _refs(value, acc)


def _flatten(schemas: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """Top-level properties and required names of a request schema, through its allOf chain."""
    node = schemas[name]
    props: dict[str, Any] = {}
    required: list[str] = []
    for part in node.get("allOf", []):
        if "$ref" in part:
            p, r = _flatten(schemas, part["$ref"].rsplit("/", 1)[-1])
        else:
            p, r = _flatten({"_": part}, "_")
        props.update(p)
        required += [x for x in r if x not in required]
    props.update(node.get("properties", {}))
    required += [x for x in node.get("required", []) if x not in required]
    return props, required


def _model_ids(schemas: dict[str, Any], node: Any, acc: list[str]) -> None:
    """Every string enum value reachable from a `model` property (the spec's named models)."""
    if isinstance(node, dict):
        if "$ref" in node:
            _model_ids(schemas, schemas[node["$ref"].rsplit("/", 1)[-1]], acc)
        for value in node.get("enum", []):
            if isinstance(value, str) and value not in acc:
                acc.append(value)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                _model_ids(schemas, sub, acc)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    """The vendored files' contents: {file name: JSON object}."""
    schemas = spec["components"]["schemas"]
    files: dict[str, Any] = {}
    models: dict[str, list[str]] = {}
    for endpoint, (stem, name) in ENDPOINTS.items():
        props, required = _flatten(schemas, name)
        ids: list[str] = []
        _model_ids(schemas, props.get("model", {}), ids)
        models[endpoint] = ids
        cleaned = {k: _clean(v) for k, v in props.items()}
        for prop, extra in OVERLAY.get(endpoint, {}).items():
            cleaned[prop] = {**cleaned[prop], **extra}
        defs: dict[str, Any] = {}
        todo: set[str] = set()
        _refs(props, todo)
        while todo:
            ref = todo.pop()
            if ref in defs:
                continue
            defs[ref] = _clean(schemas[ref])
            found: set[str] = set()
            _refs(schemas[ref], found)
            todo |= found - set(defs)
        files[f"{stem}.json"] = {
            "endpoint": endpoint,
            "schema_name": name,
            "spec_commit": SPEC_COMMIT,
            "properties": cleaned,
            "required": required,
            "$defs": dict(sorted(defs.items())),
        }
    files["models.json"] = {"spec_commit": SPEC_COMMIT, "models": models}
    return files


def main() -> None:
    """Read the gzipped spec and write the per-endpoint JSON files."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    args = parser.parse_args()
    with gzip.open(args.spec, "rt", encoding="utf-8") as fh:
        spec = json.load(fh)
    OUT.mkdir(parents=True, exist_ok=True)
    for fname, content in build(spec).items():
        path = OUT / fname
        path.write_text(json.dumps(content, indent=None, separators=(",", ":"), sort_keys=False) + "\n")
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
