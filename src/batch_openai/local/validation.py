"""Checks the real service makes: at `batches.create` (a 400) and while `validating` (batch `failed`)."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batch_openai.local.config import BATCH_ENDPOINTS, MAX_EMBEDDING_INPUTS
from batch_openai.local.errors import APIError, bad_request

MAX_REPORTED_ERRORS = 100
#: CreateBatchRequest's properties in the spec; anything else is an unknown parameter (a 400).
_CREATE_PARAMS = frozenset(
    {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
)
#: Body fields each endpoint cannot do without (beyond `model`, which all but moderations need).
_REQUIRED_BODY: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("model", "messages"),
    "/v1/responses": ("model",),
    "/v1/embeddings": ("model", "input"),
    "/v1/completions": ("model", "prompt"),
    "/v1/moderations": ("input",),
    "/v1/images/generations": ("prompt",),
    "/v1/images/edits": ("prompt",),
    "/v1/videos": ("prompt",),
}


def check_create_params(body: Any) -> dict[str, Any]:
    """Validate a `POST /v1/batches` body; return the normalised parameters or raise a 400."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    for name in body:
        if name not in _CREATE_PARAMS:
            raise bad_request(f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)
    for name in ("input_file_id", "endpoint", "completion_window"):
        if body.get(name) in (None, ""):
            raise bad_request(
                f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name
            )
    endpoint = body["endpoint"]
    if endpoint not in BATCH_ENDPOINTS:
        raise bad_request(
            f"Invalid value for 'endpoint': {endpoint!r}. Supported: {', '.join(BATCH_ENDPOINTS)}.",
            code="invalid_value",
            param="endpoint",
        )
    if body["completion_window"] != "24h":
        raise bad_request(
            f"Invalid value for 'completion_window': {body['completion_window']!r}. Supported: '24h'.",
            code="invalid_value",
            param="completion_window",
        )
    metadata = body.get("metadata")
    if metadata is not None:
        check_metadata(metadata)
    oea = body.get("output_expires_after")
    if oea is not None:
        if not isinstance(oea, dict) or oea.get("anchor") != "created_at":
            raise bad_request(
                "Invalid 'output_expires_after': expected {anchor: 'created_at', seconds: N}.",
                code="invalid_value",
                param="output_expires_after.anchor",
            )
        secs = oea.get("seconds")
        if not isinstance(secs, int) or isinstance(secs, bool) or not 3600 <= secs <= 2_592_000:
            raise bad_request(
                "Invalid 'output_expires_after.seconds': must be an integer between 3600 and 2592000.",
                code="invalid_value",
                param="output_expires_after.seconds",
            )
    return body


def check_metadata(metadata: Any) -> None:
    """At most 16 pairs; keys up to 64 characters; values strings up to 512 characters."""
    if not isinstance(metadata, dict):
        raise bad_request(
            "Invalid type for 'metadata': expected an object.", code="invalid_type", param="metadata"
        )
    if len(metadata) > 16:
        raise bad_request(
            f"Invalid 'metadata': too many properties. Expected at most 16, got {len(metadata)}.",
            code="object_above_max_properties",
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise bad_request(
                f"Invalid 'metadata': key {key[:20]!r}... is longer than 64 characters.",
                code="string_above_max_length",
                param=f"metadata.{key}",
            )
        if not isinstance(value, str):
            raise bad_request(
                f"Invalid type for 'metadata.{key}': expected a string, but got {type(value).__name__}.",
                code="invalid_type",
                param=f"metadata.{key}",
            )
        if len(value) > 512:
            raise bad_request(
                f"Invalid 'metadata.{key}': string too long. Expected at most 512 characters, "
                f"got {len(value)}.",
                code="string_above_max_length",
                param=f"metadata.{key}",
            )


@dataclass
class LineError:
    """One `errors.data[]` entry of a failed batch."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it."""
        return {"code": self.code, "line": self.line, "message": self.message, "param": self.param}


@dataclass
class ValidatedFile:
    """What validation learnt: where each request starts and ends, and its model."""

    starts: array = field(default_factory=lambda: array("q"))
    ends: array = field(default_factory=lambda: array("q"))
    custom_ids: list[str] = field(default_factory=list)
    model: str | None = None
    input_tokens: int = 0
    errors: list[LineError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.custom_ids)


def validate_file(
    path: Path,
    endpoint: str,
    *,
    max_lines: int,
    max_bytes: int,
    count_tokens: Callable[[str, dict[str, Any]], int] | None = None,
) -> ValidatedFile:
    """Scan a batch input file once; every problem becomes a `LineError` with its 1-based line."""
    result = ValidatedFile()
    size = path.stat().st_size
    if size > max_bytes:
        result.errors.append(
            LineError("file_too_large", f"The input file is {size} bytes; the limit is {max_bytes} bytes.")
        )
        return result
    errors = result.errors
    seen: set[str] = set()
    required = _REQUIRED_BODY.get(endpoint, ("model",))
    embedding_inputs = 0
    pos = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            start, pos = pos, pos + len(raw)
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
            if not raw.strip():
                continue  # blank lines (a trailing one included) carry no request
            err = _check_line(raw, lineno, endpoint, required, seen, result)
            if err is not None:
                errors.append(err)
                continue
            if len(result.custom_ids) > max_lines:
                errors.append(
                    LineError(
                        "request_limit_exceeded",
                        f"The input file holds more than {max_lines} requests; split it into batches.",
                        line=lineno,
                    )
                )
                break
            result.starts.append(start)
            result.ends.append(pos)
            if count_tokens is not None or endpoint == "/v1/embeddings":
                body = orjson.loads(raw)["body"]
                if count_tokens is not None:
                    result.input_tokens += count_tokens(endpoint, body)
                if endpoint == "/v1/embeddings":
                    inp = body.get("input")
                    embedding_inputs += len(inp) if isinstance(inp, list) and not _is_token_list(inp) else 1
    if embedding_inputs > MAX_EMBEDDING_INPUTS:
        errors.append(
            LineError(
                "too_many_inputs",
                f"An embeddings batch holds at most {MAX_EMBEDDING_INPUTS} inputs in total; "
                f"this one has {embedding_inputs}.",
            )
        )
    if not errors and not result.custom_ids:
        errors.append(LineError("empty_file", "The input file holds no requests."))
    return result


def _is_token_list(inp: list[Any]) -> bool:
    return bool(inp) and all(isinstance(x, int) for x in inp)


def _check_line(
    raw: bytes,
    lineno: int,
    endpoint: str,
    required: tuple[str, ...],
    seen: set[str],
    result: ValidatedFile,
) -> LineError | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return LineError("invalid_json_line", "This line is not parseable as valid JSON.", line=lineno)
    if not isinstance(line, dict):
        return LineError("invalid_json_line", "This line is not a JSON object.", line=lineno)
    for name in ("custom_id", "method", "url", "body"):
        if name not in line or line[name] is None:
            return LineError(
                "missing_required_parameter",
                f"Missing required parameter: '{name}'.",
                line=lineno,
                param=name,
            )
    custom_id, body = line["custom_id"], line["body"]
    if not isinstance(custom_id, str) or not custom_id:
        return LineError(
            "invalid_request", "'custom_id' must be a non-empty string.", line=lineno, param="custom_id"
        )
    if str(line["method"]).upper() != "POST":
        return LineError("invalid_request", "Only the POST method is supported.", line=lineno, param="method")
    if line["url"] != endpoint:
        return LineError(
            "invalid_url",
            f"The URL provided for this request does not match the batch endpoint {endpoint!r}.",
            line=lineno,
            param="url",
        )
    if not isinstance(body, dict):
        return LineError("invalid_request", "'body' must be a JSON object.", line=lineno, param="body")
    if body.get("stream") is True:
        return LineError(
            "streaming_unsupported",
            "Streaming is not supported in the Batch API.",
            line=lineno,
            param="body.stream",
        )
    for name in required:
        if body.get(name) in (None, "", []):
            return LineError(
                "invalid_request",
                f"Missing required parameter: 'body.{name}'.",
                line=lineno,
                param=f"body.{name}",
            )
    model = body.get("model")
    if model is not None:
        if result.model is None:
            result.model = str(model)
        elif model != result.model:
            return LineError(
                "mismatched_model",
                f"The model {model!r} differs from {result.model!r} used by earlier lines; "
                "a batch file holds one model.",
                line=lineno,
                param="body.model",
            )
    if custom_id in seen:
        return LineError(
            "duplicate_custom_id",
            f"The custom_id {custom_id!r} is a duplicate of another request; custom_ids must be unique.",
            line=lineno,
            param="custom_id",
        )
    seen.add(custom_id)
    result.custom_ids.append(custom_id)
    return None


def token_limit_error(model: str, limit: int, in_flight: int, needed: int) -> APIError:
    """Not raised over HTTP: the message of a `token_limit_exceeded` validation failure."""
    return APIError(
        400,
        f"Enqueued token limit reached for {model} in organization org-local. "
        f"Limit: {limit:,} enqueued tokens "
        f"(in flight {in_flight:,}, this batch {needed:,}). "
        "Please try again once some in_progress batches have been completed.",
        code="token_limit_exceeded",
    )
