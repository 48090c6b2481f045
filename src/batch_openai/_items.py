"""One result line: `BatchResultItem`, its `Outcome`, and the rules that read a batch output/error line.

Items are small `__slots__` objects: the outcome, ids, error and content are read once when the line is
decoded; the full response body stays as the line's bytes and is decoded again only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import orjson

__all__ = ["INVALID_LINE", "BatchResultItem", "JoinedItem", "Outcome", "ParsedItem", "item_from_line"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


class Outcome(StrEnum):
    """What became of one request."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    MISSING = "missing"


_NEVER_RAN = {"batch_expired": Outcome.EXPIRED, "batch_cancelled": Outcome.CANCELLED}


def _content_of(body: dict[str, Any]) -> Any:
    """The useful payload of a response body, whatever the endpoint."""
    choices = body.get("choices")
    if type(choices) is list:
        if not choices:
            return None
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict):
            return message.get("content")
        return first.get("text")  # /v1/completions
    output = body.get("output")
    if isinstance(output, list):  # /v1/responses
        if isinstance(body.get("output_text"), str):
            return body["output_text"]
        texts = [
            part.get("text", "")
            for item in output
            if item.get("type") == "message"
            for part in item.get("content") or ()
            if part.get("type") == "output_text"
        ]
        return "".join(texts) if texts else None
    data = body.get("data")
    if isinstance(data, list) and (not data or "embedding" in data[0]):  # /v1/embeddings
        vectors = [d.get("embedding") for d in sorted(data, key=lambda d: d.get("index", 0))]
        return vectors[0] if len(vectors) == 1 else vectors
    results = body.get("results")
    if isinstance(results, list):  # /v1/moderations
        return results[0] if len(results) == 1 else results
    return None


_OBJECT_ENDPOINT = {
    "chat.completion": "/v1/chat/completions",
    "response": "/v1/responses",
    "text_completion": "/v1/completions",
    "list": "/v1/embeddings",
}


def _endpoint_of(body: dict[str, Any]) -> str | None:
    found = _OBJECT_ENDPOINT.get(body.get("object"))  # type: ignore[arg-type]
    return found or ("/v1/moderations" if "results" in body else None)


def _usage_of(body: Any) -> dict[str, Any] | None:
    usage = body.get("usage") if type(body) is dict else None
    return usage if type(usage) is dict else None


def _refusal_of(body: Any) -> str | None:
    try:
        return _find_refusal(body)
    except (TypeError, AttributeError):  # a body of unexpected shape has no refusal we can read
        return None


def _find_refusal(body: Any) -> str | None:
    if type(body) is not dict:
        return None
    choices = body.get("choices")
    if isinstance(choices, list) and choices:
        return (choices[0].get("message") or {}).get("refusal")
    for item in body.get("output") or ():
        for part in item.get("content") or ():
            if part.get("type") == "refusal":
                return part.get("refusal")
    return None


def _tool_calls_of(body: Any) -> list[dict[str, Any]] | None:
    try:
        return _find_tool_calls(body)
    except (TypeError, AttributeError):  # a body of unexpected shape has no tool calls we can read
        return None


def _find_tool_calls(body: Any) -> list[dict[str, Any]] | None:
    if type(body) is not dict:
        return None
    choices = body.get("choices")
    if isinstance(choices, list) and choices:
        return (choices[0].get("message") or {}).get("tool_calls") or None
    calls = [o for o in body.get("output") or () if str(o.get("type", "")).endswith("call")]
    return calls or None


class BatchResultItem:
    """The result of one request: its outcome, content, error and the raw response body."""

    __slots__ = ("_body", "_line", "content", "custom_id", "endpoint", "error", "outcome", "status_code")

    def __init__(
        self,
        custom_id: str,
        outcome: Outcome,
        content: Any = None,
        error: dict[str, Any] | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
        line: bytes | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.custom_id = custom_id
        self.outcome = outcome
        self.content = content
        self.error = error
        self.status_code = status_code
        self.endpoint = endpoint
        self._line = line
        self._body = body

    @property
    def raw_response(self) -> dict[str, Any] | None:
        """The full `response.body` dict (usage, logprobs, finish_reason ...).

        Decoded from the kept line on each access and not cached, so that summing usage over a big
        result does not pin every body in memory; keep a reference if you read it repeatedly.
        """
        if self._body is not None or self._line is None:
            return self._body
        response = orjson.loads(self._line).get("response")
        return response.get("body") if type(response) is dict else None

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.outcome is Outcome.SUCCEEDED

    @property
    def usage(self) -> dict[str, Any] | None:
        """The token usage the response reports, if any."""
        return _usage_of(self.raw_response)

    @property
    def refusal(self) -> str | None:
        """The model's refusal text (chat `message.refusal`, or a responses `refusal` part); not a failure."""
        return _refusal_of(self.raw_response)

    @property
    def tool_calls(self) -> list[dict[str, Any]] | None:
        """Tool/function calls the model asked for (chat `tool_calls` or responses `function_call` items)."""
        return _tool_calls_of(self.raw_response)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of this item (what `BatchResult.save` writes); decodes the body once."""
        body = self.raw_response
        return {
            "custom_id": self.custom_id,
            "outcome": str(self.outcome),
            "status_code": self.status_code,
            "content": self.content,
            "error": self.error,
            "refusal": _refusal_of(body),
            "tool_calls": _tool_calls_of(body),
            "usage": _usage_of(body),
            "endpoint": self.endpoint,
            "response": body,
        }

    def __repr__(self) -> str:
        shown = self.content if not isinstance(self.content, list) else f"<{len(self.content)} values>"
        return (
            f"BatchResultItem(custom_id={self.custom_id!r}, outcome={self.outcome.value!r}, "
            f"status_code={self.status_code!r}, content={shown!r:.80}, error={self.error!r:.120})"
        )


def _has_reason(error: dict[str, Any]) -> bool:
    return bool(error.get("code") or error.get("message"))


def _failure_error(status: int | None, body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and _has_reason(body["error"]):
        return body["error"]
    return {"code": f"http_{status}", "message": f"request ended with HTTP {status} and no error details"}


def _never_ran_error(error: Any) -> dict[str, Any]:
    """The line's `error` as a dict that always says why (code or message)."""
    if type(error) is not dict:
        return {"code": None, "message": str(error)}
    if not _has_reason(error):
        return {
            **error,
            "code": "unknown_error",
            "message": f"the line's error carries no reason: {error!r:.200}",
        }
    return error


# orjson.JSONDecodeError is a ValueError; the others come from fields of an unexpected type.
_UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError)
INVALID_LINE = "invalid_result_line"
"""`error["code"]` of an item made from a line that could not be read (not JSON, wrong shapes)."""


def _invalid_item(
    line: bytes, endpoint: str | None, exc: Exception, number: int | None, source: str | None
) -> BatchResultItem:
    """A `failed` item for an unreadable line; its id only when the line is an object naming one."""
    where = f"line {number} of {source}" if number is not None and source else "result line"
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = None
        reason = f"not JSON ({exc})"
    else:
        if type(obj) is not dict:
            reason = "not a JSON object"
        elif isinstance(exc, ValueError):  # raised by _read_line itself: the message is the reason
            reason = str(exc)
        else:
            reason = f"a field has an unexpected type ({type(exc).__name__}: {exc})"
    custom_id = obj.get("custom_id") if type(obj) is dict else None
    # An unusable id becomes "" (never a request's id: ids are non-empty), so it hides no expected id.
    custom_id = custom_id if type(custom_id) is str else ""
    error = {"code": INVALID_LINE, "message": f"{where}: {reason}"[:500]}
    return BatchResultItem(custom_id, Outcome.FAILED, None, error, None, endpoint)


def item_from_line(
    line: bytes, endpoint: str | None = None, *, number: int | None = None, source: str | None = None
) -> BatchResultItem:
    """Read one output- or error-file line: the outcome comes from `error` and `response.status_code`.

    A line that cannot be read (not JSON, not an object, fields of the wrong type) becomes a `failed` item
    with `error["code"] == "invalid_result_line"` naming `number` and `source`; it never raises.
    """
    try:  # inline, not a helper call: this runs once per result line, and `try` costs nothing
        obj = orjson.loads(line)
        custom_id = obj.get("custom_id")
        if type(custom_id) is not str or not custom_id:
            raise ValueError(f"no usable custom_id (got {custom_id!r:.40})")
        error = obj.get("error")
        if error:  # never ran: expired, cancelled, timed out
            error = _never_ran_error(error)
            code = error.get("code")
            outcome = _NEVER_RAN.get(code, Outcome.FAILED) if type(code) is str else Outcome.FAILED
            return BatchResultItem(custom_id, outcome, None, error, None, endpoint)
        response = obj.get("response")
        if type(response) is not dict:
            missing = {"code": "no_response", "message": "line has neither a response nor an error"}
            return BatchResultItem(custom_id, Outcome.FAILED, None, missing, None, endpoint)
        status = response.get("status_code")
        body = response.get("body")
        is_dict = type(body) is dict
        if endpoint is None and is_dict:
            endpoint = _endpoint_of(body)
        if type(status) is not int or not 200 <= status < 300:
            return BatchResultItem(
                custom_id, Outcome.FAILED, None, _failure_error(status, body), status, endpoint, line
            )
        content = _content_of(body) if is_dict else None
        return BatchResultItem(custom_id, Outcome.SUCCEEDED, content, None, status, endpoint, line)
    except _UNREADABLE as exc:
        return _invalid_item(line, endpoint, exc, number, source)


@dataclass(frozen=True, slots=True)
class JoinedItem(Generic[I]):
    """An input paired with its result (`output` is None when no result came back for it)."""

    input: I
    output: BatchResultItem | None


@dataclass(frozen=True, slots=True)
class ParsedItem(Generic[T]):
    """One item of `parse_each`: the parsed value, or the reason it could not be parsed."""

    custom_id: str
    value: T | None
    error: str | None
    item: BatchResultItem

    @property
    def ok(self) -> bool:
        """True when the value parsed."""
        return self.error is None


def validators(model: Any) -> tuple[Callable[[str], Any], Callable[[Any], Any]]:
    """(validate a JSON string, validate any content) for `model`: a Pydantic model or any type."""
    validator = getattr(model, "__pydantic_validator__", None) if hasattr(model, "model_validate") else None
    from pydantic_core import SchemaValidator

    if isinstance(validator, SchemaValidator):  # a built model: its validator, as model_validate_json calls
        validate_json, validate_python = validator.validate_json, validator.validate_python
    elif hasattr(model, "model_validate_json"):  # not built yet (forward refs): let pydantic rebuild it
        validate_json, validate_python = model.model_validate_json, model.model_validate
    else:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(model)
        validate_json, validate_python = adapter.validate_json, adapter.validate_python

    def validate(content: Any) -> Any:
        return validate_json(content) if isinstance(content, str) else validate_python(content)

    return validate_json, validate


def validator(model: Any) -> Callable[[Any], Any]:
    """Validate any content (a JSON string or decoded JSON) into `model`."""
    return validators(model)[1]
