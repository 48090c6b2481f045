"""The background worker that moves batches through their lifecycle.

It runs its own asyncio loop in a thread, one task a batch, so a busy batch never stalls the HTTP
server. Lines finish into `work/<id>.out|.err` (appended in chunks, never held whole in memory);
finalizing turns those into `batch_output` files. Everything needed to resume is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from batch_openai.local.config import ServerConfig
from batch_openai.local.progress import CHUNK, Progress, failure_body, scan_work
from batch_openai.local.store import BatchRecord, Store, now
from batch_openai.local.validation import LineError, ValidatedFile, token_limit_error, validate_file
from batch_openai.tokens import request_input_tokens

#: A responder answers one request body: (status_code, response body).
SyncRespond = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]
AsyncRespond = Callable[[str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]

_log = logging.getLogger("batch_openai.local")
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_IN_FLIGHT = frozenset({"in_progress", "finalizing"})


def _stamp(rec: BatchRecord, name: str) -> float:
    """A timestamp with sub-second precision when known (the API shows whole seconds)."""
    value = rec.extra.get(name, rec.obj.get(name))
    return float(value) if value is not None else time.time()


def _deadline(rec: BatchRecord) -> float:
    """When the completion window lapses (sub-second precision for shortened test windows)."""
    return float(rec.extra.get("deadline", rec.obj["expires_at"]))


class Engine:
    """Runs every non-terminal batch to its end, on a private event loop thread."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        respond: SyncRespond | None = None,
        respond_async: AsyncRespond | None = None,
        close_async: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.respond = respond
        self.respond_async = respond_async
        self.close_async = close_async
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._ready = threading.Event()
        self._rng = random.Random(config.seed)
        #: Called with a snapshot of the batch object each time a batch reaches a final status.
        self.on_end: Callable[[dict[str, Any]], None] | None = None

    # -- control, from any thread --------------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread and resume every batch that is not finished."""
        self._thread = threading.Thread(target=self._main, name="batch-openai-engine", daemon=True)
        self._thread.start()
        self._ready.wait()
        for rec in self.store.list_batches():
            if rec.status not in TERMINAL:
                self.submit(rec.id)

    def stop(self) -> None:
        """Cancel running batch tasks (their progress is on disk) and stop the loop."""
        loop = self.loop
        if loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self.loop = None

    def submit(self, batch_id: str) -> None:
        """Start working on a batch."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._spawn, batch_id)

    def poke(self, batch_id: str) -> None:
        """Wake a batch's task so it notices a cancel, an expiry or a changed setting."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._poke, batch_id)

    def poke_all(self) -> None:
        """Wake every batch task."""
        if self.loop is not None:
            for bid in list(self._tasks):
                self.loop.call_soon_threadsafe(self._poke, bid)

    # -- loop side -----------------------------------------------------------------------------
    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.close_async is not None:
            await self.close_async()

    def _spawn(self, batch_id: str) -> None:
        if batch_id in self._tasks:
            return
        self._wake[batch_id] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._run(batch_id))
        self._tasks[batch_id] = task
        task.add_done_callback(lambda _t: (self._tasks.pop(batch_id, None), self._wake.pop(batch_id, None)))

    def _poke(self, batch_id: str) -> None:
        ev = self._wake.get(batch_id)
        if ev is not None:
            ev.set()

    async def _sleep(
        self,
        rec: BatchRecord,
        until: float | Callable[[], float],
        *,
        watch_expiry: bool,
        watch_cancel: bool = True,
    ) -> None:
        """Sleep until a wall-clock time, but wake early for a cancel, a forced expiry or the window
        lapsing. A callable `until` is read again at every wake, so a live setting change (which
        pokes every batch) moves the end of a phase already under way."""
        ev = self._wake[rec.id]
        while True:
            left = (until() if callable(until) else until) - time.time()
            if watch_expiry:
                left = min(left, _deadline(rec) - time.time())
            if left <= 0 or (watch_cancel and self._interrupted(rec, watch_expiry)):
                return
            ev.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), timeout=left)

    def _interrupted(self, rec: BatchRecord, watch_expiry: bool) -> bool:
        return rec.cancel_requested or (watch_expiry and self._expired(rec))

    def _expired(self, rec: BatchRecord) -> bool:
        return rec.expire_requested or time.time() >= _deadline(rec)

    def _set_status(self, rec: BatchRecord, status: str, stamp: str | None = None, **fields: Any) -> None:
        with self.store.lock:
            if rec.cancel_requested and status in ("in_progress", "finalizing"):
                return  # a cancel arrived meanwhile: cancelling wins
            rec.obj["status"] = status
            if stamp:
                rec.extra[stamp] = time.time()
                rec.obj[stamp] = int(rec.extra[stamp])
            rec.obj.update(fields)
            self.store.save_batch(rec)
            snapshot = dict(rec.obj) if status in TERMINAL else None
        if snapshot is not None:
            self._ended(snapshot)

    def _ended(self, batch: dict[str, Any]) -> None:
        if self.on_end is not None:
            try:
                self.on_end(batch)
            except Exception:  # a webhook problem must never stall a batch
                _log.exception("on_end hook failed for batch %s", batch.get("id"))

    async def _run(self, batch_id: str) -> None:
        rec = self.store.get_batch(batch_id)
        if rec is None:
            return
        try:
            await self._drive(rec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave a batch hanging forever
            _log.exception("batch %s failed inside the local server", batch_id)
            err = LineError("server_error", f"The local server failed while processing: {type(exc).__name__}")
            self._set_status(rec, "failed", "failed_at", errors={"object": "list", "data": [err.to_dict()]})

    async def _drive(self, rec: BatchRecord) -> None:
        cfg = self.config
        vf: ValidatedFile | None = None
        if rec.status == "validating":
            created = _stamp(rec, "created_at")
            await self._sleep(rec, lambda: created + cfg.step_seconds, watch_expiry=True)
            vf = await self._validate(rec)
            if vf is None:
                return
            if not rec.cancel_requested and self._expired(rec):
                await self._end(rec, vf, "expired")
                return
            if not rec.cancel_requested and not self._admit(rec, vf):
                return
            self._set_status(rec, "in_progress", "in_progress_at")
        if rec.status == "in_progress":
            vf = vf or await self._revalidate(rec)
            await self._process(rec, vf)
            if rec.cancel_requested:
                pass
            elif self._expired(rec) and len(self._progress_done(rec)) < len(vf):
                await self._end(rec, vf, "expired")
                return
            else:
                self._set_status(rec, "finalizing", "finalizing_at")
        if rec.status == "finalizing":
            entered = _stamp(rec, "finalizing_at")
            await self._sleep(
                rec, lambda: entered + cfg.step_seconds + cfg.stall_finalizing_seconds, watch_expiry=False
            )
            if not rec.cancel_requested:
                await self._end(rec, vf or await self._revalidate(rec), "completed")
                return
        if rec.status == "cancelling":
            entered = _stamp(rec, "cancelling_at")
            await self._sleep(rec, lambda: entered + cfg.step_seconds, watch_expiry=False, watch_cancel=False)
            await self._end(rec, vf or await self._revalidate(rec), "cancelled")

    def _progress_done(self, rec: BatchRecord) -> set[str]:
        return scan_work(*self.store.work_paths(rec.id))[0]

    async def _validate(self, rec: BatchRecord) -> ValidatedFile | None:
        """Validate the input; on failure mark the batch `failed` and return None."""
        path = self.store.file_path(rec.obj["input_file_id"])
        if not path.exists():
            err = LineError("invalid_request", f"The input file {rec.obj['input_file_id']} was deleted.")
            self._set_status(rec, "failed", "failed_at", errors={"object": "list", "data": [err.to_dict()]})
            return None
        counter = request_input_tokens if self.config.enqueued_token_limit else None
        vf = await asyncio.to_thread(
            validate_file,
            path,
            rec.obj["endpoint"],
            max_lines=self.config.max_lines,
            max_bytes=self.config.max_bytes,
            count_tokens=counter,
        )
        if vf.errors:
            if rec.cancel_requested:
                self._set_status(rec, "cancelled", "cancelled_at")
                return None
            data = [e.to_dict() for e in vf.errors]
            self._set_status(rec, "failed", "failed_at", errors={"object": "list", "data": data})
            return None
        with self.store.lock:
            rec.model = vf.model
            rec.enqueued_tokens = vf.input_tokens
            rec.obj["model"] = vf.model
            rec.obj["request_counts"] = {"total": len(vf), "completed": 0, "failed": 0}
        return vf

    async def _revalidate(self, rec: BatchRecord) -> ValidatedFile:
        path = self.store.file_path(rec.obj["input_file_id"])
        return await asyncio.to_thread(
            validate_file,
            path,
            rec.obj["endpoint"],
            max_lines=self.config.max_lines,
            max_bytes=self.config.max_bytes,
        )

    def _admit(self, rec: BatchRecord, vf: ValidatedFile) -> bool:
        """Apply the per-model enqueued token limit, as OpenAI does at the end of validation."""
        limit = self.config.enqueued_token_limit
        if not limit or rec.model is None:
            return True
        with self.store.lock:
            in_flight = sum(
                r.enqueued_tokens
                for r in self.store.batches.values()
                if r.id != rec.id and r.model == rec.model and r.status in _IN_FLIGHT
            )
            if in_flight + vf.input_tokens <= limit:
                return True
        err = token_limit_error(rec.model, limit, in_flight, vf.input_tokens)
        data = [{"code": "token_limit_exceeded", "line": None, "message": err.message, "param": None}]
        self._set_status(rec, "failed", "failed_at", errors={"object": "list", "data": data})
        return False

    def _order(self, rec: BatchRecord, n: int) -> list[int]:
        order = list(range(n))
        if self.config.shuffle_output:
            random.Random(f"{self.config.seed}:{rec.id}").shuffle(order)
        return order

    async def _process(self, rec: BatchRecord, vf: ValidatedFile) -> None:
        """Answer every pending request, pacing them over at least `step_seconds`."""
        prog = Progress(rec, self.store)
        try:
            pending = [i for i in self._order(rec, len(vf)) if vf.custom_ids[i] not in prog.done]
            prog.flush()
            if pending:
                path = self.store.file_path(rec.obj["input_file_id"])
                with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    if self.respond_async is not None:
                        await self._process_async(rec, vf, prog, pending, mm)
                    else:
                        await self._process_sync(rec, vf, prog, pending, mm)
            entered = _stamp(rec, "in_progress_at")
            await self._sleep(rec, lambda: entered + self.config.step_seconds, watch_expiry=True)
        finally:
            prog.close()

    def _line_fails(self) -> bool:
        rate = self.config.line_failure_rate
        return rate > 0 and self._rng.random() < rate

    async def _process_sync(
        self, rec: BatchRecord, vf: ValidatedFile, prog: Progress, pending: list[int], mm: mmap.mmap
    ) -> None:
        assert self.respond is not None
        step = self.config.step_seconds
        total = len(pending)
        t0 = time.monotonic()
        url = rec.obj["endpoint"]
        for k, i in enumerate(pending):
            line = orjson.loads(mm[vf.starts[i] : vf.ends[i]])
            if self._line_fails():
                prog.add(vf.custom_ids[i], 500, failure_body())
            else:
                status, body = self.respond(url, line["body"])
                prog.add(vf.custom_ids[i], status, body)
            if step > 0:
                target = t0 + step * (k + 1) / total
                if time.monotonic() < target:
                    prog.flush()
                    await self._sleep(rec, time.time() + target - time.monotonic(), watch_expiry=True)
            elif (k + 1) % CHUNK == 0:
                prog.flush()
                await asyncio.sleep(0)
            if self._interrupted(rec, watch_expiry=True):
                break
        prog.flush()

    async def _process_async(
        self, rec: BatchRecord, vf: ValidatedFile, prog: Progress, pending: list[int], mm: mmap.mmap
    ) -> None:
        assert self.respond_async is not None
        respond = self.respond_async
        url = rec.obj["endpoint"]
        queue = iter(pending)
        step = self.config.step_seconds
        t0, total = time.monotonic(), len(pending)
        started = 0

        async def worker() -> None:
            nonlocal started
            for i in queue:
                if self._interrupted(rec, watch_expiry=True):
                    return
                if step > 0:  # pace starts so the batch spends at least `step` in progress
                    started += 1
                    wait = t0 + step * started / total - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                body = orjson.loads(mm[vf.starts[i] : vf.ends[i]])["body"]
                if self._line_fails():
                    prog.add(vf.custom_ids[i], 500, failure_body())
                else:
                    status, answer = await respond(url, body)
                    prog.add(vf.custom_ids[i], status, answer)
                if time.monotonic() - prog.last_flush > 0.1:
                    prog.flush()

        workers = [asyncio.create_task(worker()) for _ in range(min(self.config.concurrency, total))]
        everything = asyncio.gather(*workers)
        try:
            # A cancel or expiry must not wait for slow upstream answers: abandon those in flight
            # (they become batch_cancelled / batch_expired lines).
            while not everything.done():
                await asyncio.wait({everything}, timeout=0.1)
                if prog.out_buf or prog.err_buf:
                    prog.flush()  # counts keep rising even while the slowest requests are out
                if self._interrupted(rec, watch_expiry=True):
                    break
            if everything.done():
                everything.result()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            prog.flush()

    async def _end(self, rec: BatchRecord, vf: ValidatedFile, final: str) -> None:
        """Write never-run lines (cancel/expiry), publish output files and set the final status."""
        out_path, err_path = self.store.work_paths(rec.id)
        prog = Progress(rec, self.store)
        code = {"cancelled": "batch_cancelled", "expired": "batch_expired"}.get(final)
        try:
            if code is not None:
                for cid in vf.custom_ids:
                    if cid not in prog.done:
                        prog.add(cid, None, None, code)
                        if len(prog.err_buf) >= CHUNK:
                            prog.flush()
        finally:
            prog.close()
        with self.store.lock:
            rec.obj["request_counts"] = {
                "total": len(vf),
                "completed": prog.completed,
                "failed": prog.failed,
            }
        output_id = self.store.publish_output(
            out_path, f"{rec.id}_output.jsonl", rec.extra.get("output_expires_after")
        )
        error_id = self.store.publish_output(
            err_path, f"{rec.id}_error.jsonl", rec.extra.get("output_expires_after")
        )
        stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[final]
        with self.store.lock:
            rec.obj["output_file_id"] = output_id
            rec.obj["error_file_id"] = error_id
            rec.obj["status"] = final
            rec.obj[stamp] = now()
            self.store.save_batch(rec)
            snapshot = dict(rec.obj)
        self._ended(snapshot)
