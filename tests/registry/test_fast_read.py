"""Read-only calls read a local Prefect database directly: same answers as the API, no Prefect start-up."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batch_openai import BatchRegistry
from batch_openai.flows.registry import target_from_prefect_settings
from batch_openai.records import UnreadableDatabase, read_all, resolve_target

VENV_BIN = Path(sys.executable).parent


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
    env.update(extra)
    return env


@pytest.fixture
def seeded(home_registry: BatchRegistry) -> BatchRegistry:
    with home_registry:
        for i, status in enumerate(["completed", "in_progress", "failed"]):
            home_registry.track_batch(
                {
                    "id": f"batch_fast{i}_{'x' * 30}",
                    "input_file_id": f"file-{i}",
                    "endpoint": "/v1/embeddings",
                    "status": status,
                    "created_at": 1_700_000_000 + i,
                    "metadata": {"description": f"fast path {i} — ünïcode"},
                    "request_counts": {
                        "total": 5,
                        "completed": 5 if status == "completed" else 1,
                        "failed": 0,
                    },
                }
            )
    return home_registry


def _records_json(registry: BatchRegistry) -> list[dict[str, Any]]:
    from batch_openai.cli._batches_io import record_json

    return json.loads(json.dumps([record_json(r) for r in registry.list()]))


def test_a_fresh_process_lists_without_importing_prefect(seeded: BatchRegistry, ephemeral_home: Path) -> None:
    code = (
        "import json, sys\n"
        "from batch_openai import BatchRegistry\n"
        "from batch_openai.cli._batches_io import record_json\n"
        f"records = BatchRegistry({str(ephemeral_home)!r}).list()\n"
        "print(json.dumps({'records': [record_json(r) for r in records],"
        " 'prefect_loaded': 'prefect' in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True
    )
    answer = json.loads(out.stdout)
    assert answer["prefect_loaded"] is False
    assert answer["records"] == _records_json(seeded)  # the direct read equals what the API path wrote
    assert [r["batch_id"][:11] for r in answer["records"]] == ["batch_fast2", "batch_fast1", "batch_fast0"]

    # The default registry (no path) on Prefect's own home takes the same path.
    default = code.replace(f"BatchRegistry({str(ephemeral_home)!r})", "BatchRegistry()")
    env = _clean_env(PREFECT_HOME=str(ephemeral_home))
    out = subprocess.run([sys.executable, "-c", default], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == answer


def test_cli_list_reads_the_registry_home_and_the_default_prefect_home(
    seeded: BatchRegistry, ephemeral_home: Path
) -> None:
    expected = _records_json(seeded)
    explicit = subprocess.run(
        [str(VENV_BIN / "batch-openai"), "--registry", str(ephemeral_home), "list", "--json"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(explicit.stdout) == expected
    # No --registry and no PREFECT_API_URL: Prefect's own home is the registry (what flows use).
    default = subprocess.run(
        [str(VENV_BIN / "batch-openai"), "list", "--status", "in_progress"],
        env=_clean_env(PREFECT_HOME=str(ephemeral_home), COLUMNS="60"),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = default.stdout.splitlines()
    assert lines[0].split() == ["BATCH", "ID", "STATUS", "REQUESTS", "AGE", "DESCRIPTION"]
    assert len(lines) == 2 and lines[1].split()[:3] == [expected[1]["batch_id"], "in_progress", "1/5"]
    assert "fast path 1 — ünïcode" in lines[1]  # piped output is never cut to the terminal width


def test_a_database_of_another_shape_is_refused_not_misread(tmp_path: Path) -> None:
    db = tmp_path / "prefect.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE variable (name TEXT)")
    with pytest.raises(UnreadableDatabase):
        read_all(db)
    assert read_all(tmp_path / "absent.db") == []  # never written: nothing tracked yet


@pytest.mark.parametrize(
    "scenario",
    ["defaults", "env_api_url", "profile_api_url", "env_profile_choice", "env_database_url"],
)
def test_the_small_settings_reader_agrees_with_prefect(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings.models.root import Settings

    for key in list(os.environ):
        if key.startswith("PREFECT_") or key == "OPENAI_BATCH_REGISTRY":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(home))
    profiles = '[profiles.ephemeral]\n[profiles.remote]\nPREFECT_API_URL = "http://10.9.8.7:4200/api"\n'
    if scenario == "env_api_url":
        monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    elif scenario == "profile_api_url":
        (home / "profiles.toml").write_text('active = "remote"\n' + profiles)
    elif scenario == "env_profile_choice":
        (home / "profiles.toml").write_text('active = "remote"\n' + profiles)
        monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    elif scenario == "env_database_url":
        monkeypatch.setenv(
            "PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path}/other.db"
        )

    ours = resolve_target(None, fallback=target_from_prefect_settings)
    theirs = Settings()
    url = theirs.server.database.connection_url
    assert ours.api_url == (theirs.api.url or None)
    assert ours.sqlite_path == Path(url.get_secret_value().split(":///", 1)[1])
