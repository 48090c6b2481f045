"""Settings of one local Batch API server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Endpoints a batch may target (the SDK's list); the mock answers the first five.
BATCH_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_EMBEDDING_INPUTS = 50_000
DAY_SECONDS = 86_400


@dataclass
class ServerConfig:
    """Everything that shapes the server's behaviour; mirrors `batch-openai local serve` flags."""

    state_dir: Path
    step_seconds: float = 1.0
    seed: int = 0
    api_key: str | None = field(default=None, repr=False)
    responder: str = "mock"
    upstream: str | None = None
    upstream_api_key: str | None = field(default=None, repr=False)
    concurrency: int = 16
    enqueued_token_limit: int | None = None
    completion_window_seconds: float | None = None
    shuffle_output: bool = False
    line_failure_rate: float = 0.0
    stall_finalizing_seconds: float = 0.0
    upstream_backoff_seconds: float = 0.25
    max_lines: int = MAX_LINES
    max_bytes: int = MAX_BYTES

    def validate(self) -> None:
        """Reject impossible settings with a message that names the fix."""
        if self.responder not in ("mock", "forward"):
            raise ValueError(f"responder must be 'mock' or 'forward', not {self.responder!r}")
        if self.responder == "forward" and not self.upstream:
            raise ValueError("responder 'forward' needs an upstream base URL (e.g. http://127.0.0.1:8000/v1)")
        if self.step_seconds < 0:
            raise ValueError("step_seconds must be >= 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if not 0.0 <= self.line_failure_rate <= 1.0:
            raise ValueError("line_failure_rate must be within 0..1")
        if self.enqueued_token_limit is not None and self.enqueued_token_limit < 1:
            raise ValueError("enqueued_token_limit must be a positive number of tokens")
        if self.completion_window_seconds is not None and self.completion_window_seconds <= 0:
            raise ValueError("completion_window_seconds must be > 0")

    @property
    def window_seconds(self) -> float:
        """Seconds a batch has before it expires."""
        return self.completion_window_seconds or float(DAY_SECONDS)
