"""A faithful local OpenAI Batch API server (FastAPI + uvicorn) for tests, demos and dry runs.

`LocalBatchServer` serves it in a thread; `batch-openai local serve` runs it as a process.
"""

from batch_openai.local.config import ServerConfig
from batch_openai.local.mock import MockResponder
from batch_openai.local.server import LocalBatchServer

__all__ = ["LocalBatchServer", "MockResponder", "ServerConfig"]
