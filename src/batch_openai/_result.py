"""`BatchResult`: every request's outcome, streamed from the batch's output and error files.

Order: input order whenever the input ids (`expected_ids`) are known, for iteration and lists alike (each
id's first line, or a `missing` item, at its input position; lines naming no expected id come last, in file
order); file order when they are not.

Memory: iterating a result (`for item in result`) streams the files line by line and holds no list, so a
million-line result iterates in bounded memory. When the lines on disk already follow the input order (a
single-shard batch, usually) they are streamed as read; from the first line that does not, the rest are
indexed by custom_id -> file offset (16 bytes per expected id, no objects) and read back in input order.
`parse` streams too. `.items`, `.succeeded`, `.failed`, `parse_each`, `join` and `save` build the list once
and keep it.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from batch_openai._errors import BatchParseError
from batch_openai._items import BatchResultItem, JoinedItem, Outcome, ParsedItem, item_from_line, validators
from batch_openai._jsonl import iter_lines
from batch_openai._usage import TokenCounts, TokenUsage, summarise_usage

if TYPE_CHECKING:
    import pandas as pd

    from batch_openai._pricing import PriceLike

__all__ = ["BatchResult"]

M = TypeVar("M")
I = TypeVar("I")  # noqa: E741
V = TypeVar("V")

_CHUNK = 1 << 20
_loads = orjson.loads


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
        batch_usage: TokenCounts | None = None,
    ) -> None:
        self._batch_usage = batch_usage  # the batches' own `usage`, to check the line sums against
        self._usage: TokenUsage | None = None
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
        usages = [r._batch_usage for r in results]
        batch_usage = sum(usages, TokenCounts()) if usages and None not in usages else None  # type: ignore[arg-type]
        if all(r._items is None for r in results):
            return cls(
                files=files,
                expected_ids=expected_ids,
                keepalive=[r._keepalive for r in results],
                batch_usage=batch_usage,
            )
        items = _order([i for r in results for i in r], expected_ids)
        return cls(items, expected_ids=expected_ids, batch_usage=batch_usage)

    # ---------------------------------------------------------------- streaming
    def _stream(self) -> Iterator[BatchResultItem]:
        """Every item in file order (then `missing` ones): for counting and summing, where order is moot."""
        seen: set[str] | None = set() if self._expected is not None else None
        endpoint = self._endpoint
        for path in self._files:
            source = path.name
            for number, line in iter_lines(path):
                item = item_from_line(line, endpoint, number=number, source=source)
                # custom_id "": an unreadable line, reported as failed and never deduplicated
                if seen is not None and item.custom_id:
                    if item.custom_id in seen:
                        continue  # a duplicated line: the first one counts
                    seen.add(item.custom_id)
                yield item
        if seen is not None and self._expected is not None:
            for cid in self._expected:
                if cid not in seen:
                    seen.add(cid)
                    yield self._missing(cid)

    def _missing(self, cid: str) -> BatchResultItem:
        return BatchResultItem(
            cid,
            Outcome.MISSING,
            error={"code": "missing", "message": "no line for this request in the output or error file"},
            endpoint=self._endpoint,
        )

    def _item_entry(self, line: bytes, number: int, source: str) -> tuple[str, BatchResultItem]:
        item = item_from_line(line, self._endpoint, number=number, source=source)
        return item.custom_id, item

    def _in_order(
        self,
        decode: Callable[[bytes, int, str], tuple[str, V]],
        missing: Callable[[str], V | None],
    ) -> Iterator[V]:
        """`decode(line, number, source)` -> (custom_id, value) of every line, yielded in input order.

        Streams while the lines follow `expected_ids`; from the first line that does not, the rest are
        indexed by position (file offsets in arrays, no objects) and read back in input order. Missing
        requests (`missing(cid)`, skipped when None) sit at their input position; lines naming no expected
        id (or none at all: unreadable lines) come last, in file order.
        """
        files, names = self._files, [p.name for p in self._files]
        expected = self._expected
        if expected is None:  # no input order to follow: file order
            for fidx, path in enumerate(files):
                source = names[fidx]
                with open(path, "rb", buffering=_CHUNK) as f:
                    for number, line in enumerate(f, 1):
                        if not line.isspace():
                            yield decode(line, number, source)[1]
            return
        n, k = len(expected), 0  # expected[:k] have been yielded
        position: dict[str, int] | None = None  # built at the first line out of step, if any
        extras: list[tuple[int, int, int]] = []  # (file, offset, number) of lines naming no expected id
        # The lines are read here rather than from _located_lines: this loop runs once per result line.
        for fidx, path in enumerate(files):
            source = names[fidx]
            with open(path, "rb", buffering=_CHUNK) as f:
                offset = 0
                for number, line in enumerate(f, 1):
                    at, offset = offset, offset + len(line)
                    if line.isspace():
                        continue
                    cid, value = decode(line, number, source)
                    if k < n and cid == expected[k]:  # the common case: the next expected line
                        k += 1
                        yield value
                        continue
                    if position is None:
                        position = _positions(expected)
                    pos = position.get(cid) if cid else None
                    if pos is None:
                        extras.append((fidx, at, number))
                    elif pos > k:  # out of input order: index the rest of the lines, read them back
                        rest = _rest_of_lines(f, fidx, offset, number, files)
                        yield from self._reordered(
                            rest, (fidx, at, number, pos), k, position, extras, decode, missing
                        )
                        return
                    # else pos < k: a duplicate of a line already yielded (the first one counts)
        if k < n:  # never seen: every remaining request is missing
            if position is None:
                position = _positions(expected)
            for j in range(k, n):
                cid = expected[j]
                if position[cid] == j and (value := missing(cid)) is not None:
                    yield value
        yield from self._reread(extras, decode)

    def _reordered(
        self,
        lines: Iterator[tuple[int, int, int, bytes]],
        first: tuple[int, int, int, int],
        k: int,
        position: dict[str, int],
        extras: list[tuple[int, int, int]],
        decode: Callable[[bytes, int, str], tuple[str, V]],
        missing: Callable[[str], V | None],
    ) -> Iterator[V]:
        """The rest of `lines` (from `first`, the line at input position first[3]) in input order."""
        expected = self._expected
        assert expected is not None
        n, nfiles = len(expected), len(self._files)
        where = array("q", [-1]) * n  # input position -> offset * nfiles + file index of its first line
        numbers = array("q", [0]) * n
        fidx, offset, number, pos = first
        where[pos], numbers[pos] = offset * nfiles + fidx, number
        for fidx, offset, number, line in lines:
            cid = _line_custom_id(line)
            pos = position.get(cid) if cid else None  # type: ignore[assignment]
            if pos is None:
                extras.append((fidx, offset, number))
            elif pos >= k and where[pos] < 0:  # else a duplicate line: the first one counts
                where[pos], numbers[pos] = offset * nfiles + fidx, number
        names = [p.name for p in self._files]
        handles = [open(p, "rb") for p in self._files]  # noqa: SIM115 - closed below
        try:
            for j in range(k, n):
                at = where[j]
                if at >= 0:
                    f = handles[at % nfiles]
                    f.seek(at // nfiles)
                    yield decode(f.readline(), numbers[j], names[at % nfiles])[1]
                else:
                    cid = expected[j]
                    if position[cid] == j and (value := missing(cid)) is not None:
                        yield value
        finally:
            for f in handles:
                f.close()
        yield from self._reread(extras, decode)

    def _reread(
        self, located: list[tuple[int, int, int]], decode: Callable[[bytes, int, str], tuple[str, V]]
    ) -> Iterator[V]:
        """The values of the lines at (file, offset, number), in that order."""
        if not located:
            return
        handles = [open(p, "rb") for p in self._files]  # noqa: SIM115 - closed below
        try:
            for fidx, offset, number in located:
                f = handles[fidx]
                f.seek(offset)
                yield decode(f.readline(), number, self._files[fidx].name)[1]
        finally:
            for f in handles:
                f.close()

    def __iter__(self) -> Iterator[BatchResultItem]:
        """Every item, in input order when the input ids are known; streamed from disk (see the module)."""
        if self._items is not None:
            return iter(self._items)
        return self._in_order(self._item_entry, self._missing)

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
            self._items = list(self._in_order(self._item_entry, self._missing))
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
        for item in self._items if self._items is not None else self._stream():  # any order will do
            counts[item.outcome] += 1
        return counts

    @property
    def usage(self) -> TokenUsage:
        """Token usage summed over the succeeded responses (streamed once, then kept; see `TokenUsage`).

        A dict of the raw sums, with `.input_tokens`, `.cached_tokens`, `.output_tokens`,
        `.reasoning_tokens`, `.total_tokens`, `.by_model`, and `.matches_batch` against the batch's `usage`.
        """
        if self._usage is None:
            items = self._items if self._items is not None else self._stream()  # any order will do
            self._usage = summarise_usage(items, self._batch_usage)
        return self._usage

    @property
    def cost(self) -> float | None:
        """USD at batch prices (see `batch_openai.BATCH_PRICES`); None when a model's price is unknown."""
        return self.usage.cost()

    def cost_for(self, prices: Mapping[str, PriceLike] | None = None) -> float | None:
        """USD with your own prices `{model: [input, output]}` or `[input, cached_input, output]` per 1M."""
        return self.usage.cost(prices)

    # ---------------------------------------------------------------- DataFrames (pandas loaded on call)
    def to_pandas(self, model: type | None = None, *, response: bool = False) -> pd.DataFrame:
        """One row per item: custom_id, outcome, content, error, tokens …; a Pydantic `model`'s fields too."""
        from batch_openai._frames import result_to_pandas

        return result_to_pandas(self, model, response=response)

    def join_dataframe(
        self, df: pd.DataFrame, *, on: str | None = None, model: type | None = None
    ) -> pd.DataFrame:
        """`df` with the result columns added, matched by custom_id (`on` column, default the index)."""
        from batch_openai._frames import join_dataframe

        return join_dataframe(self, df, on=on, model=model)

    def get(self, custom_id: str) -> BatchResultItem | None:
        """The item for `custom_id`, or None."""
        return next((i for i in self.items if i.custom_id == custom_id), None)

    # ---------------------------------------------------------------- parsing and joining
    def parse_each(self, model: type[M]) -> list[ParsedItem[M]]:
        """Validate every item's content into `model`, never raising: each entry has a value or a reason."""
        _, validate = validators(model)
        out: list[ParsedItem[M]] = []
        for item in self.items:
            value, reason = None, _failure_reason(item)
            if reason is None:
                try:
                    value = validate(item.content)
                except Exception as exc:  # pydantic.ValidationError and JSON errors alike
                    reason = f"invalid: {_short(exc)}"
            out.append(ParsedItem(item.custom_id, value, reason, item))
        return out

    def _content_entry(
        self, line: bytes, number: int, source: str
    ) -> tuple[str, tuple[str, str] | BatchResultItem]:
        """A chat line that succeeded with str content -> (id, (id, content)); any other -> (id, item).

        `parse` needs only the content: reading it straight from the decoded line skips building an
        item; every other line goes through `item_from_line`, which gives the same id and content for these.
        """
        try:
            # Indexing succeeds only through dicts (JSON keys are strings) and a non-empty list of them.
            obj = _loads(line)
            response = obj["response"]
            content = response["body"]["choices"][0]["message"]["content"]
            cid = obj["custom_id"]
            status = response["status_code"]
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            pass
        else:
            if (
                type(content) is str
                and type(cid) is str
                and cid
                and type(status) is int
                and 200 <= status < 300
                and not obj.get("error")
            ):
                return cid, (cid, content)
        item = item_from_line(line, self._endpoint, number=number, source=source)
        return item.custom_id, item

    def parse(self, model: type[M]) -> list[M]:
        """Validate each succeeded item's content into `model`; raise `BatchParseError` listing failures.

        Streams the files (in input order when the input ids are known) unless `.items` is built already.
        """
        validate_json, validate = validators(model)
        parsed: list[M] = []
        failures: list[tuple[str, str]] = []
        values: Iterable[tuple[str, str] | BatchResultItem] = (
            self._items if self._items is not None else self._in_order(self._content_entry, _no_value)
        )
        for value in values:
            if type(value) is tuple:  # a succeeded chat answer: (custom_id, content)
                try:
                    parsed.append(validate_json(value[1]))
                except Exception as exc:  # pydantic.ValidationError and JSON errors alike
                    failures.append((value[0], f"invalid: {_short(exc)}"))
                continue
            item: BatchResultItem = value  # type: ignore[assignment]
            if item.outcome is not Outcome.SUCCEEDED:
                continue
            reason = _failure_reason(item)
            if reason is None:
                try:
                    parsed.append(validate(item.content))
                except Exception as exc:
                    reason = f"invalid: {_short(exc)}"
            if reason is not None:
                failures.append((item.custom_id, reason))
        if failures:
            raise BatchParseError(failures, parsed=parsed)
        return parsed

    def join(self, inputs: Iterable[I], key: Callable[[I], str]) -> list[JoinedItem[I]]:
        """Pair each input with its result by custom_id (`key(input)`); `output` is None when absent."""
        by_id = {i.custom_id: i for i in self.items}
        return [JoinedItem(x, by_id.get(key(x))) for x in inputs]

    def save(self, path: str | os.PathLike[str]) -> Path | str:
        """Write one JSON line per item (custom_id, outcome, content, error, usage, response ...) to a
        path or a URL (`s3://...`, see `batch_openai.storage`); the file appears whole or not at all.
        Returns the Path (the URL as given for a URL)."""
        from batch_openai.storage import atomic_write, is_url, local_path

        with atomic_write(path) as f:
            for item in self.items:
                f.write(orjson.dumps(item.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
        return str(path) if is_url(path) else local_path(path)

    def __repr__(self) -> str:
        if self._items is None and self._len is None:
            return f"BatchResult(files={[str(f) for f in self._files]})"
        return f"BatchResult({len(self)} items)"


def _located_lines(files: Sequence[Path]) -> Iterator[tuple[int, int, int, bytes]]:
    """(file index, byte offset, 1-based line number, line) of every non-blank line of `files`."""
    for fidx, path in enumerate(files):
        with open(path, "rb", buffering=_CHUNK) as f:
            offset = 0
            for number, line in enumerate(f, 1):
                if not line.isspace():
                    yield fidx, offset, number, line
                offset += len(line)


def _rest_of_lines(
    f: Any, fidx: int, offset: int, last: int, files: Sequence[Path]
) -> Iterator[tuple[int, int, int, bytes]]:
    """`_located_lines` from just after line `last` (ending at `offset`) of open file `f` (files[fidx])."""
    for number, line in enumerate(f, last + 1):
        if not line.isspace():
            yield fidx, offset, number, line
        offset += len(line)
    for later, where, num, line in _located_lines(files[fidx + 1 :]):
        yield fidx + 1 + later, where, num, line


def _positions(expected: Sequence[str]) -> dict[str, int]:
    """custom_id -> its first input position."""
    position: dict[str, int] = {}
    for i, cid in enumerate(expected):
        position.setdefault(cid, i)
    return position


def _line_custom_id(line: bytes) -> str:
    """The custom_id `item_from_line` would give the line ("" when it has no usable one)."""
    try:
        obj = _loads(line)
    except orjson.JSONDecodeError:
        return ""
    cid = obj.get("custom_id") if type(obj) is dict else None
    return cid if type(cid) is str else ""


def _order(items: list[BatchResultItem], expected: Sequence[str] | None) -> list[BatchResultItem]:
    if not expected:
        return items
    position = {cid: i for i, cid in enumerate(expected)}
    last = len(position)
    return sorted(items, key=lambda it: position.get(it.custom_id, last))


def _failure_reason(item: BatchResultItem) -> str | None:
    """Why `item` has nothing to parse (not succeeded, refused, no content), or None when it has content."""
    if item.outcome is not Outcome.SUCCEEDED:
        return f"{item.outcome.value}: {_error_text(item.error)}"
    if item.content is None:  # only then can it be a refusal: no need to decode the body otherwise
        refusal = item.refusal
        return f"refused: {refusal}" if refusal else "no content (tool call or empty response)"
    return None


def _no_value(cid: str) -> None:
    """`parse` skips missing requests (they did not succeed)."""
    return None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."
