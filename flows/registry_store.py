"""The registry's Prefect storage: records as Prefect Variables, through Prefect's API.

Every write goes through here, and the reads that the core's Prefect-free paths (`batch_openai.records`:
direct SQLite, plain-HTTP REST) cannot serve.

The default registry talks to whatever Prefect's settings name (a server in `PREFECT_API_URL`, or the
process's ephemeral engine), the same way flows do, so both see one set of records. A registry with a
home of its own (`BatchRegistry(path=...)`) gets its own ephemeral server on that home's database,
started once per process and stopped at exit.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_openai.flows import embedded
from batch_openai.records import (
    BatchRecord,
    Target,
    decode_record,
    encode_record,
    id_filter,
    list_pages,
    merge_records,
    pick,
    readable_name,
    record_tags,
    variable_name,
)

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

__all__ = ["ApiStore", "stop_servers"]

_servers: dict[Path, Any] = {}
_servers_lock = threading.Lock()
_record_locks: dict[str, threading.Lock] = {}


def _lock_for(batch_id: str) -> threading.Lock:
    """The in-process lock of one record (read-merge-write must not interleave between threads)."""
    with _servers_lock:
        return _record_locks.setdefault(batch_id, threading.Lock())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _home_api_url(home: Path) -> str:
    """The API URL of this process's ephemeral server for `home`, started on first use."""
    with _servers_lock:
        server = _servers.get(home)
        if server is None or not server.running:
            from prefect.server.api.server import SubprocessASGIServer
            from prefect.settings import (
                PREFECT_HOME,
                PREFECT_SERVER_ANALYTICS_ENABLED,
                PREFECT_SERVER_DATABASE_CONNECTION_URL,
                temporary_settings,
            )

            home.mkdir(parents=True, exist_ok=True)
            updates = {
                PREFECT_HOME: str(home),
                PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{home}/prefect.db",
                PREFECT_SERVER_ANALYTICS_ENABLED: False,  # no network here, and it only logs errors
            }
            # A port of our own gives a server instance of our own (Prefect keys its singletons by port).
            with temporary_settings(updates=updates):
                server = SubprocessASGIServer(port=_free_port())
                # Prefect's 20 s default is too short on a busy 2-core machine (7–17 s measured idle).
                server.start(timeout=embedded.startup_timeout())
            _servers[home] = server
        return str(server.api_url)


def stop_servers() -> None:
    """Stop the ephemeral servers this process started for registry homes (they also stop at exit)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.stop()


def _unchanged(new: dict[str, Any], stored: Any) -> bool:
    """Whether a record's new value equals the stored one in everything but `updated_at`."""
    if not isinstance(stored, dict):
        return False
    return {**new, "updated_at": None} == {**stored, "updated_at": None}


class ApiStore:
    """Read, write and delete records as Prefect Variables through the Prefect client."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._held: SyncPrefectClient | None = None

    @contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        """A Prefect client for this store's target (the held one inside `hold()`)."""
        if self._held is not None:
            yield self._held
            return
        from prefect.client.orchestration import SyncPrefectClient, get_client

        target = self._target
        if target.explicit_home and target.home is not None:
            with SyncPrefectClient(_home_api_url(target.home)) as client:
                yield client
            return
        if not target.api_url and target.home is not None:
            # No server named: the embedded one (reused, or started once for every later process).
            server = embedded.ensure(target.home)
            if server is not None:
                with SyncPrefectClient(server.api_url) as client:
                    yield client
                return
            from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

            updates = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: embedded.startup_timeout()}
            with temporary_settings(updates=updates), get_client(sync_client=True) as client:
                yield client
            return
        with get_client(sync_client=True) as client:
            yield client

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep one client open for many operations (5–15 ms a call instead of 30–45 ms)."""
        if self._held is not None:
            yield
            return
        with self.client() as client:
            self._held = client
            try:
                yield
            finally:
                self._held = None

    @staticmethod
    def _find(client: SyncPrefectClient, batch_id: str) -> tuple[str, dict[str, Any]] | None:
        """The (name, value) of a batch's Variable: by its id tag (readable names), else its old name."""
        found = pick(client.request("POST", "/variables/filter", json=id_filter(batch_id)).json(), batch_id)
        if found is not None:
            return str(found["name"]), found["value"]
        legacy = client.read_variable_by_name(variable_name(batch_id))
        if legacy is not None and isinstance(legacy.value, dict):
            return legacy.name, legacy.value
        return None

    def read(self, batch_id: str) -> BatchRecord | None:
        """One record, or None."""
        with self.client() as client:
            found = self._find(client, batch_id)
        return None if found is None else decode_record(found[1])

    def list(self, *, status: str | None = None) -> list[BatchRecord]:
        """Every record (optionally of one status), newest first; filtered and paged by the server."""
        with self.client() as client:

            def post(body: dict[str, Any]) -> list[dict[str, Any]]:
                return client.request("POST", "/variables/filter", json=body).json()

            return list_pages(post, status)

    def put(self, record: BatchRecord, *, force_status: bool = False) -> BatchRecord:
        """Create or merge-update a record; safe when several threads or processes write the same batch.

        Writers in one process take turns (a lock per record). Across processes a write is read back:
        if another writer put an older status over ours meanwhile, ours is merged in again, so the
        most advanced observation wins (Variables offer no compare-and-set to do better).
        """
        with _lock_for(record.batch_id), self.client() as client:
            for _ in range(5):
                merged = self._write_once(client, record, force_status=force_status)
                if merged is None:
                    continue  # lost a create race: merge into the winner's record
                if force_status:
                    return merged
                stored = self._find(client, record.batch_id)
                now = decode_record(stored[1]) if stored is not None else None
                if now is not None and merge_records(now, merged).status == now.status:
                    return now
        raise RuntimeError(f"could not write the registry record of {record.batch_id!r}")

    @classmethod
    def _write_once(
        cls, client: SyncPrefectClient, record: BatchRecord, *, force_status: bool
    ) -> BatchRecord | None:
        """One read-merge-write; None when a concurrent create got there first."""
        from prefect.client.schemas.actions import VariableCreate, VariableUpdate
        from prefect.exceptions import ObjectAlreadyExists

        existing = cls._find(client, record.batch_id)
        if existing is None:
            for full_id in (False, True):  # a short name taken by another batch: the full id then
                name = readable_name(record, full_id=full_id)
                try:
                    client.create_variable(
                        VariableCreate(name=name, value=encode_record(record), tags=record_tags(record))
                    )
                    return record
                except ObjectAlreadyExists:
                    taken = client.read_variable_by_name(name)
                    value = taken.value if taken is not None else None
                    if isinstance(value, dict) and value.get("batch_id") == record.batch_id:
                        return None  # the same batch, created by a concurrent writer: merge into it
            return None
        name, value = existing
        old = decode_record(value)
        merged = merge_records(old, record, force_status=force_status)
        new_value = encode_record(merged)
        if _unchanged(new_value, value):
            # Nothing new but the time: no write. A busy server may answer a write 503 (SQLite locked),
            # and Prefect's client retries it after ~2 s; a run observes the same state several times.
            return old
        client.update_variable(VariableUpdate(name=name, value=new_value, tags=record_tags(merged)))
        return merged

    def delete(self, batch_id: str) -> bool:
        """Remove a record; False if it was not there."""
        from prefect.exceptions import ObjectNotFound

        with self.client() as client:
            found = self._find(client, batch_id)
            if found is None:
                return False
            try:
                client.delete_variable_by_name(found[0])
            except ObjectNotFound:
                return False
        return True
