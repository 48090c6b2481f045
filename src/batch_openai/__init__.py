"""batch-openai: run bulk LLM work through OpenAI's Batch API.

The public face of the library. Importing it is cheap: the `openai` SDK is imported only when a call needs
it, and the registry's Prefect layer only when `BatchRegistry` is first touched. The core never imports
Prefect, FastAPI or the local server; `batch_openai.records`, `batch_openai.tokens` and
`batch_openai.lifecycle` and `batch_openai.storage` (paths or URLs) are its other public modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_openai._builder import BatchRequestBuilder
from batch_openai._builder_submit import submit_file
from batch_openai._errors import (
    BatchAuthError,
    BatchConflictError,
    BatchJobError,
    BatchNotFoundError,
    BatchParseError,
    BatchRegistryError,
    BatchStorageError,
    BatchTimeoutError,
    BatchTransientError,
    BatchValidationError,
    OpenAIBatchError,
    redact,
)
from batch_openai._estimate import CostEstimate
from batch_openai._items import BatchResultItem, JoinedItem, Outcome, ParsedItem
from batch_openai._job import BatchJob
from batch_openai._jsonl import fingerprint_file
from batch_openai._models import MODEL_RULES, ModelRule
from batch_openai._pricing import (
    BATCH_PRICES,
    PRICES_AS_OF,
    PRICES_SOURCE,
    ModelPrice,
    cost_of,
    price_for,
    register_prices,
)
from batch_openai._queue import plan_waves
from batch_openai._result import BatchResult
from batch_openai._retry import RetryPolicy
from batch_openai._shards import Shard
from batch_openai._steps import call as retry_call
from batch_openai._submit import FINGERPRINT_KEY, find_batch_by_fingerprint
from batch_openai._usage import TokenCounts, TokenUsage

if TYPE_CHECKING:
    from batch_openai._builder_submit import async_submit_file
    from batch_openai._submit import async_find_batch_by_fingerprint
    from batch_openai.records import BatchRecord, BatchTracker

__version__ = "0.5.0.dev0"

__all__ = [
    "BATCH_PRICES",
    "FINGERPRINT_KEY",
    "MODEL_RULES",
    "PRICES_AS_OF",
    "PRICES_SOURCE",
    "BatchAuthError",
    "BatchConflictError",
    "BatchJob",
    "BatchJobError",
    "BatchNotFoundError",
    "BatchParseError",
    "BatchRecord",
    "BatchRegistry",
    "BatchRegistryError",
    "BatchRequestBuilder",
    "BatchResult",
    "BatchResultItem",
    "BatchStorageError",
    "BatchTimeoutError",
    "BatchTracker",
    "BatchTransientError",
    "BatchValidationError",
    "CostEstimate",
    "JoinedItem",
    "ModelPrice",
    "ModelRule",
    "OpenAIBatchError",
    "Outcome",
    "ParsedItem",
    "RetryPolicy",
    "Shard",
    "TokenCounts",
    "TokenUsage",
    "async_find_batch_by_fingerprint",
    "async_submit_file",
    "cost_of",
    "find_batch_by_fingerprint",
    "fingerprint_file",
    "plan_waves",
    "price_for",
    "redact",
    "register_prices",
    "retry_call",
    "submit_file",
]

_LAZY = {
    # The one upward reference in the core: `BatchRegistry` belongs to the Prefect layer (it writes Prefect
    # Variables). It is a module *name* that importlib resolves on first use, never an import statement, so
    # `import batch_openai` loads no Prefect and the import-linter contracts see no core -> flows import.
    "BatchRegistry": "batch_openai.flows.registry",
    "BatchRecord": "batch_openai.records",
    "BatchTracker": "batch_openai.records",
    "async_submit_file": "batch_openai._builder_submit",
    "async_find_batch_by_fingerprint": "batch_openai._submit",
}


def __getattr__(name: str) -> Any:
    """Load the registry (its Prefect layer), its record types and the async helpers only when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batch_openai' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
