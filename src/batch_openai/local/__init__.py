"""A faithful local OpenAI Batch API server (FastAPI + uvicorn) for tests, demos and dry runs.

`LocalBatchServer` serves it in a thread; `batch-openai local serve` runs it as a process.
The names below are loaded on first use (module `__getattr__`), so importing a light submodule such as
`batch_openai.local.config` does not pull in FastAPI and uvicorn. The server imports the core only
(its token estimate is `batch_openai.tokens`); nothing in the core imports the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch_openai.local.config import ServerConfig
    from batch_openai.local.mock import MockResponder
    from batch_openai.local.server import LocalBatchServer

__all__ = ["LocalBatchServer", "MockResponder", "ServerConfig"]

_WHERE = {
    "LocalBatchServer": "batch_openai.local.server",
    "MockResponder": "batch_openai.local.mock",
    "ServerConfig": "batch_openai.local.config",
}


def __getattr__(name: str) -> Any:
    """Import `LocalBatchServer`, `MockResponder` or `ServerConfig` when first asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
