"""`BatchRequestBuilder`: collect requests for any Batch API endpoint, validate them, write or submit them.

Each request is encoded with orjson the moment it is added: that copies it (later changes to the caller's
`messages` do not leak in), proves it is JSON, and makes writing 50,000 lines a matter of joining bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import orjson

from batch_openai._errors import BatchValidationError
from batch_openai._input_file import check_input_file, read_input_lines
from batch_openai._jsonl import compact_body, encode_block
from batch_openai._retry import RetryPolicy
from batch_openai._shards import Shard, ShardSink, write_shards
from batch_openai._steps import Steps, twins
from batch_openai._validation import (
    _ROLES,
    MAX_FILE_BYTES,
    MAX_REQUESTS,
    check_body,
    check_custom_id,
    check_endpoint,
    check_messages,
    embedding_weight,
    non_finite,
)
from batch_openai.storage import basename

if TYPE_CHECKING:
    import pandas as pd

    from batch_openai._estimate import CostEstimate
    from batch_openai._job import BatchJob
    from batch_openai._pricing import PriceLike
    from batch_openai.records import BatchTracker as BatchRegistry

__all__ = ["BatchRequestBuilder"]

_CHAT = "/v1/chat/completions"
_RESPONSES = "/v1/responses"
_EMBEDDINGS = "/v1/embeddings"
_COMPLETIONS = "/v1/completions"
_MODERATIONS = "/v1/moderations"
# Datetimes and dataclasses are not JSON: refuse them instead of letting orjson quietly stringify them.
_DUMPS_OPTS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_dumps = orjson.dumps


def _is_model_class(value: object) -> bool:
    return isinstance(value, type) and hasattr(value, "model_json_schema")


def _strict_format(model: type) -> dict[str, Any]:
    # The SDK's own helper: strict schema with additionalProperties false, refs inlined as the service wants.
    from openai.lib._parsing._completions import type_to_response_format_param

    return dict(type_to_response_format_param(model))  # type: ignore[arg-type]


def _strict_text_format(model: type) -> dict[str, Any]:
    from openai.lib._parsing._responses import type_to_text_format_param

    return dict(type_to_text_format_param(model))


class BatchRequestBuilder:
    """Collects batch requests (chat, responses, embeddings, completions, moderations) to submit."""

    def __init__(self, *, check_models: bool = True) -> None:
        self.check_models = check_models
        self._ids: list[str | None] = []
        # (first index, url, model) each time the endpoint or model changes: one entry for a typical
        # builder instead of two list slots per request.
        self._runs: list[tuple[int, str, str]] = []
        self._bodies: list[bytes] = []
        self._weights: dict[int, int] = {}  # embeddings requests only: index -> number of inputs
        self._explicit: set[str] = set()
        self._final: list[str] | None = None
        self._generated: set[str] = set()

    # ---------------------------------------------------------------- adding
    def _label(self, custom_id: str | None, line: int | None) -> str:
        if line is not None:
            return f"request (line {line}{f', custom_id {custom_id!r}' if custom_id else ''})"
        if custom_id is not None:
            return f"request (custom_id {custom_id!r})"
        return f"request #{len(self._ids)} (0-based, no custom_id)"

    def _append(
        self,
        url: str,
        body: dict[str, Any],
        custom_id: str | None,
        line: int | None = None,
        plain: bool = False,
    ) -> Self:
        """Check, encode and keep one request; `plain` = a chat body of only model and messages."""
        if custom_id is not None:
            if type(custom_id) is not str or not custom_id:
                check_custom_id(custom_id, line)
            if custom_id in self._explicit:
                where = f" at line {line}" if line else ""
                raise BatchValidationError(
                    f"duplicate custom_id {custom_id!r}{where}; every request needs a unique custom_id",
                    custom_id=custom_id,
                    line=line,
                )
        try:
            model = check_body(url, body, custom_id=custom_id, line=line, check_models=self.check_models)
        except BatchValidationError as exc:
            if custom_id is None and line is None:  # name the request by its position instead
                raise BatchValidationError(
                    str(exc).replace("request:", self._label(None, None) + ":", 1), param=exc.param
                ) from None
            raise
        try:
            encoded = orjson.dumps(body, option=_DUMPS_OPTS)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise BatchValidationError(
                f"{self._label(custom_id, line)} holds a value that is not JSON ({exc}); convert it to "
                "str/int/float/bool/None/list/dict first (e.g. model.model_dump(), str(date))",
                custom_id=custom_id,
                line=line,
            ) from None
        # orjson writes NaN and infinities as null; only a body whose JSON holds a null can hide one.
        if b"null" in encoded:
            where = non_finite(body)
            if where is not None:
                raise BatchValidationError(
                    f"{self._label(custom_id, line)}: {where} is not valid JSON; pass a finite number",
                    custom_id=custom_id,
                    line=line,
                )
        if custom_id is not None:
            self._explicit.add(custom_id)
            if custom_id in self._generated:  # a generated id now collides: regenerate so none does
                self._final, self._generated = None, set()
        self._ids.append(custom_id)
        runs = self._runs
        if not runs or runs[-1][1] != url or runs[-1][2] != model:
            runs.append((len(self._ids) - 1, url, model))
        self._bodies.append(compact_body(encoded))
        if url == _EMBEDDINGS:
            self._weights[len(self._ids) - 1] = embedding_weight(body)
        return self

    def add(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        custom_id: str | None = None,
        model: str,
        **params: Any,
    ) -> Self:
        """Add one /v1/chat/completions request; `response_format` may be a Pydantic model class."""
        if type(messages) is tuple:
            messages = list(messages)
        if (
            not params  # the common case, inlined: it runs 50,000 times for a full batch
            and type(model) is str
            and model
            and (
                custom_id is None
                or (type(custom_id) is str and custom_id and custom_id not in self._explicit)
            )
        ):
            # A body of only model and messages: check_body's other rules (stream, response_format, the
            # model table's rejected parameters) cannot fail for it, so only the messages need checking.
            body = {"model": model, "messages": messages}
            try:
                # Plain messages ({"role", "content": non-empty str} and nothing else) pass every message
                # check and cannot hold a float, so no NaN can hide behind a null: skip scanning the JSON.
                plain = type(messages) is list and len(messages) > 0
                if plain:
                    for message in messages:
                        if (
                            type(message) is not dict
                            or len(message) != 2
                            or message.get("role") not in _ROLES
                            or type(content := message.get("content")) is not str
                            or not content
                        ):
                            plain = False
                            break
                if not plain:
                    check_messages(messages, custom_id, None)
                encoded = _dumps(body, None, _DUMPS_OPTS)
            except (BatchValidationError, TypeError):
                return self._append(_CHAT, body, custom_id)  # the general path names the problem
            runs = self._runs
            new_run = not runs or runs[-1][2] != model or runs[-1][1] != _CHAT
            # A model not seen just before gets the general path once: the endpoint/model checks run there.
            if not new_run and (plain or b"null" not in encoded):  # else a NaN may hide: the general path
                if custom_id is not None:
                    self._explicit.add(custom_id)
                    if custom_id in self._generated:
                        self._final, self._generated = None, set()
                self._ids.append(custom_id)
                self._bodies.append(encoded[1:])  # compact_body, inlined
                return self
            return self._append(_CHAT, body, custom_id)
        rf = params.get("response_format")
        if rf is not None and _is_model_class(rf):
            params["response_format"] = _strict_format(rf)
        return self._append(_CHAT, {"model": model, "messages": messages, **params}, custom_id)

    def add_response(
        self,
        input: Any,
        *,
        model: str,
        custom_id: str | None = None,
        text_format: type | None = None,
        **params: Any,
    ) -> Self:
        """Add one /v1/responses request; `text_format` (a Pydantic model class) asks for strict output."""
        if "response_format" in params:
            raise BatchValidationError(
                "the responses endpoint has no response_format; "
                "pass text_format=YourModel (or text={'format': ...})",
                custom_id=custom_id,
            )
        body: dict[str, Any] = {"model": model, "input": input, **params}
        if text_format is not None:
            if not _is_model_class(text_format):
                raise BatchValidationError(
                    f"text_format must be a Pydantic model class, got {text_format!r}", custom_id=custom_id
                )
            text = dict(body.get("text") or {})
            text["format"] = _strict_text_format(text_format)
            body["text"] = text
        return self._append(_RESPONSES, body, custom_id)

    def add_embedding(self, input: Any, *, model: str, custom_id: str | None = None, **params: Any) -> Self:
        """Add one /v1/embeddings request (`input` a string or a list of them)."""
        return self._append(_EMBEDDINGS, {"model": model, "input": input, **params}, custom_id)

    def add_completion(self, prompt: Any, *, model: str, custom_id: str | None = None, **params: Any) -> Self:
        """Add one legacy /v1/completions request."""
        return self._append(_COMPLETIONS, {"model": model, "prompt": prompt, **params}, custom_id)

    def add_moderation(
        self,
        input: Any,
        *,
        model: str = "omni-moderation-latest",
        custom_id: str | None = None,
        **params: Any,
    ) -> Self:
        """Add one /v1/moderations request."""
        return self._append(_MODERATIONS, {"model": model, "input": input, **params}, custom_id)

    def add_request(self, url: str, body: Mapping[str, Any], *, custom_id: str | None = None) -> Self:
        """Add a raw request body for any Batch API endpoint (validated like the others)."""
        check_endpoint(url, custom_id)
        if not isinstance(body, Mapping):
            raise BatchValidationError(f"body must be a dict, got {type(body).__name__}", custom_id=custom_id)
        return self._append(url, dict(body), custom_id)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str], *, check_models: bool = True) -> BatchRequestBuilder:
        """Load a native batch-input JSONL file; each defect raises `BatchValidationError` naming its line."""
        check_input_file(path)
        builder = cls(check_models=check_models)
        for number, custom_id, url, body in read_input_lines(path):
            builder._append(url, body, custom_id, line=number)
        if not builder._ids:
            raise BatchValidationError(
                f"input file {basename(path)!r} holds no requests; add at least one JSON line"
            )
        return builder

    @classmethod
    def shard_jsonl(
        cls,
        path: str | os.PathLike[str],
        directory: str | os.PathLike[str],
        *,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_FILE_BYTES,
        check_models: bool = True,
        chunk: int = 20_000,
    ) -> list[Shard]:
        """`from_jsonl(path).write_shards(directory)` for a file of any size: the same checks, errors and
        shard files, with the requests streamed `chunk` at a time instead of held in memory."""
        sink = ShardSink(
            directory, max_requests=min(max_requests, MAX_REQUESTS), max_bytes=min(max_bytes, MAX_FILE_BYTES)
        )
        try:
            cls._stream_jsonl(path, sink, check_models, chunk)
        except BaseException:
            sink.abort()
            raise
        return sink.close()

    @classmethod
    def check_jsonl(
        cls, path: str | os.PathLike[str], *, check_models: bool = True, chunk: int = 20_000
    ) -> int:
        """Every check `from_jsonl` makes, streamed, keeping nothing: the number of requests, or the
        `BatchValidationError` naming the first bad line."""
        return cls._stream_jsonl(path, None, check_models, chunk)

    @classmethod
    def _stream_jsonl(
        cls, path: str | os.PathLike[str], sink: ShardSink | None, check_models: bool, chunk: int
    ) -> int:
        check_input_file(path)
        seen: set[str] = set()  # duplicate custom_ids are found across chunks
        count = 0
        part = cls(check_models=check_models)
        part._explicit = seen
        for number, custom_id, url, body in read_input_lines(path):
            part._append(url, body, custom_id, line=number)
            if len(part._ids) >= chunk:
                count += part._drain_into(sink)
                part = cls(check_models=check_models)
                part._explicit = seen
        count += part._drain_into(sink)
        if not count:
            raise BatchValidationError(
                f"input file {basename(path)!r} holds no requests; add at least one JSON line"
            )
        return count

    def _drain_into(self, sink: ShardSink | None) -> int:
        """Hand every request to `sink` (if any); returns how many."""
        if not self._ids or sink is None:
            return len(self._ids)
        for request in zip(
            self.custom_ids,
            self._expand(1),
            self._expand(2),
            self._bodies,
            [self._weights.get(i, 1) for i in range(len(self._ids))],
            strict=True,
        ):
            sink.add(*request)
        return len(self._ids)

    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        *,
        model: str,
        messages: str | Callable[[Any], Any],
        custom_id: str | None = None,
        check_models: bool = True,
        **params: Any,
    ) -> BatchRequestBuilder:
        """One chat request per row: `messages` a callable(row) -> messages, or a `{column}` template string.

        `custom_id` names the column holding the ids (default: the index, as strings).
        """
        from batch_openai._frames import builder_from_dataframe

        builder = cls(check_models=check_models)
        return builder_from_dataframe(
            builder, df, model=model, messages=messages, custom_id=custom_id, **params
        )

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        """Number of requests added so far."""
        return len(self._ids)

    @property
    def custom_ids(self) -> list[str]:
        """Every request's custom_id in order, generated ones included (generated ids never collide)."""
        if self._final is None or len(self._final) != len(self._ids):
            used = self._explicit
            final: list[str] = []
            generated: set[str] = set()
            for i, cid in enumerate(self._ids):
                if cid is None:
                    cid = f"request-{i}"
                    k = 0
                    while cid in used:
                        k += 1
                        cid = f"request-{i}-{k}"
                    generated.add(cid)
                final.append(cid)
            self._final, self._generated = final, generated
        return self._final

    def _expand(self, field: int) -> list[str]:
        """Per-request urls (field 1) or models (field 2), from the runs."""
        out: list[str] = []
        bounds = [start for start, _, _ in self._runs[1:]] + [len(self._ids)]
        for (start, *values), end in zip(self._runs, bounds, strict=True):
            out.extend([values[field - 1]] * (end - start))
        return out

    @property
    def endpoints(self) -> list[str]:
        """The distinct endpoints used, in first-seen order."""
        return list(dict.fromkeys(url for _, url, _ in self._runs))

    def validate(self) -> None:
        """Raise `BatchValidationError` if the builder cannot be submitted (requests are checked at add)."""
        if not self._ids:
            raise BatchValidationError("the builder is empty; add at least one request before submitting")

    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write every request to one JSONL file (UTF-8, unescaped) and return its Path."""
        self.validate()
        out = Path(path)
        ids = self.custom_ids
        bodies = self._bodies
        bounds = [start for start, _, _ in self._runs[1:]] + [len(bodies)]
        with open(out, "wb", buffering=1 << 20) as f:
            for (start, url, _), end in zip(self._runs, bounds, strict=True):
                for lo in range(start, end, 2048):  # ~1 MB per write: memory stays bounded
                    hi = min(end, lo + 2048)
                    f.write(encode_block(ids[lo:hi], url, bodies[lo:hi]))
        return out

    def write_shards(
        self,
        directory: str | os.PathLike[str],
        *,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> list[Shard]:
        """Write one file per (endpoint, model) group, split by count and size, named by content hash."""
        self.validate()
        return write_shards(
            directory,
            ids=self.custom_ids,
            urls=self._expand(1),
            models=self._expand(2),
            bodies=self._bodies,
            weights=[self._weights.get(i, 1) for i in range(len(self._ids))],
            max_requests=min(max_requests, MAX_REQUESTS),
            max_bytes=min(max_bytes, MAX_FILE_BYTES),
        )

    def estimate_cost(self, *, prices: Mapping[str, PriceLike] | None = None) -> CostEstimate:
        """Estimated USD at batch prices: a float (the lower bound) with `.low`, `.high` and token counts."""
        from batch_openai._estimate import estimate_cost

        self.validate()
        bodies = (orjson.loads(b"{" + body) for body in self._bodies)
        return estimate_cost(zip(self._expand(1), self._expand(2), bodies, strict=True), prices)

    # ---------------------------------------------------------------- submitting
    def _submit(
        self,
        client: Any,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        max_requests: int | None = None,
        retry: RetryPolicy | None = None,
        max_enqueued_tokens: int | Mapping[str, int] | None = None,
        queue_poll_interval: float = 30.0,
        registry: BatchRegistry | None = None,
    ) -> Steps[BatchJob]:
        """Upload and create one batch per shard (idempotent by content fingerprint); return the job.

        `max_enqueued_tokens` (one number, or `{model: tokens}`): hold each shard back until this job's
        batches in flight for its model, plus the shard, stay under that many estimated input tokens
        (polling every `queue_poll_interval` s). A shard alone over the cap is refused before any upload.
        `registry`: a `BatchRegistry` recording each batch once created and every change `refresh()` sees.
        """
        from batch_openai._builder_submit import submit_steps

        return (
            yield from submit_steps(
                self,
                client,
                description,
                metadata,
                max_requests,
                retry,
                max_enqueued_tokens,
                queue_poll_interval,
                registry,
            )
        )

    submit, async_submit = twins(_submit, bound=True)
