"""`import batch_openai` stays light, and the public face matches the contract."""

from __future__ import annotations

import subprocess
import sys

import batch_openai

CONTRACT = {
    "BatchRequestBuilder",
    "BatchJob",
    "BatchResult",
    "BatchResultItem",
    "JoinedItem",
    "BatchRegistry",
    "BatchRecord",
    "OpenAIBatchError",
    "BatchJobError",
    "BatchTransientError",
    "BatchAuthError",
    "BatchValidationError",
    "BatchParseError",
    "Outcome",
    "Shard",
    "RetryPolicy",
    "submit_file",
    "fingerprint_file",
    "find_batch_by_fingerprint",
}


def test_import_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, batch_openai\n"
        "heavy = [m for m in ('prefect', 'pandas', 'fastapi', 'openai', 'pydantic', 'uvicorn', 'asyncio')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_public_names() -> None:
    assert set(batch_openai.__all__) >= CONTRACT
    for name in batch_openai.__all__:
        assert getattr(batch_openai, name) is not None
    assert issubclass(batch_openai.BatchTransientError, batch_openai.OpenAIBatchError)
    assert [o.value for o in batch_openai.Outcome] == [
        "succeeded",
        "failed",
        "expired",
        "cancelled",
        "missing",
    ]
