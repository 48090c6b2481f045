"""Helpers for the CLI tests: submitting through the library, checking one-line errors."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from batch_openai import BatchJob, BatchRequestBuilder
from batch_openai.local import LocalBatchServer

API_KEY = "sk-cli-test-key-0123456789"
CLI = str(Path(sys.executable).parent / "batch-openai")


def submit(
    server: LocalBatchServer, n: int = 4, *, description: str = "cli test", prefix: str = "r"
) -> BatchJob:
    """Submit `n` new chat requests (custom_ids `{prefix}{i}`) through the library.

    The content is unique per call: the library's idempotent submit would otherwise re-attach to an
    earlier batch of the same content.
    """
    token = uuid.uuid4().hex
    builder = BatchRequestBuilder()
    for i in range(n):
        message = [{"role": "user", "content": f"item {i} ({token})"}]
        builder.add(messages=message, model="gpt-4o-mini", custom_id=f"{prefix}{i}")
    return builder.submit(server.client(), description=description)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A failed command: non-zero exit, one `error:` line on stderr naming the problem, no traceback.

    Only a progress bar (`wait`) may come before the error line.
    """
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert not any(line.startswith("error") for line in lines[:-1]), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert API_KEY not in result.stderr + result.stdout
