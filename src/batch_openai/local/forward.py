"""The `forward` responder: each batch line goes to an OpenAI-compatible upstream.

This puts a Batch API in front of servers that lack one (vLLM, Ollama, llama.cpp, LM Studio).
Concurrency is bounded by the engine's worker count and the connection pool; 429 and 5xx
answers and connection failures are retried with exponential backoff (honouring
`retry-after-ms` / `retry-after`), and whatever still fails lands in the error file with the
upstream's status code and body.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson

from batch_openai.local.http1 import HTTP1Pool, HTTPConnectionError, HTTPResponse

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class Forwarder:
    """Sends request bodies to `upstream` (a base URL like `http://127.0.0.1:8000/v1`)."""

    def __init__(
        self,
        upstream: str,
        *,
        concurrency: int = 16,
        api_key: str | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.25,
        timeout_seconds: float = 600.0,
    ) -> None:
        self.base = upstream.rstrip("/")
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._size = concurrency
        self._timeout = timeout_seconds
        self._pool: HTTP1Pool | None = None
        self._jitter = random.Random(0)
        HTTP1Pool.check_url(self.base)

    def path_for(self, endpoint: str) -> str:
        """Path of a batch endpoint below the upstream base URL (the part after `/v1`)."""
        return endpoint[3:] if endpoint.startswith("/v1/") else endpoint

    async def respond(self, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Forward one request; return the upstream's final (status, JSON body)."""
        if self._pool is None:  # made on first use, inside the engine's event loop
            self._pool = HTTP1Pool(self.base, self._size, self._headers, self._timeout)
        path = self.path_for(endpoint)
        payload = orjson.dumps(body)
        status, answer = 502, {}
        for attempt in range(self.max_attempts):
            delay = self.backoff * (2**attempt) * (0.5 + self._jitter.random())
            try:
                resp = await self._pool.post(path, payload)
            except HTTPConnectionError as exc:
                # Never reached the upstream: a gateway error, as a proxy reports it.
                status, answer = 502, _error(f"upstream unreachable: {exc}", "upstream_error", 502)
            else:
                status, answer = resp.status, _decode(resp)
                if status not in _RETRY_STATUS:
                    return status, answer
                delay = _retry_after(resp) or delay
            if attempt + 1 < self.max_attempts:
                await asyncio.sleep(delay)
        return status, answer

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._pool is not None:
            await self._pool.aclose()


def _decode(resp: HTTPResponse) -> dict[str, Any]:
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        text = resp.content[:2000].decode("utf-8", "replace")
        return _error(text or f"HTTP {resp.status}", "upstream_error", resp.status)
    if isinstance(data, dict):
        return data
    return {"data": data}


def _error(message: str, code: str, status: int) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _retry_after(resp: HTTPResponse) -> float | None:
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = resp.headers.get(header)
        if raw:
            try:
                return min(float(raw) / scale, 60.0)
            except ValueError:
                continue
    return None
