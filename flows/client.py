"""Building the `openai` client inside a task, where the API key never becomes a parameter.

The key comes from a Prefect `Secret` block named by a parameter, or from `OPENAI_API_KEY` in the
environment or a `.env` file. The client is never passed between tasks: it cannot be hashed or
stored, and Prefect would silently stop caching the submit task (see PREFECT_NOTES). Instead each
process keeps one client per base URL and key, which every task of the process shares.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai import OpenAI

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


class MissingAPIKeyError(RuntimeError):
    """No API key was found in the Secret block, the environment or `.env`."""


def resolve_api_key(api_key_block: str | None = None) -> str:
    """The API key: from the named Prefect `Secret` block, else `OPENAI_API_KEY` (env or `.env`)."""
    if api_key_block:
        from prefect.blocks.system import Secret

        value = Secret.load(api_key_block).get()
        if not value:
            raise MissingAPIKeyError(f"the Prefect Secret block {api_key_block!r} is empty: set its value")
        return str(value)
    key = os.environ.get(API_KEY_ENV)
    if not key:
        from dotenv import dotenv_values

        key = dotenv_values().get(API_KEY_ENV)  # .env in the working directory, read without exporting it
    if not key:
        raise MissingAPIKeyError(
            f"no API key: set {API_KEY_ENV} (environment or .env) or pass api_key_block=<Secret block name>"
        )
    return key


def resolve_base_url(base_url: str | None = None) -> str | None:
    """The API base URL: the parameter, else `OPENAI_BASE_URL` (env or `.env`), else the SDK default."""
    if base_url:
        return base_url
    url = os.environ.get(BASE_URL_ENV)
    if not url:
        from dotenv import dotenv_values

        url = dotenv_values().get(BASE_URL_ENV)
    return url or None


_CLIENTS_KEPT = 8
_clients: OrderedDict[tuple[int, str | None, str], OpenAI] = OrderedDict()
_clients_lock = threading.Lock()


def build_client(base_url: str | None = None, api_key_block: str | None = None) -> OpenAI:
    """This process's `openai.OpenAI` client for the base URL and key; call it inside the task that needs it.

    Made once per process, base URL and key (looked up again at every call, so a new key gets a new
    client) and shared by the tasks' threads: a new client costs ~40 ms of CPU to load the CA bundle,
    and a shared one keeps its connections open between tasks.
    """
    api_key = resolve_api_key(api_key_block)
    url = resolve_base_url(base_url)
    # The key itself is never kept as a dictionary key: only its digest.
    cache_key = (os.getpid(), url, hashlib.sha256(api_key.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            from openai import OpenAI

            client = _clients[cache_key] = OpenAI(api_key=api_key, base_url=url)
            while len(_clients) > _CLIENTS_KEPT:
                _clients.popitem(last=False)  # no close(): another thread may still use it
        _clients.move_to_end(cache_key)
        return client


def check_service(base_url: str | None, api_key_block: str | None) -> None:
    """One cheap call (`GET /batches?limit=1`): the service answers and accepts the key; else a one-line
    `BatchAuthError` (the key), `BatchTransientError` (unreachable) or `ValueError` (no Batch API there)."""
    import openai

    from batch_openai import BatchAuthError, BatchTransientError

    client = build_client(base_url, api_key_block).with_options(max_retries=0, timeout=20.0)
    where = str(client.base_url).rstrip("/")
    try:
        client.batches.list(limit=1)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        source = f"the Prefect Secret block {api_key_block!r}" if api_key_block else "OPENAI_API_KEY"
        raise BatchAuthError(
            f"the Batch API at {where} refused the API key ({exc.status_code}); set a valid key in "
            f"{source} on the worker",
            status_code=exc.status_code,
        ) from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise BatchTransientError(
            f"cannot reach the Batch API at {where} ({type(cause).__name__}); check base_url (or "
            "OPENAI_BASE_URL on the worker) and that the service is up"
        ) from None
    except openai.NotFoundError:
        raise ValueError(
            f"{where} has no Batch API (404 on /batches); base_url must be the API root, e.g. "
            "https://api.openai.com/v1"
        ) from None
