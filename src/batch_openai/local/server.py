"""`LocalBatchServer`: the local Batch API served on a free port in a background thread."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from batch_openai.local.admin import expire_batch, update_config
from batch_openai.local.app import build_app
from batch_openai.local.config import ServerConfig
from batch_openai.local.engine import Engine
from batch_openai.local.faults import FaultBoard
from batch_openai.local.mock import MockResponder
from batch_openai.local.state import ServerState
from batch_openai.local.store import Store
from batch_openai.local.strict import BodyChecker, checked, checked_async
from batch_openai.local.webhooks import Webhooks


def build_state(config: ServerConfig) -> ServerState:
    """Wire store, responder, worker and fault board for a config (the worker is not started)."""
    config.validate()
    store = Store(config.state_dir)
    if config.responder == "forward":
        from batch_openai.local.forward import Forwarder

        assert config.upstream is not None
        fwd = Forwarder(
            config.upstream,
            concurrency=config.concurrency,
            api_key=config.upstream_api_key,
            backoff_seconds=config.upstream_backoff_seconds,
        )
        respond_async = fwd.respond
        if config.checks_bodies:
            respond_async = checked_async(respond_async, BodyChecker(config))
        engine = Engine(config, store, respond_async=respond_async, close_async=fwd.aclose)
    else:
        respond = MockResponder(config.seed).respond
        if config.checks_bodies:
            respond = checked(respond, BodyChecker(config))
        engine = Engine(config, store, respond=respond)
    webhooks = Webhooks(config, config.state_dir)
    engine.on_end = webhooks.batch_ended  # batch.completed|failed|expired|cancelled deliveries
    return ServerState(config, store, engine, FaultBoard(config.seed), webhooks)


def uvicorn_config(app: Any, *, log_level: str = "warning") -> uvicorn.Config:
    """Uvicorn settings shared by the helper and the CLI (no lifespan, no access log)."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        server_header=False,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0 = a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on sockets whose proto is IPPROTO_TCP, and
    # without it every keep-alive answer waited ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # listen now, so a client that read the printed URL is never refused
    except OSError:
        sock.close()
        raise
    return sock


class LocalBatchServer:
    """A local Batch API on 127.0.0.1:<free port>, in a thread; use as a context manager."""

    def __init__(
        self,
        step_seconds: float = 0.0,
        state_dir: str | Path | None = None,
        seed: int = 0,
        api_key: str | None = None,
        responder: str = "mock",
        upstream: str | None = None,
        concurrency: int = 16,
        enqueued_token_limit: int | None = None,
        completion_window_seconds: float | None = None,
        shuffle_output: bool = False,
        line_failure_rate: float = 0.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_api_key: str | None = None,
        upstream_backoff_seconds: float = 0.25,
        models: tuple[str, ...] | list[str] = (),
        unknown_models: str = "reject",
        strict_bodies: bool | None = None,
        webhook_backoff_seconds: float = 1.0,
        webhook_max_attempts: int = 8,
    ) -> None:
        self._tmp: str | None = None
        if state_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="batch-openai-local-")
            state_dir = self._tmp
        self.config = ServerConfig(
            state_dir=Path(state_dir),
            step_seconds=step_seconds,
            seed=seed,
            api_key=api_key,
            responder=responder,
            upstream=upstream,
            upstream_api_key=upstream_api_key,
            upstream_backoff_seconds=upstream_backoff_seconds,
            concurrency=concurrency,
            enqueued_token_limit=enqueued_token_limit,
            completion_window_seconds=completion_window_seconds,
            shuffle_output=shuffle_output,
            line_failure_rate=line_failure_rate,
            models=tuple(models),
            unknown_models=unknown_models,
            strict_bodies=strict_bodies,
            webhook_backoff_seconds=webhook_backoff_seconds,
            webhook_max_attempts=webhook_max_attempts,
        )
        self.config.validate()
        self.host = host
        self.port = port
        self._state: ServerState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._faults = FaultBoard(seed)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalBatchServer:
        """Start serving (again, after `stop`, on the same port and state); returns self."""
        if self._thread is not None:
            return self
        state = build_state(self.config)
        state.faults = self._faults  # faults and stats survive a restart of the helper
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(build_app(state)))
        state.engine.start()
        failed: list[BaseException] = []

        def _serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # surfaced by start()
                failed.append(exc)
            finally:
                sock.close()

        self._thread = threading.Thread(target=_serve, name=f"batch-openai-local-{self.port}", daemon=True)
        self._thread.start()
        while not server.started and self._thread.is_alive():
            self._thread.join(0.01)
        if not server.started:
            state.engine.stop()
            self._thread = None
            raise RuntimeError(
                f"the local Batch API server did not start: {failed[0] if failed else 'unknown'}"
            )
        self._state, self._server = state, server
        return self

    def stop(self) -> None:
        """Stop serving; in-flight batches pause (they resume when started again on the same state)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        if self._state is not None:
            self._state.engine.stop()
            self._state.webhooks.stop()
        self._server = self._thread = self._state = None

    def restart(self) -> None:
        """Stop and start again on the same port and state directory, as after a crash and reboot."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the private state directory, if one was made."""
        self.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> LocalBatchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- clients -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, for `OPENAI_BASE_URL`."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`, where `/_local/` lives."""
        return f"http://{self.host}:{self.port}"

    @property
    def state_dir(self) -> Path:
        """Where files and batches are kept."""
        return self.config.state_dir

    def client(self, api_key: str | None = None, **kwargs: Any) -> Any:
        """An `openai.OpenAI` pointed at this server; extra kwargs (e.g. `max_retries`) pass through."""
        import openai

        return openai.OpenAI(
            api_key=api_key or self.config.api_key or "sk-local", base_url=self.base_url, **kwargs
        )

    def async_client(self, api_key: str | None = None, **kwargs: Any) -> Any:
        """An `openai.AsyncOpenAI` pointed at this server."""
        import openai

        return openai.AsyncOpenAI(
            api_key=api_key or self.config.api_key or "sk-local", base_url=self.base_url, **kwargs
        )

    # -- test controls -------------------------------------------------------------------------
    def add_fault(
        self,
        route: str = "*",
        kind: str = "500",
        nth: int | None = None,
        rate: float | None = None,
        times: int | None = None,
        retry_after_ms: int | None = None,
    ) -> int:
        """Inject 429/500/drop on a route ("METHOD /v1/template" or "*"); returns the rule id."""
        return self._faults.add(route, kind, nth, rate, times, retry_after_ms).id

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules with how often each matched and fired."""
        return self._faults.list()

    def stats(self) -> dict[str, int]:
        """Calls per route, e.g. `{"POST /v1/batches": 3}`."""
        return self._faults.stats()

    def reset_stats(self) -> None:
        """Zero the per-route call counters."""
        self._faults.reset_stats()

    def expire(self, batch_id: str) -> None:
        """Make a batch's 24 h window lapse now (finished lines kept, the rest `batch_expired`)."""
        if not expire_batch(self._require(), batch_id):
            raise KeyError(batch_id)

    def set_step_seconds(self, seconds: float) -> None:
        """How long each phase lasts, from now on (phases under way are shortened or lengthened)."""
        update_config(self._require(), {"step_seconds": float(seconds)})

    def set_completion_window(self, seconds: float | None) -> None:
        """The window of batches created from now on (None: OpenAI's 24 h)."""
        update_config(self._require(), {"completion_window_seconds": seconds})

    def stall_finalizing(self, seconds: float) -> None:
        """From now on, batches sit in `finalizing` this much longer than `step_seconds` (also one
        already there: lifting the stall lets it complete at once)."""
        update_config(self._require(), {"stall_finalizing_seconds": float(seconds)})

    def set_line_failure_rate(self, rate: float) -> None:
        """Fail this share of lines with a 500 in the error file, from now on."""
        update_config(self._require(), {"line_failure_rate": float(rate)})

    def add_models(self, *names: str) -> None:
        """Let the catalogue know these models too (a fine-tune, a house model), from now on."""
        update_config(self._require(), {"models": [*self.config.models, *names]})

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt so far: event_id, endpoint_id, type, attempt, status_code, error."""
        hooks = self._require().webhooks
        with hooks.lock:
            return list(hooks.attempts)

    def _require(self) -> ServerState:
        if self._state is None:
            raise RuntimeError("the server is not running: call start() or use it as a context manager")
        return self._state
