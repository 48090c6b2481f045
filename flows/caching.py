"""The submit task's cache policy: one batch per shard content, even across crashes and overlapping runs.

Key = task name + sha256 of the shard file's bytes + the service's base URL (+ the attempt number,
bumped only when a batch is resubmitted on purpose). Not the task source (a comment change would
resubmit) and not the client (never a parameter). Records are persisted as JSON under Prefect's result
storage and written under a SERIALIZABLE transaction guarded by file locks, so two runs of the same
input at once make one batch.

Prefect's `FileSystemLockManager` writes locks that never expire, so a SIGKILL while submitting would
leave a lock that blocks every rerun forever. `StaleAwareLockManager` records the holder's host and pid
and treats a lock whose process is gone as free (plus a hold timeout as a backstop across hosts).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import pydantic_core
from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy
from prefect.context import TaskRunContext
from prefect.locking.filesystem import FileSystemLockManager

from batch_openai import fingerprint_file
from batch_openai.flows.embedded import pid_alive

LOCK_HOLD_SECONDS = 3600.0  # backstop for locks left by a dead process on another host
_HOST = socket.gethostname()


class StaleAwareLockManager(FileSystemLockManager):
    """File locks that a crashed holder cannot leave behind forever."""

    def __init__(self, lock_files_directory: Path | None = None) -> None:
        # Resolve the directory lazily from PREFECT_HOME so tests and CLI runs with their own home work.
        self._fixed_dir = lock_files_directory
        self._locks = {}

    @property
    def lock_files_directory(self) -> Path:  # type: ignore[override]
        """Directory of lock files: the given one, else `$PREFECT_HOME/batch_openai_locks`."""
        if self._fixed_dir is not None:
            return Path(self._fixed_dir).expanduser().resolve()
        from prefect.settings import PREFECT_HOME

        return Path(PREFECT_HOME.value()).expanduser().resolve() / "batch_openai_locks"

    def _lock_path_for_key(self, key: str) -> Path:
        # Never cache the path: the directory may differ between settings contexts.
        return self.lock_files_directory.joinpath(key).with_suffix(".lock")

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Acquire as Prefect does, then stamp the lock with this host and pid."""
        ok = super().acquire_lock(key, holder, acquire_timeout, hold_timeout or LOCK_HOLD_SECONDS)
        if ok:
            path = self._lock_path_for_key(key)
            info = self._locks.get(key) or {}
            expiration = info.get("expiration")
            payload = {
                "holder": holder,
                "expiration": str(expiration) if expiration is not None else None,
                "host": _HOST,
                "pid": os.getpid(),
            }
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pydantic_core.to_json(payload))
            os.replace(tmp, path)
        return ok

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Async twin of `acquire_lock` (same behaviour; file I/O is tiny)."""
        return self.acquire_lock(key, holder, acquire_timeout, hold_timeout)

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        """Locked unless the lock file is gone, expired, or held by a dead process on this host."""
        try:
            info: dict[str, Any] | None = self._get_lock_info(key, use_cache=use_cache)
        except ValueError:  # a lock file caught between creation and its first write
            return True
        dead_holder = (
            info is not None
            and info.get("host") == _HOST
            and isinstance(info.get("pid"), int)
            and info["pid"] != os.getpid()
            and not pid_alive(info["pid"])
        )
        if dead_holder:
            Path(info["path"]).unlink(missing_ok=True)  # type: ignore[index]
            self._locks.pop(key, None)
            return False
        return super().is_locked(key, use_cache=use_cache)


def shard_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Task name + sha256 of the shard's bytes + which service (+ attempt when resubmitting on purpose).

    The service (base URL, never the key) is part of the key so a batch made on the local server is
    never "re-attached" when the same shard later goes to OpenAI.
    """
    from batch_openai.flows.client import resolve_base_url

    path = parameters.get("shard_path")
    sha = fingerprint_file(path) if path and Path(path).exists() else str(parameters["fingerprint"])
    base_url = resolve_base_url(parameters.get("base_url")) or "openai"
    service = hashlib.sha256(base_url.encode()).hexdigest()[:8]
    attempt = int(parameters.get("attempt") or 0)
    suffix = f"-a{attempt}" if attempt else ""
    return f"{context.task.name}-{sha}-{service}{suffix}"


def submit_cache_policy() -> CachePolicy:
    """The submit task's policy: content key, SERIALIZABLE, stale-aware file locks."""
    return CacheKeyFnPolicy(cache_key_fn=shard_cache_key).configure(
        isolation_level="SERIALIZABLE", lock_manager=StaleAwareLockManager()
    )
