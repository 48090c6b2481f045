"""What every handler shares: settings, storage, the worker and the fault board; JSON helpers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from batch_openai.local.config import ServerConfig
from batch_openai.local.engine import Engine
from batch_openai.local.errors import bad_request
from batch_openai.local.faults import FaultBoard
from batch_openai.local.store import Store
from batch_openai.local.webhooks import Webhooks


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


class ServerState:
    """What every handler needs: settings, storage, the worker and the fault board."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        engine: Engine,
        faults: FaultBoard,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.faults = faults
        self.webhooks = webhooks if webhooks is not None else Webhooks(config, store.root)


async def json_body(request: Request) -> Any:
    """The request body as JSON, or a 400 naming the problem."""
    raw = await request.body()
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. Send valid JSON.", code="invalid_json"
        ) from None
