"""The whole suite's isolation and clean-up: an own Prefect home, and nothing left running afterwards.

- Every test process gets a Prefect home of its own under one session directory (one per pytest-xdist
  worker), so no test reads or starts the user's `~/.prefect` or its batch-openai Prefect server, and no
  user's `PREFECT_API_URL` / profile leaks in.
- Whatever the tests start in the background — the harness's Prefect server, e2e workers and
  `batch-openai local serve`, an embedded Prefect server a `batch-openai` subprocess started in some test
  home — is stopped at the end of the session, also after Ctrl-C, and SIGTERM is turned into Ctrl-C so
  it is too. The pids of tracked children are written under the session directory, so the xdist
  controller stops what a crashed worker left.
- Compiled bytecode comes with the install (`[tool.uv] compile-bytecode = true` in pyproject.toml), so
  the suite's many Prefect-importing processes never compile Prefect again, also where
  `PYTHONDONTWRITEBYTECODE` is set, just as a user's commands never do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def _send_pending_prefect_logs() -> None:
    """Send the logs and events this process still queues for the Prefect API, before its servers stop:
    queued after, Prefect retries them against a closed port for about a minute when the process exits."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            service.drain_all(timeout=5)


def _clean_up(basetemp: Path | None = None) -> None:
    from flows_harness import reap

    _send_pending_prefect_logs()
    reap()
    if "batch_openai.flows.registry_store" in sys.modules:  # the registry homes' ephemeral engines
        with contextlib.suppress(Exception):
            sys.modules["batch_openai.flows.registry_store"].stop_servers()
    _stop_embedded_servers(HOME, *([basetemp] if basetemp else []))
    if _WORKER is None:  # the controller: also what any worker left
        _stop_recorded_pids()
        _stop_embedded_servers(ROOT)


# Scheduling for `--dist loadfile` (the addopts): whole files per worker, as xdist does, but
# - files that share an expensive per-process fixture form one unit, so it starts once, not on both
#   workers: the registry home's ephemeral engine (a Prefect server of its own, ~15 CPU-seconds);
# - the long units go first (the longest known ones in _LONG_FIRST's order, then the others by number of
#   tests, xdist's own order), so no long file starts last while the other worker sits idle.
_SHARED_UNITS = {
    "tests/registry/": "tests/registry/",
    "tests/library/test_registry_hook.py": "tests/registry/",
}
_LONG_FIRST = (  # by their time in the default run (clean clone, 2 cores), longest first
    "tests/registry/",
    "tests/cli/test_cli.py",
    "tests/flows/test_flow_run.py",
    "tests/robustness/test_robust_faults.py",
    "tests/examples/test_examples_run.py",
    "tests/e2e/",
    "tests/storage/test_storage_flow.py",
    "tests/docs/test_demo_cli.py",
    "tests/cli/test_run_template.py",
    "tests/flows/test_flow_story.py",
    "tests/robustness/test_robust_secrets.py",
    "tests/robustness/test_robust_bad_input.py",
    "tests/robustness/test_robust_crash_matrix.py",
    "tests/local/test_server_lifecycle.py",
    "tests/flows/test_flow_crash.py",
    "tests/local/test_restart.py",
    "tests/library/test_lifecycle.py",
    "tests/flows/test_flow_reuse.py",
)


def _unit_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    for prefix, unit in _SHARED_UNITS.items():
        if path.startswith(prefix):
            return unit
    return path


def _rank(unit: str) -> int:
    for i, prefix in enumerate(_LONG_FIRST):
        if unit.startswith(prefix):
            return i
    return len(_LONG_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` with the shared units and the long-first order above; other modes: xdist's."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SuiteScheduling(LoadFileScheduling):
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return _unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the first assignment: the queue is complete, order it once
                self._ordered = True
                units = sorted(self.workqueue.items(), key=lambda item: _rank(item[0]))  # stable
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return SuiteScheduling(config, log)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so pytest unwinds: fixtures' finally blocks, then pytest_sessionfinish


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow-size",
        type=float,
        default=1.0,
        metavar="FRACTION",
        help="scale the sized `slow` tests (request counts, shard sizes) by FRACTION; CI runs them at 0.25",
    )


@pytest.fixture(scope="session")
def slow_size(request: pytest.FixtureRequest) -> Any:
    """`slow_size(n)`: a slow test's full size `n` scaled by --slow-size (at least 1)."""
    fraction = float(request.config.getoption("--slow-size"))
    if fraction <= 0:
        raise pytest.UsageError("--slow-size must be above 0")
    return lambda n: max(1, round(n * fraction))


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
