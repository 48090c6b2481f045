"""`BatchRegistry`: the seed's registry API, kept on top of Prefect's state (the Prefect layer's part).

Each tracked batch is one Prefect Variable (see `batch_openai.records`), written through Prefect's API
(`registry_store`) so flows, scripts and the Prefect UI share one set of records, whether Prefect runs as a
server (`PREFECT_API_URL`) or as the ephemeral engine on a local database. Read-only calls (`list`, `get`)
read a local database directly when there is no server, so they never pay the ephemeral engine's
start-up. Prefect is imported only when a write (or a read through the API) needs it, so
`batch-openai list` stays fast. `from batch_openai import BatchRegistry` loads this module lazily.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from batch_openai import BatchRegistryError
from batch_openai.flows.embedded import target_from_prefect_settings
from batch_openai.flows.registry_store import ApiStore
from batch_openai.records import (
    TERMINAL_STATUSES,
    BatchRecord,
    RestReader,
    Target,
    UnreadableDatabase,
    delete_legacy,
    read_all,
    read_legacy,
    read_record,
    record_from_batch,
    resolve_target,
    rest_read,
)

if TYPE_CHECKING:
    from openai import OpenAI

    from batch_openai import BatchJob

__all__ = ["BatchRecord", "BatchRegistry", "BatchRegistryError", "parse_age", "target_from_prefect_settings"]

logger = logging.getLogger(__name__)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s` or `2w` as a `timedelta` (raises ValueError otherwise)."""
    match = _AGE.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not an age: use a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _current_flow_run_id() -> str | None:
    """The id of the Prefect flow run we are inside, if any (never imports Prefect to find out)."""
    if "prefect.context" not in sys.modules:
        return None
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
        return str(task_ctx.task_run.flow_run_id)
    return None


class BatchRegistry:
    """Track batches across sessions, in Prefect's state.

    `path` (or `$OPENAI_BATCH_REGISTRY`) names a Prefect home of the registry's own: its records live
    in `<path>/prefect.db`, served by an ephemeral Prefect engine when written. Without it, the
    registry is the one in Prefect's active settings: the server in `PREFECT_API_URL`, else the
    database in `PREFECT_HOME` (default `~/.prefect`), which is what flows and the UI use.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path).expanduser() if path is not None else None
        self._fixed: Target | None = None
        if self._path is not None:
            self._fixed = resolve_target(self._path, fallback=target_from_prefect_settings)
        self._store: ApiStore | None = None
        self._store_target: Target | None = None
        self._holds: list[Any] = []

    # -- where the records are -------------------------------------------------------------------
    def _target(self) -> Target:
        if self._fixed is not None:
            return self._fixed
        if "prefect.settings" in sys.modules:
            # Prefect is loaded: its settings context (e.g. a test harness) is the truth, and free.
            return target_from_prefect_settings()
        return resolve_target(None, fallback=target_from_prefect_settings)

    def _api(self) -> ApiStore:
        target = self._target()
        if self._store is None or self._store_target != target:
            self._store = ApiStore(target)
            self._store_target = target
        return self._store

    @property
    def location(self) -> str:
        """Where the records live, for people: a Prefect API URL or a Prefect home directory."""
        target = self._target()
        if target.api_url and not target.explicit_home:
            return f"Prefect API {target.api_url}"
        return f"Prefect home {target.home} (database {target.sqlite_path or 'not SQLite'})"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn transport failures into one clear error that says where and what to do."""
        import httpx

        try:
            yield
        except (httpx.HTTPError, OSError, RuntimeError) as exc:
            target = self._target()
            if target.api_url and not target.explicit_home:
                fix = "start that Prefect server, fix PREFECT_API_URL, or unset it for a local Prefect home"
            else:
                fix = (
                    "Prefect's ephemeral engine serves this home: raise "
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a slow machine, or run "
                    "`prefect server start` and set PREFECT_API_URL"
                )
            detail = str(exc).strip().rstrip(".") or type(exc).__name__
            message = f"cannot use the batch registry at {self.location}: {detail}; {fix}"
            raise BatchRegistryError(message) from exc

    def __enter__(self) -> Self:
        """Hold one Prefect client open across many writes (much faster for bulk tracking); nestable."""
        hold = self._api().hold()
        with self._errors():
            hold.__enter__()
        self._holds.append(hold)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Release the client held by the matching `__enter__`."""
        self._holds.pop().__exit__(exc_type, exc, tb)

    # -- reads ---------------------------------------------------------------------------------
    def _local_db(self) -> Path | None:
        """The SQLite file to read directly, or None when reads must go through the API."""
        target = self._target()
        if target.api_url and not target.explicit_home:
            return None
        return target.sqlite_path

    def _rest(self) -> RestReader | None:
        """A plain-HTTP reader for a Prefect server when that is safe (see `records.RestReader`)."""
        target = self._target()
        if target.api_url and not target.explicit_home and target.plain_http:
            return RestReader(target.api_url, api_key=target.api_key, auth_string=target.auth_string)
        return None

    def _legacy_home(self) -> Path | None:
        """The directory whose seed-era `registry.db` still shows through (explicit homes only)."""
        target = self._target()
        return target.home if target.explicit_home else None

    def list(self, *, status: str | None = None) -> list[BatchRecord]:
        """All tracked batches (optionally only those with `status`), newest first."""
        records = self._list_prefect(status)
        legacy_home = self._legacy_home()
        if legacy_home is not None:
            known = {r.batch_id for r in records}
            old = [r for r in read_legacy(legacy_home) if r.batch_id not in known]
            if old:
                records += [r for r in old if status is None or r.status == status]
                records.sort(key=lambda r: (r.created_at, r.batch_id), reverse=True)
        return records

    def _list_prefect(self, status: str | None) -> list[BatchRecord]:
        db = self._local_db()
        if db is not None:
            try:
                return read_all(db, status=status)
            except UnreadableDatabase as exc:
                logger.debug("reading %s directly failed (%s); using the Prefect API", db, exc)
        with self._errors():
            rest = self._rest()
            return rest.list(status=status) if rest is not None else self._api().list(status=status)

    def get_record(self, batch_id: str) -> BatchRecord:
        """The stored record of a batch (no OpenAI call). Raises `KeyError` if it is not tracked."""
        record = self._read_prefect(batch_id)
        legacy_home = self._legacy_home()
        if record is None and legacy_home is not None:
            record = next(iter(read_legacy(legacy_home, batch_id)), None)
        if record is None:
            raise KeyError(f"Batch {batch_id!r} not found in the registry at {self.location}")
        return record

    def _read_prefect(self, batch_id: str) -> BatchRecord | None:
        db = self._local_db()
        record: BatchRecord | None
        try:
            if db is None:
                raise UnreadableDatabase("no local database")
            record = read_record(db, batch_id)
        except UnreadableDatabase:
            with self._errors():
                target = self._target()
                if self._rest() is not None and target.api_url:
                    return rest_read(
                        target.api_url, batch_id, api_key=target.api_key, auth_string=target.auth_string
                    )
                record = self._api().read(batch_id)
        return record

    def __contains__(self, batch_id: object) -> bool:
        """True if the batch is tracked."""
        if not isinstance(batch_id, str):
            return False
        try:
            self.get_record(batch_id)
        except KeyError:
            return False
        return True

    def get(self, batch_id: str, client: OpenAI) -> BatchJob:
        """Reconnect to a tracked batch (one API call). Raises `KeyError` if it is not tracked.

        The job reports to this registry: what it observes (this call, each `refresh()` and `wait()`
        poll) keeps the record's status and counts current.
        """
        self.get_record(batch_id)
        from batch_openai import BatchJob

        return BatchJob.from_id(client, batch_id, registry=self)

    # -- writes --------------------------------------------------------------------------------
    def _put(self, record: BatchRecord, *, force_status: bool = False) -> BatchRecord:
        with self._errors():
            return self._api().put(record, force_status=force_status)

    def track_batch(self, batch: Any, *, description: str | None = None) -> BatchRecord:
        """Save or update the record of one `openai.types.Batch` as just observed; returns the stored record.

        Safe to call from many processes at once: an observation never moves a record back to an
        earlier status, and the flow run that created the batch is kept.
        """
        record = record_from_batch(batch, description=description, flow_run_id=_current_flow_run_id())
        return self._put(record)

    def track(self, job: BatchJob) -> list[BatchRecord]:
        """Save or update a job (every batch of a sharded job); returns the stored records."""
        batches = list(getattr(job, "batches", None) or [])
        if not batches and getattr(job, "batch", None) is not None:
            batches = [job.batch]
        description = getattr(job, "description", None)
        if batches:
            return [self.track_batch(b, description=description) for b in batches]
        # A job that has not seen its Batch object: keep what the seed kept.
        counts = getattr(job, "request_counts", None)
        record = BatchRecord(
            batch_id=job.batch_id,
            input_file_id=str(getattr(job, "input_file_id", "") or ""),
            description=description,
            status=str(getattr(job, "status", None) or "validating"),
            created_at=datetime.now(UTC),
            endpoint=getattr(job, "endpoint", None),
            request_counts=record_from_batch({"id": job.batch_id, "request_counts": counts}).request_counts,
            flow_run_id=_current_flow_run_id(),
            updated_at=datetime.now(UTC),
        )
        return [self._put(record)]

    def update_status(self, batch_id: str, status: str) -> None:
        """Set the stored status of a tracked batch, exactly as given; an untracked id is ignored."""
        try:
            record = self.get_record(batch_id)
        except KeyError:
            logger.debug("update_status(%r): not tracked, nothing to update", batch_id)
            return
        self._put(replace(record, status=status, updated_at=datetime.now(UTC)), force_status=True)

    def prune(
        self,
        older_than: timedelta | str,
        *,
        statuses: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> list[BatchRecord]:
        """Delete the records of finished batches created more than `older_than` ago; returns them.

        `older_than` is a `timedelta` or text like `30d`, `12h`, `90m`, `2w`. Only terminal records
        (completed, failed, expired, cancelled) are pruned unless `statuses` names others.
        `dry_run` returns what would go and deletes nothing. The batches themselves are not touched.
        """
        age = parse_age(older_than) if isinstance(older_than, str) else older_than
        wanted = set(statuses) if statuses is not None else set(TERMINAL_STATUSES)
        cutoff = datetime.now(UTC) - age
        old = [r for r in self.list() if r.status in wanted and r.created_at < cutoff]
        if not dry_run and old:
            with self:
                for record in old:
                    self.delete(record.batch_id)
        return old

    def delete(self, batch_id: str) -> None:
        """Remove a batch from the registry (no error if it was not tracked)."""
        with self._errors():
            self._api().delete(batch_id)
        legacy_home = self._legacy_home()
        if legacy_home is not None:
            delete_legacy(legacy_home, batch_id)

    def __repr__(self) -> str:
        return f"BatchRegistry({self.location})"
