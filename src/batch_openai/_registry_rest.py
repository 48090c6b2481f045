"""Reading registry records from a Prefect server's REST API with plain httpx (no `import prefect`).

`batch-openai list` against a Prefect server should not pay 1–3 s to import Prefect for two HTTP
requests. The small settings reader decides when this is safe (a plain URL, at most an API key or a
basic-auth string, no custom TLS or headers); otherwise reads use Prefect's own client. The filter
and paging are shared with that client path, so both ask the server the same question.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from batch_openai._registry_record import (
    NAME_PREFIX,
    RECORD_TAG,
    STATUS_TAG_PREFIX,
    BatchRecord,
    decode_record,
    variable_name,
)

__all__ = ["PAGE", "Post", "RestReader", "list_pages"]

PAGE = 200  # the largest page Prefect's API serves


#: Sends one `/variables/filter` body and returns the page of variables (as JSON).
Post = Callable[[dict[str, Any]], list[dict[str, Any]]]


def list_pages(post: Post, status: str | None) -> list[BatchRecord]:
    """Every record (optionally of one status), filtered by tag and sorted by the server, page by page."""
    tags = [RECORD_TAG] if status is None else [RECORD_TAG, STATUS_TAG_PREFIX + status]
    body: dict[str, Any] = {
        "variables": {"name": {"like_": NAME_PREFIX}, "tags": {"all_": tags}},
        "sort": "CREATED_DESC",
        "limit": PAGE,
    }
    records: list[BatchRecord] = []
    offset = 0
    while True:
        page = post({**body, "offset": offset})
        for item in page:
            value = item.get("value")
            if isinstance(value, dict) and "batch_id" in value:
                records.append(decode_record(value))
        if len(page) < PAGE:
            break
        offset += PAGE
    records.sort(key=lambda r: (r.created_at, r.batch_id), reverse=True)
    return records


class RestReader:
    """Read-only access to the records on a Prefect server, over plain HTTP."""

    def __init__(self, api_url: str, *, api_key: str | None = None, auth_string: str | None = None) -> None:
        import httpx

        headers = {}
        # Same precedence as Prefect's client: a basic-auth string wins over an API key.
        if auth_string:
            headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        elif api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=api_url.rstrip("/") + "/", headers=headers, timeout=30)

    def list(self, *, status: str | None = None) -> list[BatchRecord]:
        """Every record, newest first."""
        with self._http as http:

            def post(body: dict[str, Any]) -> list[dict[str, Any]]:
                response = http.post("variables/filter", json=body)
                response.raise_for_status()
                return response.json()

            return list_pages(post, status)

    def read(self, batch_id: str) -> BatchRecord | None:
        """One record, or None."""
        with self._http as http:
            response = http.get(f"variables/name/{quote(variable_name(batch_id))}")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            value = response.json().get("value")
        return decode_record(value) if isinstance(value, dict) and "batch_id" in value else None
