"""The whole suite's isolation and clean-up: an own Prefect home, and nothing left running afterwards.

- Every test process gets a Prefect home of its own under one session directory (one per pytest-xdist
  worker), so no test reads or starts the user's `~/.prefect` or its batch-openai Prefect server, and no
  user's `PREFECT_API_URL` / profile leaks in.
- Whatever the tests start in the background — the harness's Prefect server, e2e workers and
  `batch-openai local serve`, an embedded Prefect server a `batch-openai` subprocess started in some test
  home — is stopped at the end of the session, also after Ctrl-C, and SIGTERM is turned into Ctrl-C so
  it is too. The pids of tracked children are written under the session directory, so the xdist
  controller stops what a crashed worker left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

_ROOT_ENV = "BATCH_OPENAI_TEST_ROOT"
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")

if _ROOT_ENV not in os.environ:  # the controller (or a plain run): workers inherit it
    os.environ[_ROOT_ENV] = tempfile.mkdtemp(prefix="batch-openai-tests-")
ROOT = Path(os.environ[_ROOT_ENV])
HOME = ROOT / f"prefect-home-{_WORKER or 'main'}"
HOME.mkdir(parents=True, exist_ok=True)
for _key in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_API_KEY", "OPENAI_BATCH_REGISTRY"):
    os.environ.pop(_key, None)
os.environ["PREFECT_HOME"] = str(HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

sys.path.insert(0, str(Path(__file__).resolve().parent / "flows"))


def _stop_embedded_servers(*dirs: Path) -> None:
    """Stop every batch-openai embedded Prefect server whose state file lies under `dirs`."""
    from batch_openai.flows import embedded

    for base in dirs:
        if not base.is_dir():
            continue
        for state in base.rglob(embedded.STATE_NAME):
            with contextlib.suppress(Exception):
                embedded.stop(state.parent)


def _stop_recorded_pids() -> None:
    """Stop the process groups of children recorded under the session directory (any worker's)."""
    pids = ROOT / "pids"
    if not pids.is_dir():
        return
    for entry in pids.iterdir():
        with contextlib.suppress(ValueError, OSError):
            pid = int(entry.name)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"prefect" in cmdline or b"batch-openai" in cmdline or b"batch_openai" in cmdline:
                os.killpg(pid, signal.SIGTERM)
        entry.unlink(missing_ok=True)


def _clean_up(basetemp: Path | None = None) -> None:
    from flows_harness import reap

    reap()
    _stop_embedded_servers(HOME, *([basetemp] if basetemp else []))
    if _WORKER is None:  # the controller: also what any worker left
        _stop_recorded_pids()
        _stop_embedded_servers(ROOT)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so pytest unwinds: fixtures' finally blocks, then pytest_sessionfinish


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM into Ctrl-C in the main thread (clean-up runs either way)."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, _sigterm)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop everything the session left running (also runs after Ctrl-C)."""
    basetemp = None
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        with contextlib.suppress(Exception):
            basetemp = factory.getbasetemp()
    _clean_up(basetemp)
