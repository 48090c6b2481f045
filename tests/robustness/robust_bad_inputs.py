"""The catalogue of bad inputs for `batch-openai run`: each kind writes a file (or names a path) in a dir.

A kind is (name, writer, what the one-line error must mention). Writers take the directory and return
the input path to pass to the CLI; `extra` CLI arguments may come with a kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHAT = "/v1/chat/completions"


def req(
    custom_id: Any = "r0", body: Any = None, url: Any = CHAT, method: Any = "POST", omit: str = ""
) -> dict:
    """One request line as a dict; `omit` names a key to leave out."""
    if body is None:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": custom_id, "method": method, "url": url, "body": body}
    return {k: v for k, v in line.items() if k != omit}


def chat(model: str = "gpt-4o-mini", **params: Any) -> dict:
    """A chat body with `params` added."""
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **params}


def lines_file(*lines: dict | str | bytes) -> Callable[[Path], Path]:
    """A writer: two good requests, then the given lines (dicts as JSON, str/bytes as they are)."""

    def write(d: Path) -> Path:
        path = d / "in.jsonl"
        with open(path, "wb") as fh:
            for i in range(2):
                fh.write(json.dumps(req(f"good{i}")).encode() + b"\n")
            for line in lines:
                raw = (
                    line
                    if isinstance(line, bytes)
                    else line.encode()
                    if isinstance(line, str)
                    else json.dumps(line).encode()
                )
                fh.write(raw + b"\n")
        return path

    return write


def raw_file(data: bytes, name: str = "in.jsonl") -> Callable[[Path], Path]:
    """A writer of exactly these bytes."""

    def write(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return write


def oversize_line(d: Path) -> Path:
    """One request bigger than a whole batch file may be (200 MB), written in chunks."""
    path = d / "in.jsonl"
    with open(path, "wb") as fh:
        fh.write(
            b'{"custom_id":"big","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",'
        )
        fh.write(b'"messages":[{"role":"user","content":"')
        chunk = b"a" * (1 << 20)
        for _ in range(201):
            fh.write(chunk)
        fh.write(b'"}]}}\n')
    return path


@dataclass(frozen=True)
class BadInput:
    """One kind of bad input: how to make it and what the error line must name."""

    name: str
    make: Callable[[Path], Path]
    mentions: tuple[str, ...]
    extra: tuple[str, ...] = field(default=())
    slow: bool = False


STRICT_BROKEN = {
    "type": "json_schema",
    "json_schema": {
        "name": "s",
        "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    },
}

CATALOGUE: list[BadInput] = [
    BadInput("malformed-json", lines_file('{"custom_id": "x", "method": "POST",'), ("line 3", "JSON")),
    BadInput("not-an-object", lines_file("[1, 2, 3]"), ("line 3", "object")),
    BadInput("missing-custom-id", lines_file(req(omit="custom_id")), ("line 3", "custom_id")),
    BadInput("custom-id-not-string", lines_file(req(custom_id=17)), ("line 3", "custom_id")),
    BadInput("empty-custom-id", lines_file(req(custom_id="")), ("line 3", "custom_id")),
    BadInput("duplicate-custom-id", lines_file(req("good0")), ("good0", "duplicate")),
    BadInput("missing-method", lines_file(req(omit="method")), ("line 3", "method")),
    BadInput("method-not-post", lines_file(req(method="GET")), ("line 3", "POST")),
    BadInput("missing-url", lines_file(req(omit="url")), ("line 3", "url")),
    BadInput("unknown-url", lines_file(req(url="/v1/chat")), ("line 3", "/v1/chat")),
    BadInput("missing-body", lines_file(req(omit="body")), ("line 3", "body")),
    BadInput("body-not-object", lines_file(req(body=["x"])), ("line 3", "body")),
    BadInput(
        "missing-model", lines_file(req(body={"messages": [{"role": "user", "content": "x"}]})), ("model",)
    ),
    BadInput("stream-true", lines_file(req(body=chat(stream=True))), ("stream",)),
    BadInput("no-messages", lines_file(req(body={"model": "gpt-4o-mini"})), ("messages",)),
    BadInput("empty-messages", lines_file(req(body={"model": "gpt-4o-mini", "messages": []})), ("messages",)),
    BadInput(
        "unknown-role",
        lines_file(req(body={"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]})),
        ("robot",),
    ),
    BadInput(
        "model-refuses-temperature",
        lines_file(req(body=chat("gpt-5.4-mini", temperature=0.2))),
        ("temperature",),
    ),
    BadInput(
        "model-refuses-max-tokens", lines_file(req(body=chat("gpt-5-mini", max_tokens=20))), ("max_tokens",)
    ),
    BadInput(
        "broken-strict-schema",
        lines_file(req(body=chat(response_format=STRICT_BROKEN))),
        ("additionalProperties",),
    ),
    BadInput(
        "empty-embedding-input",
        lines_file(req(url="/v1/embeddings", body={"model": "text-embedding-3-small", "input": ""})),
        ("input",),
    ),
    BadInput(
        "non-utf8-bytes", lines_file(b'{"custom_id": "x\xff\xfe", "method": "POST"}'), ("line 3", "UTF-8")
    ),
    BadInput("utf8-bom", raw_file(b"\xef\xbb\xbf" + json.dumps(req()).encode() + b"\n"), ("line 1",)),
    BadInput(
        "nan-literal",
        lines_file(
            '{"custom_id": "n", "method": "POST", "url": "/v1/chat/completions", "body": '
            '{"model": "gpt-4o-mini", "temperature": NaN, "messages": [{"role": "user", "content": "x"}]}}'
        ),
        ("line 3",),
    ),
    BadInput("empty-file", raw_file(b""), ("no requests",)),
    BadInput("blank-lines-only", raw_file(b"\n  \n\n"), ("no requests",)),
    BadInput("missing-file", lambda d: d / "nowhere.jsonl", ("nowhere.jsonl", "does not exist")),
    BadInput("directory-not-file", lambda d: d, ("not a file",)),
    BadInput("bad-batch-size", lines_file(), ("--batch-size",), extra=("--batch-size", "0")),
    BadInput("oversize-line", oversize_line, ("line 1", "bytes"), slow=True),
]
