"""A lean asyncio HTTP/1.1 client with a keep-alive pool, for the forwarder's hot path.

httpx costs about 1 ms of CPU a request and its pool slows down with many connections; the
forwarder needs hundreds of small POSTs a second on 2 cores, so it speaks HTTP/1.1 directly:
one write a request, `content-length` or chunked bodies, `connection: close` honoured.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit


class HTTPConnectionError(Exception):
    """The upstream could not be reached, or closed the connection mid-answer."""


@dataclass
class HTTPResponse:
    """Status, lower-cased headers and body of one answer."""

    status: int
    headers: dict[str, str]
    content: bytes


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class HTTP1Pool:
    """At most `size` keep-alive connections to one origin."""

    def __init__(self, base_url: str, size: int, headers: dict[str, str], timeout: float) -> None:
        parts = self.check_url(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"host: {host_header}\r\n{extra}".encode("latin-1")
        self.timeout = timeout
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(size)

    @staticmethod
    def check_url(base_url: str) -> SplitResult:
        """Parse an upstream base URL, or raise ValueError saying what is wrong."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"upstream must be an http:// or https:// base URL such as http://127.0.0.1:8000/v1, "
                f"not {base_url!r}"
            )
        return parts

    async def post(self, path: str, body: bytes) -> HTTPResponse:
        """POST `body` (JSON) to prefix + path; retried once on a stale keep-alive connection."""
        async with self._slots:
            for attempt in range(2):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    resp, keep = await asyncio.wait_for(self._exchange(conn, path, body), self.timeout)
                except (OSError, asyncio.IncompleteReadError, HTTPConnectionError, TimeoutError) as exc:
                    conn.close()
                    if reused and attempt == 0 and not isinstance(exc, TimeoutError):
                        continue  # the server closed an idle connection: try a fresh one
                    raise HTTPConnectionError(f"{type(exc).__name__}: {exc}") from None
                except BaseException:
                    conn.close()  # cancelled mid-exchange: the connection's state is unknown
                    raise
                if keep:
                    self._idle.append(conn)
                else:
                    conn.close()
                return resp
        raise HTTPConnectionError("unreachable")  # pragma: no cover - the loop always returns or raises

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=1 << 24), 10.0
            )
        except (OSError, TimeoutError) as exc:
            raise HTTPConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return _Conn(reader, writer)

    async def _exchange(self, conn: _Conn, path: str, body: bytes) -> tuple[HTTPResponse, bool]:
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1")
            + self._head
            + b"content-type: application/json\r\naccept: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        conn.writer.write(request)
        reader = conn.reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise HTTPConnectionError(f"malformed status line {lines[0][:80]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(chunks)
            keep = headers.get("connection", "").lower() != "close"
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
            keep = headers.get("connection", "").lower() != "close"
        else:
            content = await reader.read()  # body ends when the server closes
            keep = False
        return HTTPResponse(status, headers, content), keep

    async def aclose(self) -> None:
        """Close idle connections."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()
