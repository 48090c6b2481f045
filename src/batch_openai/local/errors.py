"""OpenAI's error envelope, raised by handlers and rendered by the app."""

from __future__ import annotations

from typing import Any

import orjson


class APIError(Exception):
    """An HTTP error answered in OpenAI's `{"error": {...}}` envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON body of the envelope."""
        return error_body(self.message, type=self.type, code=self.code, param=self.param)


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> bytes:
    """Serialise one error envelope."""
    payload: dict[str, Any] = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return orjson.dumps(payload)


def bad_request(message: str, *, code: str | None = "invalid_request", param: str | None = None) -> APIError:
    """A 400 with OpenAI's `invalid_request_error` type."""
    return APIError(400, message, code=code, param=param)


def not_found(kind: str, object_id: str) -> APIError:
    """A 404 for an unknown object id."""
    return APIError(404, f"No such {kind}: '{object_id}'.", code=None, param="id")
