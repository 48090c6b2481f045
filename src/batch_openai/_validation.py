"""Checks run on each request before anything is uploaded; each failure names the request and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batch_openai._errors import BatchValidationError
from batch_openai._models import model_problems

__all__ = [
    "ENDPOINTS",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS",
    "check_body",
    "check_custom_id",
    "check_endpoint",
    "embedding_weight",
]

MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 209_715_200  # 200 MB, the service's per-file limit

# Endpoints the Batch API (and the SDK's `batches.create`) accept.
ENDPOINTS: frozenset[str] = frozenset(
    {
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _where(custom_id: str | None, line: int | None) -> str:
    parts = []
    if line is not None:
        parts.append(f"line {line}")
    if custom_id is not None:
        parts.append(f"custom_id {custom_id!r}")
    return f"request ({', '.join(parts)})" if parts else "request"


def _fail(message: str, custom_id: str | None, line: int | None) -> BatchValidationError:
    return BatchValidationError(f"{_where(custom_id, line)}: {message}", custom_id=custom_id, line=line)


def check_custom_id(custom_id: object, line: int | None = None) -> str:
    """Return `custom_id` if it is a non-empty string, else raise."""
    if not isinstance(custom_id, str):
        raise _fail(
            f"custom_id must be a string, got {type(custom_id).__name__} {custom_id!r}; pass str(...) of it",
            None,
            line,
        )
    if not custom_id:
        raise _fail("custom_id is empty; give each request a non-empty unique id", None, line)
    return custom_id


def check_endpoint(url: object, custom_id: str | None = None, line: int | None = None) -> str:
    """Return `url` if it is a Batch API endpoint, else raise naming the accepted ones."""
    if not isinstance(url, str) or url not in ENDPOINTS:
        known = ", ".join(sorted(ENDPOINTS))
        raise _fail(f"unknown endpoint {url!r}; use one of: {known}", custom_id, line)
    return url


def _check_messages(messages: object, custom_id: str | None, line: int | None) -> None:
    if not isinstance(messages, list | tuple) or not messages:
        raise _fail(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}",
            custom_id,
            line,
        )
    for i, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise _fail(
                f"messages[{i}] must be a dict with 'role' and 'content', got {message!r:.80}",
                custom_id,
                line,
            )
        role = message.get("role")
        if role not in _ROLES:
            raise _fail(f"messages[{i}] has role {role!r}; use one of {sorted(_ROLES)}", custom_id, line)
        if "content" not in message and not (
            role == "assistant" and ("tool_calls" in message or "function_call" in message)
        ):
            raise _fail(
                f"messages[{i}] (role {role!r}) has no 'content'; add the message text", custom_id, line
            )
        content = message.get("content")
        if role in ("user", "system", "developer") and (content is None or content == "" or content == []):
            raise _fail(
                f"messages[{i}] (role {role!r}) has empty content; add the message text", custom_id, line
            )


def _check_input(value: object, name: str, custom_id: str | None, line: int | None) -> None:
    if value is None or value == "" or (isinstance(value, list | tuple) and not value):
        raise _fail(f"{name} is empty; pass a non-empty string or list", custom_id, line)


def embedding_weight(body: Mapping[str, Any]) -> int:
    """How many inputs an embeddings request carries (the service caps a batch at 50,000 in total)."""
    value = body.get("input")
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return len(value)  # a list of strings or of token lists
    return 1


def check_body(
    url: str,
    body: object,
    *,
    custom_id: str | None = None,
    line: int | None = None,
    check_models: bool = True,
) -> str:
    """Check an endpoint body and return its model; raise `BatchValidationError` on the first defect."""
    if type(body) is not dict and not isinstance(body, Mapping):
        raise _fail(f"body must be a JSON object, got {type(body).__name__}", custom_id, line)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("body has no 'model'; every batch request names its model", custom_id, line)
    if body.get("stream"):
        raise _fail("stream=True is not supported in batches; remove 'stream'", custom_id, line)
    if url == "/v1/chat/completions":
        if "messages" not in body:
            raise _fail("chat request has no 'messages'", custom_id, line)
        _check_messages(body["messages"], custom_id, line)
    elif url == "/v1/responses":
        if "input" not in body and "prompt" not in body:
            raise _fail("responses request has no 'input'", custom_id, line)
        if "input" in body:
            _check_input(body["input"], "input", custom_id, line)
    elif url in ("/v1/embeddings", "/v1/moderations"):
        _check_input(body.get("input"), "input", custom_id, line)
    elif url == "/v1/completions":
        _check_input(body.get("prompt"), "prompt", custom_id, line)
    if check_models:
        problems = model_problems(url, model, body)
        if problems:
            raise _fail(
                "; ".join(problems) + " (or pass check_models=False to skip this check)", custom_id, line
            )
    return model
