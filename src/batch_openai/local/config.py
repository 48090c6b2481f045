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
    #: Check each line's body against OpenAI's request schemas (None: yes for mock, no for forward,
    #: whose upstream decides what it accepts).
    strict_bodies: bool | None = None
    #: Models the catalogue knows beyond those OpenAI's spec names (e.g. a fine-tune or a house model).
    models: tuple[str, ...] = ()
    #: "reject": a model the catalogue does not know gets OpenAI's 404 model_not_found; "accept": run it.
    unknown_models: str = "reject"
    #: Webhook deliveries: first retry after this many seconds, doubling; at most this many attempts.
    webhook_backoff_seconds: float = 1.0
    webhook_max_attempts: int = 8
    #: Deliver webhooks to hosts other than 127.0.0.1 / localhost / ::1 (off: tests never leave the machine).
    webhook_allow_remote: bool = False

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
        if self.unknown_models not in ("reject", "accept"):
            raise ValueError(f"unknown_models must be 'reject' or 'accept', not {self.unknown_models!r}")

    @property
    def checks_bodies(self) -> bool:
        """Whether lines are checked against OpenAI's request schemas before they are answered."""
        return self.responder == "mock" if self.strict_bodies is None else self.strict_bodies

    @property
    def window_seconds(self) -> float:
        """Seconds a batch has before it expires."""
        return self.completion_window_seconds or float(DAY_SECONDS)
