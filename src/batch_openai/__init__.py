"""batch-openai: run bulk LLM work through OpenAI's Batch API.

The public face of the library. Importing it is cheap: the `openai` SDK is imported only when a call needs
it, and the registry (which uses Prefect) only when `BatchRegistry` / `BatchRecord` are first touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_openai._builder import BatchRequestBuilder
from batch_openai._errors import (
    BatchAuthError,
    BatchConflictError,
    BatchJobError,
    BatchNotFoundError,
    BatchParseError,
    BatchTimeoutError,
    BatchTransientError,
    BatchValidationError,
    OpenAIBatchError,
)
from batch_openai._items import BatchResultItem, JoinedItem, Outcome, ParsedItem
from batch_openai._job import BatchJob
from batch_openai._jsonl import fingerprint_file
from batch_openai._models import MODEL_RULES, ModelRule
from batch_openai._result import BatchResult
from batch_openai._retry import RetryPolicy
from batch_openai._shards import Shard
from batch_openai._submit import FINGERPRINT_KEY, find_batch_by_fingerprint, submit_file

if TYPE_CHECKING:
    from batch_openai._async import async_find_batch_by_fingerprint, async_submit_file
    from batch_openai._registry import BatchRecord, BatchRegistry

__version__ = "0.5.0.dev0"

__all__ = [
    "FINGERPRINT_KEY",
    "MODEL_RULES",
    "BatchAuthError",
    "BatchConflictError",
    "BatchJob",
    "BatchJobError",
    "BatchNotFoundError",
    "BatchParseError",
    "BatchRecord",
    "BatchRegistry",
    "BatchRequestBuilder",
    "BatchResult",
    "BatchResultItem",
    "BatchTimeoutError",
    "BatchTransientError",
    "BatchValidationError",
    "JoinedItem",
    "ModelRule",
    "OpenAIBatchError",
    "Outcome",
    "ParsedItem",
    "RetryPolicy",
    "Shard",
    "async_find_batch_by_fingerprint",
    "async_submit_file",
    "find_batch_by_fingerprint",
    "fingerprint_file",
    "submit_file",
]

_LAZY = {
    "BatchRegistry": "batch_openai._registry",
    "BatchRecord": "batch_openai._registry",
    "async_submit_file": "batch_openai._async",
    "async_find_batch_by_fingerprint": "batch_openai._async",
}


def __getattr__(name: str) -> Any:
    """Load the registry shim (Prefect) and the async helpers only when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batch_openai' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
