"""`BatchResult`: every request's outcome, streamed from the batch's output and error files.

Memory: iterating a result (`for item in result`) streams the files line by line and holds no list, so a
million-line result iterates in bounded memory; the order is file order (output files, then error files,
then `missing` items in input order). `.items`, `.succeeded`, `.failed`, `parse`, `join` and `save` build the
list once (input order when the input ids are known) and keep it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from batch_openai._errors import BatchParseError
from batch_openai._items import BatchResultItem, JoinedItem, Outcome, ParsedItem, item_from_line
from batch_openai._jsonl import iter_lines

__all__ = ["BatchResult"]

M = TypeVar("M")
I = TypeVar("I")  # noqa: E741


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_usage(total.setdefault(key, {}), value)


class BatchResult:
    """All results of a job: one `BatchResultItem` per request, with its `Outcome`."""

    def __init__(
        self,
        items: Iterable[BatchResultItem] | None = None,
        *,
        files: Sequence[str | os.PathLike[str]] = (),
        expected_ids: Sequence[str] | None = None,
        endpoint: str | None = None,
        keepalive: Any = None,
    ) -> None:
        self._files = [Path(f) for f in files]
        self._expected = list(expected_ids) if expected_ids is not None else None
        self._endpoint = endpoint
        self._items: list[BatchResultItem] | None = list(items) if items is not None else None
        self._len: int | None = None
        self._keepalive = keepalive  # e.g. the TemporaryDirectory holding downloaded files

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_files(
        cls,
        output_path: str | os.PathLike[str] | None = None,
        error_path: str | os.PathLike[str] | None = None,
        *,
        expected_ids: Sequence[str] | None = None,
        endpoint: str | None = None,
    ) -> BatchResult:
        """A result over local output/error files (read lazily); `expected_ids` adds `missing` items."""
        files = [Path(p) for p in (output_path, error_path) if p is not None]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"result file {str(f)!r} does not exist")
        return cls(files=files, expected_ids=expected_ids, endpoint=endpoint)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BatchResult:
        """Read back a file written by `save`."""
        items = []
        for _, line in iter_lines(path):
            d = orjson.loads(line)
            items.append(
                BatchResultItem(
                    d["custom_id"],
                    Outcome(d["outcome"]),
                    content=d.get("content"),
                    error=d.get("error"),
                    status_code=d.get("status_code"),
                    endpoint=d.get("endpoint"),
                    body=d.get("response"),
                )
            )
        return cls(items)

    @classmethod
    def merge(
        cls, results: Sequence[BatchResult], *, expected_ids: Sequence[str] | None = None
    ) -> BatchResult:
        """One result over several (e.g. the shards of one job)."""
        files = [f for r in results for f in r._files]
        if all(r._items is None for r in results):
            return cls(files=files, expected_ids=expected_ids, keepalive=[r._keepalive for r in results])
        return cls(_order([i for r in results for i in r], expected_ids), expected_ids=expected_ids)

    # ---------------------------------------------------------------- streaming
    def _stream(self) -> Iterator[BatchResultItem]:
        seen: set[str] | None = set() if self._expected is not None else None
        for path in self._files:
            for _, line in iter_lines(path):
                item = item_from_line(line, self._endpoint)
                if seen is not None:
                    if item.custom_id in seen:
                        continue  # a duplicated line: the first one counts
                    seen.add(item.custom_id)
                yield item
        if seen is not None and self._expected is not None:
            for cid in self._expected:
                if cid not in seen:
                    yield BatchResultItem(
                        cid,
                        Outcome.MISSING,
                        error={
                            "code": "missing",
                            "message": "no line for this request in the output or error file",
                        },
                        endpoint=self._endpoint,
                    )

    def __iter__(self) -> Iterator[BatchResultItem]:
        """Every item; streamed from disk (file order) unless `.items` was already built."""
        if self._items is not None:
            return iter(self._items)
        return self._stream()

    def __len__(self) -> int:
        """Number of items (one per request, missing ones included)."""
        if self._items is not None:
            return len(self._items)
        if self._len is None:
            self._len = sum(1 for _ in self._stream())
        return self._len

    # ---------------------------------------------------------------- lists
    @property
    def items(self) -> list[BatchResultItem]:
        """Every item, in input order when the input ids are known (built once, then kept)."""
        if self._items is None:
            self._items = _order(list(self._stream()), self._expected)
        return self._items

    @property
    def succeeded(self) -> list[BatchResultItem]:
        """Items whose request succeeded (refusals and tool calls included)."""
        return [i for i in self.items if i.outcome is Outcome.SUCCEEDED]

    @property
    def failed(self) -> list[BatchResultItem]:
        """Every item that did not succeed; `.outcome` says failed, expired, cancelled or missing."""
        return [i for i in self.items if i.outcome is not Outcome.SUCCEEDED]

    @property
    def counts(self) -> dict[Outcome, int]:
        """How many items ended in each outcome (every outcome present, zeros included)."""
        counts = dict.fromkeys(Outcome, 0)
        for item in self:
            counts[item.outcome] += 1
        return counts

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage summed over every response that reports it."""
        total: dict[str, Any] = {}
        for item in self:
            if item.outcome is Outcome.SUCCEEDED:
                usage = item.usage
                if usage:
                    _add_usage(total, usage)
        return total

    def get(self, custom_id: str) -> BatchResultItem | None:
        """The item for `custom_id`, or None."""
        return next((i for i in self.items if i.custom_id == custom_id), None)

    # ---------------------------------------------------------------- parsing and joining
    def parse_each(self, model: type[M]) -> list[ParsedItem[M]]:
        """Validate every item's content into `model`, never raising: each entry has a value or a reason."""
        validate = _validator(model)
        out: list[ParsedItem[M]] = []
        for item in self.items:
            value, reason = None, None
            if item.outcome is not Outcome.SUCCEEDED:
                reason = f"{item.outcome.value}: {_error_text(item.error)}"
            elif item.content is None:  # only then can it be a refusal: no need to decode the body otherwise
                refusal = item.refusal
                reason = f"refused: {refusal}" if refusal else "no content (tool call or empty response)"
            else:
                try:
                    value = validate(item.content)
                except Exception as exc:  # pydantic.ValidationError and JSON errors alike
                    reason = f"invalid: {_short(exc)}"
            out.append(ParsedItem(item.custom_id, value, reason, item))
        return out

    def parse(self, model: type[M]) -> list[M]:
        """Validate each succeeded item's content into `model`; raise `BatchParseError` listing failures."""
        parsed: list[M] = []
        failures: list[tuple[str, str]] = []
        for p in self.parse_each(model):
            if p.item.outcome is not Outcome.SUCCEEDED:
                continue
            if p.error is None:
                parsed.append(p.value)  # type: ignore[arg-type]
            else:
                failures.append((p.custom_id, p.error))
        if failures:
            raise BatchParseError(failures, parsed=parsed)
        return parsed

    def join(self, inputs: Iterable[I], key: Callable[[I], str]) -> list[JoinedItem[I]]:
        """Pair each input with its result by custom_id (`key(input)`); `output` is None when absent."""
        by_id = {i.custom_id: i for i in self.items}
        return [JoinedItem(x, by_id.get(key(x))) for x in inputs]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one JSON line per item (custom_id, outcome, content, error, usage, response ...)."""
        out = Path(path)
        with open(out, "wb", buffering=1 << 20) as f:
            for item in self.items:
                f.write(orjson.dumps(item.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
        return out

    def __repr__(self) -> str:
        if self._items is None and self._len is None:
            return f"BatchResult(files={[str(f) for f in self._files]})"
        return f"BatchResult({len(self)} items)"


def _order(items: list[BatchResultItem], expected: Sequence[str] | None) -> list[BatchResultItem]:
    if not expected:
        return items
    position = {cid: i for i, cid in enumerate(expected)}
    last = len(position)
    return sorted(items, key=lambda it: position.get(it.custom_id, last))


def _validator(model: Any) -> Callable[[Any], Any]:
    if hasattr(model, "model_validate_json"):

        def validate(content: Any) -> Any:
            if isinstance(content, str):
                return model.model_validate_json(content)
            return model.model_validate(content)

        return validate
    from pydantic import TypeAdapter

    adapter = TypeAdapter(model)
    return lambda c: adapter.validate_json(c) if isinstance(c, str) else adapter.validate_python(c)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."
