"""Checks run on each request before anything is uploaded; each failure names the request and the fix."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from typing import Any

from batch_openai._errors import BatchValidationError
from batch_openai._models import model_problems, rejected_params
from batch_openai.spec import (
    SCHEMA_ENDPOINTS,
    RequestProblem,
    check_request,
    check_value,
    model_endpoint_problem,
    model_is_known,
    plain_chat_messages,
)

__all__ = [
    "ENDPOINTS",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS",
    "check_body",
    "check_custom_id",
    "check_endpoint",
    "check_messages",
    "check_spec",
    "embedding_weight",
    "non_finite",
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


def check_messages(messages: object, custom_id: str | None, line: int | None) -> None:
    if (type(messages) is not list and not isinstance(messages, tuple)) or not messages:
        raise _fail(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}",
            custom_id,
            line,
        )
    """Raise `BatchValidationError` unless `messages` is a non-empty list of well-formed chat messages."""
    for i, message in enumerate(messages):
        # The common case (a dict with a known role and non-empty content) costs two lookups.
        if type(message) is dict and message.get("role") in _ROLES and message.get("content"):
            continue
        _check_message(i, message, custom_id, line)
    if not plain_chat_messages(messages):  # anything beyond {role, content: str}: OpenAI's schema decides
        problem = check_value(_CHAT, "messages", messages)
        if problem is not None:
            raise _spec_error(problem, custom_id, line)


def _check_message(i: int, message: object, custom_id: str | None, line: int | None) -> None:
    if not isinstance(message, Mapping):
        raise _fail(
            f"messages[{i}] must be a dict with 'role' and 'content', got {message!r:.80}", custom_id, line
        )
    role = message.get("role")
    if role not in _ROLES:
        raise _fail(f"messages[{i}] has role {role!r}; use one of {sorted(_ROLES)}", custom_id, line)
    if "content" not in message and not (
        role == "assistant" and ("tool_calls" in message or "function_call" in message)
    ):
        raise _fail(f"messages[{i}] (role {role!r}) has no 'content'; add the message text", custom_id, line)
    content = message.get("content")
    if role in ("user", "system", "developer") and (content is None or content == "" or content == []):
        raise _fail(f"messages[{i}] (role {role!r}) has empty content; add the message text", custom_id, line)


def _check_input(value: object, name: str, custom_id: str | None, line: int | None) -> None:
    if value is None or value == "" or (isinstance(value, list | tuple) and not value):
        raise _fail(f"{name} is empty; pass a non-empty string or list", custom_id, line)


def embedding_weight(body: Mapping[str, Any]) -> int:
    """How many inputs an embeddings request carries (the service caps a batch at 50,000 in total)."""
    value = body.get("input")
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return len(value)  # a list of strings or of token lists
    return 1


def _strict_schema_problem(schema: Any, path: str = "schema") -> str | None:
    """The first rule of OpenAI's strict structured-output mode that `schema` breaks, or None."""
    if isinstance(schema, list):
        for i, sub in enumerate(schema):
            problem = _strict_schema_problem(sub, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if not isinstance(schema, Mapping):
        return None
    props = schema.get("properties")
    if schema.get("type") == "object" or isinstance(props, Mapping):
        if schema.get("additionalProperties") is not False:
            return f"{path}: strict mode needs 'additionalProperties': false on every object"
        keys = set(props or {})
        required = set(schema.get("required") or [])
        if required != keys:
            missing, unknown = sorted(keys - required), sorted(required - keys)
            detail = f"not required: {missing}" if missing else f"required but not in properties: {unknown}"
            return f"{path}: strict mode needs 'required' to list exactly the properties ({detail})"
        for name, sub in (props or {}).items():
            problem = _strict_schema_problem(sub, f"{path}.properties.{name}")
            if problem:
                return problem
    for key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
        if key in schema:
            problem = _strict_schema_problem(schema[key], f"{path}.{key}")
            if problem:
                return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            problem = _strict_schema_problem(sub, f"{path}.{key}.{name}")
            if problem:
                return problem
    return None


_SCHEMA_CACHE: dict[bytes, str | None] = {}


def strict_schema_problem(fmt: Any) -> str | None:
    """The problem with a strict `json_schema` format (chat or responses shape), or None."""
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return None
    inner = fmt.get("json_schema", fmt)  # chat nests it; responses' text.format does not
    if not isinstance(inner, Mapping) or inner.get("strict") is not True:
        return None
    import orjson

    key = orjson.dumps(inner.get("schema"), option=orjson.OPT_SORT_KEYS)
    if key not in _SCHEMA_CACHE:  # the same schema is usually sent with every request: check it once
        if len(_SCHEMA_CACHE) > 256:
            _SCHEMA_CACHE.clear()
        _SCHEMA_CACHE[key] = _strict_schema_problem(inner.get("schema"))
    return _SCHEMA_CACHE[key]


def non_finite(value: Any, path: str = "body") -> str | None:
    """Where a NaN or infinity sits in `value` (e.g. "temperature=nan"), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path.removeprefix('body.')}={value}"
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = non_finite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = non_finite(v, f"{path}[{i}]")
            if found:
                return found
    return None


#: What to do about each kind of spec problem, appended to OpenAI's own message.
_FIXES = {
    "unknown_parameter": "remove it or fix its spelling (OpenAI's API reference lists the parameters)",
    "invalid_type": "pass a value of the expected type",
    "invalid_value": "use one of the supported values",
    "missing_required_parameter": "add it",
    "empty_array": "pass at least one element",
}
_CHAT = "/v1/chat/completions"


def _fix(problem: RequestProblem) -> str:
    code = problem.code or ""
    if code in _FIXES:
        return _FIXES[code]
    if code.endswith(("_above_max_value", "_below_min_value")):
        return "use a value within the allowed range"
    if "length" in code:
        return "change its length to fit the limit"
    return "change it as the message says"


def _spec_error(problem: RequestProblem, custom_id: str | None, line: int | None) -> BatchValidationError:
    err = _fail(
        f"the service would refuse it ({problem.status}, param {problem.param!r}): {problem.message} "
        f"Fix: {_fix(problem)}.",
        custom_id,
        line,
    )
    err.param = problem.param
    return err


@functools.lru_cache(maxsize=256)
def _warn_unknown_model(url: str, model: str) -> None:
    """Warn once per model: new models appear every month, so an unknown name is not refused."""
    warnings.warn(
        f"model {model!r} is not in OpenAI's published model list (spec commit f85dbe2) for {url}; "
        "the service will answer each of its requests with a 404 model_not_found if the name is wrong",
        UserWarning,
        stacklevel=5,
    )


def check_spec(
    url: str,
    body: Mapping[str, Any],
    model: str | None,
    *,
    custom_id: str | None = None,
    line: int | None = None,
    check_models: bool = True,
) -> None:
    """Refuse what OpenAI's own request schema refuses (types, ranges, enums, unknown parameters) and a
    model used on the wrong endpoint; warn about a model the spec does not name."""
    if url not in SCHEMA_ENDPOINTS:
        return
    skip: tuple[str, ...] = ("model",) if type(model) is str else ()
    if url == _CHAT:
        skip += ("messages",)  # check_messages has run the schema on anything but plain messages
    problem = check_request(url, body, skip=skip)
    if problem is not None:
        raise _spec_error(problem, custom_id, line)
    if check_models and type(model) is str:
        problem = model_endpoint_problem(url, model)
        if problem is not None:
            raise _spec_error(problem, custom_id, line)
        if not model_is_known(model):
            _warn_unknown_model(url, model)


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
    if type(model) is not str or not model:
        raise _fail("body has no 'model'; every batch request names its model", custom_id, line)
    if body.get("stream"):
        raise _fail("stream=True is not supported in batches; remove 'stream'", custom_id, line)
    if url == "/v1/chat/completions":
        if "messages" not in body:
            raise _fail("chat request has no 'messages'", custom_id, line)
        check_messages(body["messages"], custom_id, line)
    elif url == "/v1/responses":
        if "input" not in body and "prompt" not in body:
            raise _fail("responses request has no 'input'", custom_id, line)
        if "input" in body:
            _check_input(body["input"], "input", custom_id, line)
    elif url in ("/v1/embeddings", "/v1/moderations"):
        _check_input(body.get("input"), "input", custom_id, line)
    elif url == "/v1/completions":
        _check_input(body.get("prompt"), "prompt", custom_id, line)
    fmt = body.get("response_format")
    if fmt is None and "text" in body and isinstance(body["text"], Mapping):
        fmt = body["text"].get("format")
    if fmt is not None:
        problem = strict_schema_problem(fmt)
        if problem:
            raise _fail(
                f"the strict JSON schema would be rejected by the service — {problem}; pass the Pydantic "
                "model class itself (response_format=MyModel, or text_format=MyModel for /v1/responses)",
                custom_id,
                line,
            )
    if check_models and rejected_params(url, model):
        problems = model_problems(url, model, body)
        if problems:
            raise _fail(
                "; ".join(problems) + " (or pass check_models=False to skip this check)", custom_id, line
            )
    check_spec(url, body, model, custom_id=custom_id, line=line, check_models=check_models)
    return model
