"""`BatchResult`: every request's outcome, streamed from the batch's output and error files.

Memory: iterating a result (`for item in result`) streams the files line by line and holds no list, so a
million-line result iterates in bounded memory; the order is file order (output files, then error files,
then `missing` items in input order). `.items`, `.succeeded`, `.failed`, `parse`, `join` and `save` build the
list once (input order when the input ids are known) and keep it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from batch_openai._errors import BatchParseError
from batch_openai._items import BatchResultItem, JoinedItem, Outcome, ParsedItem, item_from_line
from batch_openai._jsonl import iter_lines
from batch_openai._usage import TokenCounts, TokenUsage, summarise_usage

if TYPE_CHECKING:
    import pandas as pd

    from batch_openai._pricing import PriceLike

__all__ = ["BatchResult"]

M = TypeVar("M")
I = TypeVar("I")  # noqa: E741


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
        seen: set[str] | None = set() if self._expected is not None else None
        for path in self._files:
            for number, line in iter_lines(path):
                item = item_from_line(line, self._endpoint, number=number, source=path.name)
                # custom_id "": an unreadable line, reported as failed and never deduplicated
                if seen is not None and item.custom_id:
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
    def usage(self) -> TokenUsage:
        """Token usage summed over the succeeded responses (streamed once, then kept; see `TokenUsage`).

        A dict of the raw sums, with `.input_tokens`, `.cached_tokens`, `.output_tokens`,
        `.reasoning_tokens`, `.total_tokens`, `.by_model`, and `.matches_batch` against the batch's `usage`.
        """
        if self._usage is None:
            self._usage = summarise_usage(self, self._batch_usage)
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
