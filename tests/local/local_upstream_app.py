"""A scripted OpenAI-compatible upstream for the forwarder tests, served on loopback in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from batch_openai.local.server import bind_socket


class ScriptedUpstream:
    """Answers by the last message: 'bad' 400, 'down' 503, 'flaky' one 429 then 200, 'hang' 30 s, else 200."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.auth: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            self.auth.add(request.headers.get("authorization", ""))
            text = body["messages"][-1]["content"]
            self.attempts[text] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(30 if text == "hang" else 0.02)
            finally:
                self.in_flight -= 1
            if text == "bad":
                err = {
                    "message": "context too long",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
                return JSONResponse({"error": err}, status_code=400)
            if text == "down":
                return JSONResponse(
                    {"error": {"message": "overloaded", "type": "server_error"}}, status_code=503
                )
            if text.startswith("flaky") and self.attempts[text] == 1:
                return JSONResponse(
                    {"error": {"message": "slow down"}}, status_code=429, headers={"retry-after-ms": "10"}
                )
            answer: dict[str, Any] = {
                "id": "chatcmpl-up",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"echo {text}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
            }
            return JSONResponse(answer)

        self.app = app
        self._sock = bind_socket("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])), daemon=True
        )

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        while not self._server.started:
            self._thread.join(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
