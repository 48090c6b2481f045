"""DataFrames in and out: a builder from a DataFrame's rows, a result as a DataFrame or joined onto one.

pandas is imported inside these functions only, so `import batch_openai` stays light.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from batch_openai._errors import BatchValidationError

if TYPE_CHECKING:
    import pandas as pd

    from batch_openai._builder import BatchRequestBuilder
    from batch_openai._result import BatchResult

__all__ = ["Row", "builder_from_dataframe", "join_dataframe", "result_to_pandas"]

BASE_COLUMNS = (
    "custom_id",
    "outcome",
    "status_code",
    "content",
    "error_code",
    "error",
    "refusal",
    "finish_reason",
    "model",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)
_TOKEN_COLUMNS = BASE_COLUMNS[-5:]


class Row(dict[str, Any]):
    """One DataFrame row for a `messages` callable: `row["col"]`, `row.col`, and `row.name` (the index)."""

    name: Any

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"row has no column {key!r}; columns: {sorted(self)}") from None


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return (isinstance(value, float) and math.isnan(value)) or value is _pd_na()
    except TypeError:
        return False


def _pd_na() -> Any:
    import pandas as pd

    return pd.NA


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BatchValidationError(
            f"messages template is not a valid format string ({exc}); write literal braces as {{{{ and }}}}"
        ) from None
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name or "." in name or "[" in name or name.isdigit():
            raise BatchValidationError(
                f"messages template field {{{name}}} must name a column, e.g. {{text}}; "
                "write literal braces as {{ and }}"
            )
        fields.append(name)
    return fields


def _rows(df: pd.DataFrame) -> Iterator[Row]:
    # itertuples is ~30x faster than iterrows; a Row is a plain dict, so templates and callables read it fast.
    columns = [str(c) for c in df.columns]
    for label, values in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        row = Row(zip(columns, values, strict=True))
        row.name = label
        yield row


def builder_from_dataframe(
    builder: BatchRequestBuilder,
    df: pd.DataFrame,
    *,
    model: str,
    messages: str | Callable[[Any], Any],
    custom_id: str | None = None,
    **params: Any,
) -> BatchRequestBuilder:
    """Add one chat request per row of `df` to `builder` (see `BatchRequestBuilder.from_dataframe`)."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise BatchValidationError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise BatchValidationError("the DataFrame has no rows; nothing to submit")
    columns = {str(c) for c in df.columns}
    if custom_id is not None and custom_id not in columns:
        raise BatchValidationError(
            f"custom_id column {custom_id!r} is not in the DataFrame; columns: {sorted(columns)} "
            "(or leave custom_id out to use the index)"
        )
    render: Callable[[Row], Any]
    if isinstance(messages, str):
        template = messages
        fields = _template_fields(template)
        absent = [f for f in fields if f not in columns]
        if absent:
            raise BatchValidationError(
                f"messages template uses {', '.join('{' + f + '}' for f in absent)}, not a column of the "
                f"DataFrame; columns: {sorted(columns)}"
            )

        def render(row: Row) -> Any:
            for f in fields:
                if _is_missing(row[f]):
                    raise BatchValidationError(
                        f"row {row.name!r}: column {f!r} is empty (None/NaN) but the template uses it; "
                        f"fill it or drop the row (df.dropna(subset=[{f!r}]))",
                        custom_id=str(row.name),
                    )
            return [{"role": "user", "content": template.format_map(row)}]

    elif callable(messages):
        render = messages
    else:
        raise BatchValidationError(
            "messages must be a template string with {column} fields or a callable(row) -> messages list"
        )
    for row in _rows(df):
        cid = row[custom_id] if custom_id is not None else row.name
        if _is_missing(cid):
            raise BatchValidationError(
                f"row {row.name!r} has no custom_id (None/NaN in {custom_id or 'the index'}); "
                "every row needs one"
            )
        builder.add(render(row), model=model, custom_id=str(cid), **dict(params))
    return builder


def _error_parts(error: Any) -> tuple[str | None, str | None]:
    if error is None:
        return None, None
    if isinstance(error, dict):
        code = error.get("code")
        return (None if code is None else str(code)), str(error.get("message") or code or error)
    return None, str(error)


def _finish_reason(body: Any) -> str | None:
    if type(body) is not dict:
        return None
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0].get("finish_reason")
    if body.get("object") == "response":
        details = body.get("incomplete_details") or {}
        return (
            details.get("reason")
            if isinstance(details, dict) and details.get("reason")
            else body.get("status")
        )
    return None


def result_to_pandas(
    result: BatchResult, model: type | None = None, *, response: bool = False
) -> pd.DataFrame:
    """One row per item (input order when ids are known); a Pydantic `model` adds its fields as columns."""
    import pandas as pd

    from batch_openai._pricing import usage_numbers

    cols: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
    bodies: list[Any] = []
    validate = None
    parsed_rows: list[dict[str, Any] | None] = []
    parse_errors: list[str | None] = []
    if model is not None:
        from batch_openai._items import validator

        validate = validator(model)
    for item in result:  # streamed: one decode of each body for usage, model and finish reason
        body = item.raw_response if item.ok else None
        usage = body.get("usage") if type(body) is dict else None
        code, message = _error_parts(item.error)
        cols["custom_id"].append(item.custom_id)
        cols["outcome"].append(str(item.outcome))
        cols["status_code"].append(item.status_code)
        cols["content"].append(item.content)
        cols["error_code"].append(code)
        cols["error"].append(message)
        cols["refusal"].append(_refusal(body))
        cols["finish_reason"].append(_finish_reason(body))
        cols["model"].append(body.get("model") if type(body) is dict else None)
        if isinstance(usage, dict):
            inp, cached, out, reasoning = usage_numbers(usage)
            total = usage.get("total_tokens", inp + out)
            for name, value in zip(_TOKEN_COLUMNS, (inp, cached, out, reasoning, total), strict=True):
                cols[name].append(value)
        else:
            for name in _TOKEN_COLUMNS:
                cols[name].append(None)
        if response:
            bodies.append(body)
        if validate is not None:
            parsed, err = _parse_one(validate, item)
            parsed_rows.append(parsed)
            parse_errors.append(err)
    frame = pd.DataFrame(cols)
    frame["status_code"] = frame["status_code"].astype("Int64")
    for name in _TOKEN_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    if response:
        frame["response"] = bodies
    if model is not None:
        fields = _parsed_frame(parsed_rows, model, set(frame.columns))
        frame = pd.concat([frame, fields], axis=1)
        frame["parse_error"] = parse_errors
    expected = result._expected
    if expected:  # streamed in file order: put it back in input order
        position = {cid: i for i, cid in enumerate(expected)}
        order = frame["custom_id"].map(position).fillna(len(position))
        frame = frame.iloc[order.argsort(kind="stable")].reset_index(drop=True)
    return frame


def _refusal(body: Any) -> str | None:
    from batch_openai._items import _refusal_of

    return _refusal_of(body) if body is not None else None


def _parse_one(validate: Callable[[Any], Any], item: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not item.ok:
        return None, None  # the outcome and error columns already say why
    if item.content is None:
        refusal = item.refusal
        return None, f"refused: {refusal}" if refusal else "no content (tool call or empty response)"
    try:
        value = validate(item.content)
    except Exception as exc:  # pydantic.ValidationError and JSON errors alike
        text = str(exc).replace("\n", " ")
        return None, f"invalid: {text[:300]}"
    dump = value.model_dump() if hasattr(value, "model_dump") else {"value": value}
    return dump, None


def _parsed_frame(rows: list[dict[str, Any] | None], model: type, taken: set[str]) -> pd.DataFrame:
    import pandas as pd

    names = list(getattr(model, "model_fields", {}) or {"value": None})
    # A field named like a base column (content, error …) gets a `parsed_` prefix instead of clobbering it.
    columns = {n: (f"parsed_{n}" if n in taken else n) for n in names}
    data = {columns[n]: [None if r is None else r.get(n) for r in rows] for n in names}
    # Nullable dtypes: an int field stays Int64 when some rows did not parse, instead of becoming float.
    return pd.DataFrame(data).convert_dtypes()


def join_dataframe(
    result: BatchResult, df: pd.DataFrame, *, on: str | None = None, model: type | None = None
) -> pd.DataFrame:
    """`df` (a copy) with the result's columns, matched by custom_id to `df[on]` or to the index."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"join_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    if on is not None and on not in df.columns:
        raise KeyError(
            f"column {on!r} is not in the DataFrame; pass on=<the custom_id column> or on=None (index)"
        )
    keys = (df[on] if on is not None else df.index.to_series()).map(str)
    frame = result_to_pandas(result, model).set_index("custom_id")
    out = df.copy()
    for col in frame.columns:
        name = col if col not in out.columns else f"{col}_result"
        column = frame[col].reindex(keys.to_numpy())
        column.index = out.index  # positional: keeps the column's dtype (Int64 tokens stay Int64)
        out[name] = column
    return out
