"""The one token estimate: the library's cost and queue estimates, and the local server's usage and limits.

A token is a run of up to 4 letters, up to 3 digits, or one other symbol, together with the
whitespace before it (a close match to BPE tokenizers on English text: about 4 characters a
token). Chat prompts add 3 tokens per message and 3 for the reply, as OpenAI's cookbook counts;
an image part counts 85 tokens. Splitting text this way and joining the pieces gives the text back,
so the same rule also cuts outputs at `max_tokens` and yields the tokens of `logprobs`.

Part of the core (no FastAPI, no Prefect): `batch_openai.local` imports it from here, never the reverse.
"""

from __future__ import annotations

import os
import re
from typing import Any

import orjson

__all__ = [
    "PER_IMAGE",
    "PER_MESSAGE",
    "PER_REPLY",
    "TOKEN_RE",
    "content_tokens",
    "count_tokens",
    "file_input_tokens",
    "messages_tokens",
    "request_input_tokens",
    "split_tokens",
    "truncate_tokens",
]

TOKEN_RE = re.compile(r"\s*(?:[^\W\d_]{1,4}|\d{1,3}|[^\w\s]|_)|\s+")
PER_MESSAGE = 3
PER_REPLY = 3
PER_IMAGE = 85


def split_tokens(text: str) -> list[str]:
    """The token pieces of `text`; `"".join(split_tokens(t)) == t`."""
    return TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens `text` holds under the estimate."""
    return len(TOKEN_RE.findall(text))


def truncate_tokens(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` tokens of `text`, and whether anything was cut."""
    pieces = TOKEN_RE.findall(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[: max(limit, 0)]), True


def content_tokens(content: Any) -> int:
    """Tokens of a message `content`: a string, or a list of text/image parts."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, dict):
                kind = part.get("type", "")
                if "image" in kind or "file" in kind or "audio" in kind:
                    total += PER_IMAGE
                else:
                    total += count_tokens(str(part.get("text") or ""))
            else:
                total += count_tokens(str(part))
        return total
    return count_tokens(orjson.dumps(content).decode())


def messages_tokens(messages: Any) -> int:
    """Prompt tokens of a chat `messages` list."""
    if not isinstance(messages, list):
        return content_tokens(messages)
    total = PER_REPLY
    for msg in messages:
        if not isinstance(msg, dict):
            total += count_tokens(str(msg))
            continue
        total += PER_MESSAGE + content_tokens(msg.get("content"))
        if msg.get("tool_calls"):
            total += count_tokens(orjson.dumps(msg["tool_calls"]).decode())
        if msg.get("name"):
            total += 1
    return total


def request_input_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """Input tokens of one batch request, by endpoint."""
    extra = 0
    if body.get("tools"):
        extra += count_tokens(orjson.dumps(body["tools"]).decode())
    if endpoint == "/v1/chat/completions":
        return messages_tokens(body.get("messages")) + extra
    if endpoint == "/v1/responses":
        inp = body.get("input")
        base = messages_tokens(inp) if isinstance(inp, list) else content_tokens(inp)
        return base + content_tokens(body.get("instructions")) + extra
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return sum(content_tokens(x) if not isinstance(x, int) else 1 for x in _as_list(body.get("input")))
    if endpoint == "/v1/completions":
        return sum(content_tokens(x) for x in _as_list(body.get("prompt")))
    return content_tokens(body.get("prompt"))


def file_input_tokens(path: str | os.PathLike[str], endpoint: str | None = None) -> int:
    """Estimated input tokens of a batch-input JSONL file (what the service counts against its queue)."""
    total = 0
    with open(path, "rb") as f:
        for raw in f:
            if raw.isspace():
                continue
            line = orjson.loads(raw)
            total += request_input_tokens(endpoint or line.get("url", ""), line.get("body") or {})
    return total


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        # A list of token ids is one input, not many.
        if value and all(isinstance(x, int) for x in value):
            return [" ".join(["x"] * len(value))]
        return value
    return [value]
