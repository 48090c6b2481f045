"""The embedded Prefect default's rules that need no server: modes, start-up limit, stale state files.

Starting, reusing and stopping the real server is covered end to end by tests/docs/test_demo_cli.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from batch_openai.flows import embedded


def test_modes_and_the_generous_start_up_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(embedded.MODE_ENV, raising=False)
    assert embedded.mode() == "auto"
    for raw, want in (("reuse", "reuse"), ("off", "off"), ("0", "off"), ("ephemeral", "off")):
        monkeypatch.setenv(embedded.MODE_ENV, raw)
        assert embedded.mode() == want
    monkeypatch.setenv(embedded.MODE_ENV, "sometimes")
    with pytest.raises(ValueError, match="auto, reuse or off"):
        embedded.mode()

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    assert embedded.startup_timeout() == embedded.STARTUP_TIMEOUT >= 120  # not Prefect's 20 s
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "42")
    assert embedded.startup_timeout() == 42.0  # the user's setting wins


def test_a_stale_state_file_is_dropped_and_nothing_starts_when_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = embedded.state_file(tmp_path)
    state.write_text(json.dumps({"pid": dead.pid, "port": 9, "started_at": "2026-01-01T00:00:00+00:00"}))
    assert embedded.running(tmp_path) is None and not state.exists()
    for mode in ("reuse", "off"):
        monkeypatch.setenv(embedded.MODE_ENV, mode)
        assert embedded.ensure(tmp_path) is None and not state.exists()
    assert embedded.stop(tmp_path) is None


def test_importing_the_registry_and_the_runner_starts_nothing(tmp_path: Path) -> None:
    code = (
        "import sys; import batch_openai.flows.runner, batch_openai.flows.embedded; "
        "from batch_openai import BatchRegistry; BatchRegistry; "
        "assert 'prefect' not in sys.modules, 'imported prefect'"
    )
    env = {"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not embedded.state_file(tmp_path).exists()
