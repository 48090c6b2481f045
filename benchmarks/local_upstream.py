"""A tiny OpenAI-compatible upstream on loopback that answers `/v1/chat/completions` after a delay.

Raw asyncio HTTP/1.1 with keep-alive, so the upstream costs little CPU and the benchmark measures
the forwarder. Run: `python benchmarks/local_upstream.py --port 0 --delay-ms 50` (prints its base URL).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

import orjson

_counter = itertools.count()


def _answer(body: bytes) -> bytes:
    try:
        model = orjson.loads(body).get("model", "upstream-model")
    except orjson.JSONDecodeError:
        return b""
    return orjson.dumps(
        {
            "id": f"chatcmpl-up{next(_counter)}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "upstream says hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }
    )


class _Upstream(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < head_end + 4 + length:
                return
            body = self.buf[head_end + 4 : head_end + 4 + length]
            self.buf = self.buf[head_end + 4 + length :]
            payload = _answer(body)
            status = b"200 OK" if payload else b"400 Bad Request"
            payload = payload or b'{"error":{"message":"bad json","type":"invalid_request_error"}}'
            response = (
                b"HTTP/1.1 "
                + status
                + b"\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            asyncio.get_running_loop().call_later(self.delay, self._write, response)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int, delay_ms: float, ready: asyncio.Future[int] | None = None) -> None:
    """Serve on 127.0.0.1:port (0 = free port) until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Upstream(delay_ms / 1000), "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    print(f"http://127.0.0.1:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay_ms))


if __name__ == "__main__":
    main()
