"""Queue-aware submission: pace shards under a cap on enqueued input tokens, requeue token-limited batches.

OpenAI caps, per model and organisation, the input tokens of all batches in flight. A batch that would pass
the cap is *created* fine and then fails in validation with `token_limit_exceeded`; its requests never ran.
Two remedies, both about our own batches only (other people's use of the queue is invisible to us):

- pacing (`max_enqueued_tokens=`): before each shard is submitted, wait until the estimated input tokens of
  this job's batches still in flight for that model, plus the shard's, fit under the cap;
- requeueing (in `BatchJob.wait`): a batch that failed with `token_limit_exceeded` is created again from the
  same uploaded file once this job's other batches of that model have left the queue (or, with known token
  counts, once it fits), with backoff when it fails again with nothing of ours in flight. Bounded by
  `token_limit_retries`; its requests are never reported failed while it waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchValidationError, OpenAIBatchError, redact
from batch_openai._retry import RetryPolicy
from batch_openai._steps import Blocking, Call, Sleep, Steps, retried, retried_call
from batch_openai._submit import DEFAULT_MAX_PAGES, find_steps, submit_file_steps
from batch_openai.lifecycle import (
    FINGERPRINT_KEY,
    IN_FLIGHT,
    limit_from_errors,
    token_limited,
)

if TYPE_CHECKING:
    from openai.types import Batch

    from batch_openai._shards import Shard

__all__ = [
    "TokenQueue",
    "plan_waves",
    "resubmit_steps",
    "shard_metadata",
    "submit_shards_steps",
]

log = logging.getLogger("batch_openai")

REQUEUE_KEY = "batch_openai_requeue"
MAX_BACKOFF = 600.0


def _requeue_metadata(batch: Any, attempt: int) -> dict[str, str]:
    meta = dict(batch.metadata or {})
    if REQUEUE_KEY in meta or len(meta) < 16:  # the service allows 16 pairs: never push a full set over
        meta[REQUEUE_KEY] = str(attempt)
    return meta


def resubmit_steps(batch: Batch, *, attempt: int, retry: RetryPolicy | None = None) -> Steps[Batch]:
    """Steps: create the batch again from the same uploaded input file and metadata (no new upload).

    A live batch with the same fingerprint (made by an earlier requeue whose record was lost) is reused
    instead, so a requeue repeated after a crash never pays twice.
    """
    meta = _requeue_metadata(batch, attempt)
    fingerprint = meta.get(FINGERPRINT_KEY)

    def attempt_steps() -> Steps[Batch]:
        if fingerprint:
            found = yield from find_steps(fingerprint, batch.endpoint, DEFAULT_MAX_PAGES)
            if found is not None and found.id != batch.id:
                return found
        return (
            yield Call(
                lambda c: c.batches.create(
                    input_file_id=batch.input_file_id,
                    endpoint=batch.endpoint,
                    completion_window="24h",
                    metadata=meta,
                )
            )
        )

    return retried(attempt_steps, policy=retry, context=f"resubmitting {batch.id} (enqueued-token limit)")


class TokenQueue:
    """Our own enqueued input tokens per model: paces submission and requeues token-limited batches."""

    def __init__(
        self,
        max_enqueued_tokens: int | Mapping[str, int] | None = None,
        *,
        poll_interval: float = 30.0,
        max_requeues: int = 5,
    ) -> None:
        if isinstance(max_enqueued_tokens, Mapping):
            self.caps: dict[str, int] = {str(k): int(v) for k, v in max_enqueued_tokens.items()}
            self.default_cap: int | None = None
        else:
            self.caps, self.default_cap = {}, max_enqueued_tokens
        for cap in [*self.caps.values(), self.default_cap]:
            if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
                raise BatchValidationError(
                    f"max_enqueued_tokens must be a positive whole number of tokens (or a dict of them per "
                    f"model), got {cap!r}"
                )
        self.poll_interval = poll_interval
        self.max_requeues = max_requeues
        self.learned: dict[str, int] = {}  # caps the service named in its token_limit_exceeded messages
        self.models: dict[int, str] = {}  # batch position -> model
        self.tokens: dict[int, int] = {}  # batch position -> estimated input tokens
        self.attempts: dict[int, int] = {}
        self.not_before: dict[int, float] = {}

    # ---------------------------------------------------------------- caps
    def explicit_cap(self, model: str | None) -> int | None:
        """The cap the caller set for `model` (per-model dict first, then the single number)."""
        return self.caps.get(model or "", self.default_cap)

    def cap_for(self, model: str | None) -> int | None:
        """The cap to pace against: the caller's, else one learned from the service's message."""
        explicit = self.explicit_cap(model)
        return explicit if explicit is not None else self.learned.get(model or "")

    def check_fits(self, model: str, tokens: int, label: str) -> None:
        """Refuse (before anything is uploaded) a shard that alone is over the caller's cap."""
        cap = self.explicit_cap(model)
        if cap is not None and tokens > cap:
            raise BatchValidationError(
                f"{label} holds ~{tokens:,} input tokens for {model}, over max_enqueued_tokens={cap:,}: it "
                "could never be enqueued; use smaller shards (max_requests= / --batch-size) or a higher cap"
            )

    # ---------------------------------------------------------------- bookkeeping
    def _model(self, index: int, batch: Any) -> str | None:
        return self.models.get(index) or getattr(batch, "model", None)

    def _in_flight(
        self, batches: list[Any], model: str | None, skip: int = -1, planned: Sequence[int] = ()
    ) -> tuple[int, int | None]:
        """(batches, estimated tokens or None when unknown) of ours in flight for `model`.

        `planned`: positions about to be resubmitted, counted as in flight already.
        """
        count, tokens = 0, 0
        known = True
        for j, b in enumerate(batches):
            if j == skip or self._model(j, b) != model:
                continue
            if b.status not in IN_FLIGHT and j not in planned:
                continue
            count += 1
            if j in self.tokens:
                tokens += self.tokens[j]
            else:
                known = False
        return count, tokens if known else None

    # ---------------------------------------------------------------- pacing
    def wait_for_room_steps(
        self, batches: list[Any], model: str, tokens: int, retry: RetryPolicy | None
    ) -> Steps[None]:
        """Steps: hold until `tokens` more for `model` fit under the cap, polling our in-flight batches."""
        cap = self.cap_for(model)
        if cap is None:
            return
        while True:
            count, used = self._in_flight(batches, model)
            if count == 0 or (used is not None and used + tokens <= cap):
                return
            log.info(
                "batch_openai: %s has ~%s of %s enqueued tokens in flight; waiting to add %s",
                model,
                used,
                cap,
                tokens,
            )
            yield Sleep(self.poll_interval)
            for j, b in enumerate(batches):
                if b.status in IN_FLIGHT:
                    batches[j] = yield from retried_call(
                        lambda c, i=b.id: c.batches.retrieve(i), policy=retry, context=f"polling {b.id}"
                    )

    # ---------------------------------------------------------------- requeueing
    def plan_requeue(self, batches: list[Any], now: float) -> tuple[list[int], float | None]:
        """Positions of token-limited batches to resubmit now, and seconds to the next check (None: none)."""
        planned: list[int] = []
        waiting: list[float] = []
        for i, b in enumerate(batches):
            if not token_limited(b) or self.attempts.get(i, 0) >= self.max_requeues:
                continue
            model = self._model(i, b)
            learned = limit_from_errors(b)
            if learned and model:
                self.learned[model] = learned
            tokens, cap = self.tokens.get(i), self.cap_for(model)
            if tokens is not None and cap is not None and tokens > cap:
                log.warning(
                    "batch_openai: %s (~%s tokens) is over the %s cap; not requeued", b.id, tokens, cap
                )
                self.attempts[i] = self.max_requeues
                continue
            if now < self.not_before.get(i, 0.0):
                waiting.append(self.not_before[i] - now)
                continue
            count, used = self._in_flight(batches, model, skip=i, planned=planned)
            fits = count == 0 or (
                tokens is not None and used is not None and cap is not None and used + tokens <= cap
            )
            waiting.append(self.poll_interval)
            if fits:
                planned.append(i)
        return planned, min(waiting) if waiting else None

    def _resubmitted(self, i: int, old: Any, new: Any, now: float) -> None:
        attempt = self.attempts.get(i, 0) + 1
        log.info("batch_openai: %s hit the enqueued-token limit; resubmitted as %s", old.id, new.id)
        self.attempts[i] = attempt
        # Should it fail again with nothing of ours in flight, someone else fills the queue: back off.
        self.not_before[i] = now + min(MAX_BACKOFF, self.poll_interval * 2 ** (attempt - 1))

    def _failed(self, i: int, batch: Any, exc: Exception) -> None:
        # e.g. the input file was deleted: leave the batch failed, with its own error
        log.warning("batch_openai: could not resubmit %s: %s", batch.id, redact(str(exc)))
        self.attempts[i] = self.max_requeues

    def requeue_steps(
        self,
        batches: list[Any],
        retry: RetryPolicy | None,
        track: Callable[[Any], Steps[None]],
        now: float | None = None,
    ) -> Steps[float | None]:
        """Steps: resubmit the token-limited batches of `batches` (in place) that may go now; the seconds
        to the next check, or None when none waits. `track` records each new batch as soon as it exists."""
        now = time.monotonic() if now is None else now
        planned, delay = self.plan_requeue(batches, now)
        for i in planned:
            old = batches[i]
            try:
                new = yield from resubmit_steps(old, attempt=self.attempts.get(i, 0) + 1, retry=retry)
            except OpenAIBatchError as exc:
                self._failed(i, old, exc)
                continue
            batches[i] = new
            yield from track(new)
            self._resubmitted(i, old, new, now)
        return delay


def plan_waves(
    shards: Sequence[tuple[str, int]], max_enqueued_tokens: int | Mapping[str, int] | None
) -> list[list[int]]:
    """Group (model, estimated input tokens) shards, in order, into waves that fit the cap per model.

    For callers that submit a group and wait for all of it (the Prefect flow); a shard alone over the cap
    raises `BatchValidationError` before anything is submitted.
    """
    queue = TokenQueue(max_enqueued_tokens)
    if max_enqueued_tokens is None:
        return [list(range(len(shards)))] if shards else []
    waves: list[list[int]] = []
    current: list[int] = []
    used: dict[str, int] = {}
    for i, (model, tokens) in enumerate(shards):
        queue.check_fits(model, tokens, f"shard {i + 1}/{len(shards)}")
        cap = queue.explicit_cap(model)
        if current and cap is not None and used.get(model, 0) + tokens > cap:
            waves.append(current)
            current, used = [], {}
        current.append(i)
        used[model] = used.get(model, 0) + tokens
    if current:
        waves.append(current)
    return waves


def shard_metadata(metadata: Mapping[str, str] | None, index: int, total: int) -> dict[str, str]:
    """The caller's metadata, plus `batch_openai_shard: "i/n"` when the job has several shards."""
    out = dict(metadata or {})
    if total > 1:
        out["batch_openai_shard"] = f"{index + 1}/{total}"
    return out


def submit_shards_steps(
    shards: Sequence[Shard],
    *,
    description: str | None,
    metadata: Mapping[str, str] | None,
    retry: RetryPolicy | None,
    max_enqueued_tokens: int | Mapping[str, int] | None,
    poll_interval: float,
    track: Callable[[Any], Steps[None]],
) -> Steps[tuple[list[Batch], TokenQueue]]:
    """Steps: submit each shard idempotently, each held back until it fits under the cap (if any)."""
    queue = TokenQueue(max_enqueued_tokens, poll_interval=poll_interval)
    for i, shard in enumerate(shards):
        queue.models[i] = shard.model
    if max_enqueued_tokens is not None:
        from batch_openai.tokens import file_input_tokens

        for i, shard in enumerate(shards):  # every shard checked before the first upload
            queue.tokens[i] = yield Blocking(lambda s=shard: file_input_tokens(s.path, s.endpoint))
            queue.check_fits(shard.model, queue.tokens[i], f"shard {i + 1}/{len(shards)}")
    batches: list[Any] = []
    for i, shard in enumerate(shards):
        yield from queue.wait_for_room_steps(batches, shard.model, queue.tokens.get(i, 0), retry)
        batch = yield from submit_file_steps(
            shard.path,
            endpoint=shard.endpoint,
            description=description,
            metadata=shard_metadata(metadata, i, len(shards)),
            fingerprint=shard.fingerprint,
            retry=retry,
        )
        yield from track(batch)  # each shard recorded as soon as it exists
        batches.append(batch)
    return batches, queue
