"""The embedded default: one local Prefect server that batch-openai starts once and every later call reuses.

Prefect without `PREFECT_API_URL` starts an ephemeral server in every new process (10-40 s on a busy
2-core machine, and Prefect's 20 s limit then fails the run). Instead, the first batch-openai command,
demo, flow run or registry write that needs Prefect starts `prefect server start` on 127.0.0.1 as a
detached background process with the same Prefect home (so the same database, results and records),
and writes where it is to `$PREFECT_HOME/batch_openai_server.json` (pid, port, started_at). Every
later call in any process finds it there, checks `/api/health` (a few ms) and uses it.

- A user who set `PREFECT_API_URL` (environment or profile) gets that server; nothing is started.
- `BATCH_OPENAI_PREFECT_SERVER`: `auto` (default: reuse, else start), `reuse` (reuse a running one,
  else Prefect's ephemeral engine), `off` (always the ephemeral engine).
- Whenever the ephemeral engine is used, its start-up limit is 180 s unless
  `PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS` is set.
- `batch-openai prefect status` shows it, `batch-openai prefect stop` stops it; it logs to
  `$PREFECT_HOME/batch_openai_server.log`.

Importing this module starts nothing and does not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from batch_openai.records import Target

__all__ = [
    "MODE_ENV",
    "STARTUP_TIMEOUT",
    "EmbeddedServer",
    "default_api",
    "ensure",
    "mode",
    "running",
    "start",
    "startup_timeout",
    "state_file",
    "stop",
    "user_prefect",
]

logger = logging.getLogger("batch_openai.flows.embedded")

MODE_ENV = "BATCH_OPENAI_PREFECT_SERVER"
STATE_NAME = "batch_openai_server.json"
LOG_NAME = "batch_openai_server.log"
#: The start-up limit when the user set none: Prefect's 20 s fails on a busy 2-core machine.
STARTUP_TIMEOUT = 180.0
_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

Mode = Literal["auto", "reuse", "off"]


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the embedded Prefect server is: its process, port and Prefect home."""

    pid: int
    port: int
    started_at: str
    home: str

    @property
    def url(self) -> str:
        """The server's root URL (the Prefect UI)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for `PREFECT_API_URL`."""
        return f"{self.url}/api"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return Path(self.home) / LOG_NAME


def mode() -> Mode:
    """`BATCH_OPENAI_PREFECT_SERVER`: auto (default), reuse or off."""
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value in ("0", "false", "no", "ephemeral"):
        value = "off"
    if value not in ("auto", "reuse", "off"):
        raise ValueError(f"{MODE_ENV}={value!r}: use auto, reuse or off")
    return value  # type: ignore[return-value]


def startup_timeout() -> float:
    """Seconds a Prefect server may take to start: the user's setting, else `STARTUP_TIMEOUT`."""
    raw = os.environ.get(_TIMEOUT_ENV)
    if raw:
        with contextlib.suppress(ValueError):
            return float(raw)
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if "startup_timeout_seconds" in settings.server.ephemeral.model_fields_set:
            return float(settings.server.ephemeral.startup_timeout_seconds)
    return STARTUP_TIMEOUT


def state_file(home: Path) -> Path:
    """Where a Prefect home records its embedded server."""
    return Path(home).expanduser() / STATE_NAME


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited: reap it
            return False
    return pid_alive(pid)


def _healthy(port: int, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _read_state(home: Path) -> EmbeddedServer | None:
    try:
        data = json.loads(state_file(home).read_text())
        return EmbeddedServer(
            pid=int(data["pid"]), port=int(data["port"]), started_at=str(data["started_at"]), home=str(home)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(home: Path) -> EmbeddedServer | None:
    """The embedded server of `home` if it is up and healthy (a stale state file is removed)."""
    home = Path(home).expanduser()
    server = _read_state(home)
    if server is None:
        return None
    if not _alive(server.pid):
        state_file(home).unlink(missing_ok=True)
        return None
    # Alive but not (yet) healthy: starting, or wedged. Give a starting one a moment.
    for _ in range(3):
        if _healthy(server.port):
            return server
        time.sleep(0.5)
    return None


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One starter per home at a time, across processes (the second waits, then reuses)."""
    import fcntl

    home.mkdir(parents=True, exist_ok=True)
    with open(home / "batch_openai_server.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(home: Path, *, timeout: float | None = None) -> EmbeddedServer:
    """Start the embedded server of `home` (or return the one already running); waits until healthy."""
    home = Path(home).expanduser().resolve()
    with _home_lock(home):
        server = running(home)
        if server is not None:
            return server
        stale = _read_state(home)
        if stale is not None and _alive(stale.pid):
            _terminate(stale.pid)  # alive but never healthy: replace it
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_PROFILE")}
        env["PREFECT_HOME"] = str(home)
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        log = open(home / LOG_NAME, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped by the terminal's Ctrl-C: it outlives this command
                cwd=str(home),
            )
        finally:
            log.close()
        server = EmbeddedServer(
            pid=proc.pid,
            port=port,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            home=str(home),
        )
        state_file(home).write_text(json.dumps({**asdict(server), "api_url": server.api_url}, indent=2))
        limit = startup_timeout() if timeout is None else timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                state_file(home).unlink(missing_ok=True)
                tail = (home / LOG_NAME).read_text(errors="replace")[-1500:]
                raise RuntimeError(
                    f"the local Prefect server exited at start-up (log {home / LOG_NAME}): {tail}"
                )
            if _healthy(port, timeout=1.0):
                return server
            time.sleep(0.25)
        _terminate(proc.pid)
        state_file(home).unlink(missing_ok=True)
        raise RuntimeError(
            f"the local Prefect server did not answer within {limit:.0f} s (log {home / LOG_NAME}); raise "
            f"{_TIMEOUT_ENV}, or run `prefect server start` yourself and set PREFECT_API_URL"
        )


def _terminate(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there after `grace`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def stop(home: Path) -> EmbeddedServer | None:
    """Stop the embedded server of `home`; returns what was stopped (None if nothing was running)."""
    home = Path(home).expanduser()
    server = _read_state(home)
    if server is not None and _alive(server.pid):
        _terminate(server.pid)
    else:
        server = None
    state_file(home).unlink(missing_ok=True)
    return server


def ensure(home: Path, *, start_if_needed: bool | None = None) -> EmbeddedServer | None:
    """The embedded server of `home`: reused if running, else started (mode `auto`); None: ephemeral."""
    current = mode()
    if current == "off":
        return None
    server = running(home)
    if server is not None:
        return server
    if start_if_needed is False or (start_if_needed is None and current != "auto"):
        return None
    server = start(home)
    logger.warning(
        "batch-openai started a local Prefect server for %s: UI %s (pid %d, log %s). It keeps running so "
        "later commands skip Prefect's start-up; `batch-openai prefect stop` stops it.",
        home,
        server.url,
        server.pid,
        server.log,
    )
    return server


def target_from_prefect_settings() -> Target:
    """Where Prefect's own settings put the registry (slow: imports Prefect); see `records.resolve_target`."""
    from prefect.settings import get_current_settings

    from batch_openai.records import Target, sqlite_file

    settings = get_current_settings()
    url = settings.server.database.connection_url
    return Target(
        api_url=settings.api.url or None,
        home=Path(settings.home),
        sqlite_path=sqlite_file(url.get_secret_value() if url is not None else None),
    )


def user_prefect() -> tuple[str | None, Path]:
    """The API URL the user's Prefect settings name (None if none), and the Prefect home."""
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        return settings.api.url or None, Path(settings.home)
    from batch_openai.records import legacy_env_path, resolve_target

    # `$OPENAI_BATCH_REGISTRY` names a registry home, not the flows' Prefect: ask Prefect then.
    if legacy_env_path() is not None:
        target = target_from_prefect_settings()
    else:
        target = resolve_target(None, fallback=target_from_prefect_settings)
    return target.api_url, Path(target.home) if target.home else Path("~/.prefect").expanduser()


@contextlib.contextmanager
def default_api() -> Iterator[str | None]:
    """Prefect, for the block, as batch-openai's entry points want it; yields the API URL (None: ephemeral).

    The user's `PREFECT_API_URL` when set; else the embedded server (reused, or started in mode `auto`);
    else Prefect's ephemeral engine with a generous start-up limit. Imports Prefect's settings.
    """
    api_url, home = user_prefect()
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if api_url:
        yield api_url
        return
    server = ensure(home)
    if server is not None:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
        return
    with temporary_settings(updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: startup_timeout()}):
        yield None
