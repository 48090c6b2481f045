"""One function an endpoint: request body -> response body, for the mock responder."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

import orjson

from batch_openai.local import mock_text as txt
from batch_openai.local.schema_gen import generate
from batch_openai.tokens import count_tokens, request_input_tokens

_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")
_EMBED_DIMS = {"text-embedding-3-large": 3072, "text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}
_MOD_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_MOD_TRIGGERS = {"kill": "violence", "hate": "hate", "suicide": "self-harm", "bomb": "illicit/violent"}


class MockRequestError(Exception):
    """A request the real model endpoint would reject with a 400."""

    def __init__(self, message: str, code: str = "invalid_request", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def error_body(message: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """The body of a 4xx answer, as the endpoint writes it."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _is_reasoning(model: str) -> bool:
    return model.startswith(_REASONING_PREFIXES)


def _check_reasoning_params(body: dict[str, Any]) -> None:
    """gpt-5 / o-series reject what the README's compatibility table says they reject."""
    model = str(body.get("model", ""))
    if not _is_reasoning(model):
        return
    if "max_tokens" in body:
        raise MockRequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "unsupported_parameter",
            "max_tokens",
        )
    temp = body.get("temperature")
    if temp is not None and temp != 1:
        raise MockRequestError(
            "Unsupported value: 'temperature' does not support this value with this model. "
            "Only the default (1) value is supported.",
            "unsupported_value",
            "temperature",
        )
    if body.get("logprobs"):
        raise MockRequestError("This model does not support 'logprobs'.", "unsupported_parameter", "logprobs")


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _all_text(items: Any, instructions: Any = None) -> str:
    """Every system, developer and user text of a request (where a prompt names its JSON keys)."""
    parts = [instructions] if isinstance(instructions, str) else []
    if isinstance(items, str):
        parts.append(items)
    elif isinstance(items, list):
        for msg in items:
            if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer", "user"):
                continue
            content = msg.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return "\n".join(parts)


# A key the prompt names: "score" (integer 1-10), 'feedback', `label`: string ...
_KEY = re.compile(r"[\"'`]([A-Za-z_][A-Za-z0-9_]{0,63})[\"'`](?:\s*(?:\(([^)]{0,80})\)|:\s*([a-z]+)))?")
_RANGE = re.compile(r"(-?\d+)\s*(?:-|–|to|\.\.)\s*(-?\d+)")


def prompt_json_keys(text: str) -> dict[str, str]:
    """The JSON keys (and their type hints) a prompt asks for, in order; empty if it names none."""
    at = text.lower().find("json")
    if at < 0:
        return {}
    keys: dict[str, str] = {}
    for m in _KEY.finditer(text, at):
        keys.setdefault(m.group(1), (m.group(2) or m.group(3) or "").strip().lower())
    return keys


def _value_for(hint: str, rng: random.Random, prompt: str) -> Any:
    """A value of the simple type a prompt's hint names ("integer 1-10", "boolean", "list", ...)."""
    span = _RANGE.search(hint)
    lo, hi = (int(span.group(1)), int(span.group(2))) if span else (1, 10)
    if any(w in hint for w in ("int", "whole", "count", "score", "rating")):
        return rng.randint(min(lo, hi), max(lo, hi))
    if any(w in hint for w in ("float", "number", "decimal", "probability", "confidence")):
        low, high = (lo, hi) if span else (0, 1)
        return round(rng.uniform(min(low, high), max(low, high)), 2)
    if "bool" in hint or "true/false" in hint:
        return rng.random() < 0.5
    if any(w in hint for w in ("list", "array")):
        return [txt.sentence(rng, "") for _ in range(rng.randint(1, 3))]
    return txt.sentence(rng, prompt)


def _structured(fmt: dict[str, Any] | None, rng: random.Random, prompt: str, context: str = "") -> str:
    """Reply text honouring a chat `response_format` / responses `text.format`."""
    kind = (fmt or {}).get("type", "text")
    if kind == "json_schema":
        schema = fmt.get("schema") if "schema" in fmt else (fmt.get("json_schema") or {}).get("schema")
        return orjson.dumps(generate(schema or {}, rng)).decode()
    if kind == "json_object":
        keys = prompt_json_keys(context or prompt)
        if not keys:
            return orjson.dumps({"answer": txt.sentence(rng, prompt)}).decode()
        return orjson.dumps({k: _value_for(h, rng, prompt) for k, h in keys.items()}).decode()
    return txt.sentence(rng, prompt)


def _tool_to_call(body: dict[str, Any], rng: random.Random, *, flat: bool) -> dict[str, Any] | None:
    """The function tool to call, or None for a text answer."""
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"
    ]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    fns = [t if flat else t.get("function", {}) for t in tools]
    if isinstance(choice, dict):
        wanted = choice.get("name") or (choice.get("function") or {}).get("name")
        return next((f for f in fns if f.get("name") == wanted), fns[0])
    if choice == "required":
        return rng.choice(fns)
    # auto: call a tool unless the model just got a tool's result back.
    items = body.get("messages") or body.get("input")
    if isinstance(items, list) and items:
        last = items[-1]
        if isinstance(last, dict) and (
            last.get("role") == "tool" or last.get("type") == "function_call_output"
        ):
            return None
    return rng.choice(fns)


def _usage_chat(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completions(body: dict[str, Any], rng: random.Random, digest: str, seed: int) -> dict[str, Any]:
    """`/v1/chat/completions`: text, `response_format`, tools, `n`, logprobs, token limits."""
    _check_reasoning_params(body)
    model = str(body["model"])
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockRequestError("'messages' must be a non-empty array.", "invalid_value", "messages")
    prompt = _last_user_text(messages)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    n = int(body.get("n") or 1)
    top = int(body.get("top_logprobs") or 0)
    choices = []
    completion_tokens = 0
    for index in range(n):
        tool = _tool_to_call(body, rng, flat=False)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        logprobs = None
        if tool is not None:
            args = orjson.dumps(generate(tool.get("parameters") or {"type": "object"}, rng)).decode()
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:12]}{index:02d}{rng.getrandbits(32):08x}",
                    "type": "function",
                    "function": {"name": tool.get("name", "function"), "arguments": args},
                }
            ]
            finish = "tool_calls"
            completion_tokens += count_tokens(args) + 3
        else:
            reply = _structured(body.get("response_format"), rng, prompt, _all_text(messages))
            text, finish = txt.limit_text(reply, limit)
            message["content"] = text
            completion_tokens += count_tokens(text)
            if body.get("logprobs"):
                logprobs = {"content": txt.chat_logprobs(rng, text, top, prompt), "refusal": None}
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish})
    prompt_tokens = request_input_tokens("/v1/chat/completions", body)
    return {
        "id": f"chatcmpl-{digest[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage_chat(prompt_tokens, completion_tokens),
        "service_tier": "default",
        "system_fingerprint": "fp_local_mock",
    }


def responses(body: dict[str, Any], rng: random.Random, digest: str, seed: int) -> dict[str, Any]:
    """`/v1/responses`: output_text messages, `text.format` json_schema, function calls."""
    model = str(body["model"])
    if _is_reasoning(model) and body.get("temperature") not in (None, 1):
        raise MockRequestError(
            "Unsupported parameter: 'temperature'.", "unsupported_parameter", "temperature"
        )
    inp = body.get("input")
    prompt = _last_user_text(inp)
    fmt = (body.get("text") or {}).get("format")
    limit = body.get("max_output_tokens")
    tool = _tool_to_call(body, rng, flat=True)
    output: list[dict[str, Any]]
    status, incomplete = "completed", None
    if tool is not None:
        args = orjson.dumps(generate(tool.get("parameters") or {"type": "object"}, rng)).decode()
        output = [
            {
                "type": "function_call",
                "id": f"fc_{digest[:24]}",
                "call_id": f"call_{digest[8:20]}",
                "name": tool.get("name", "function"),
                "arguments": args,
                "status": "completed",
            }
        ]
        out_tokens = count_tokens(args) + 3
    else:
        reply = _structured(fmt, rng, prompt, _all_text(inp, body.get("instructions")))
        text, finish = txt.limit_text(reply, limit)
        if finish == "length":
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        output = [
            {
                "type": "message",
                "id": f"msg_{digest[:24]}",
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        ]
        out_tokens = count_tokens(text)
    in_tokens = request_input_tokens("/v1/responses", body)
    return {
        "id": f"resp_{digest}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": limit,
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "metadata": body.get("metadata") or {},
        "usage": {
            "input_tokens": in_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tokens + out_tokens,
        },
    }


def _inputs(value: Any) -> list[Any]:
    if isinstance(value, list) and value and all(isinstance(x, int) for x in value):
        return [value]
    return value if isinstance(value, list) else [value]


def embed_vector(seed_key: bytes, item: Any, dims: int) -> array:
    """A float32 unit vector fixed by seed, model and input alone (batching does not change it)."""
    h = hashlib.blake2b(orjson.dumps(item), digest_size=8, key=seed_key[:64]).digest()
    gen = random.Random(int.from_bytes(h, "little"))
    vec = [gen.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return array("f", (x / norm for x in vec))


def embeddings(body: dict[str, Any], rng: random.Random, digest: str, seed: int) -> dict[str, Any]:
    """`/v1/embeddings`: deterministic unit vectors, `dimensions`, `encoding_format`."""
    model = str(body["model"])
    dims = body.get("dimensions") or _EMBED_DIMS.get(model, 1536)
    if not isinstance(dims, int) or dims < 1 or dims > _EMBED_DIMS.get(model, 3072):
        raise MockRequestError(
            f"Invalid 'dimensions': {dims!r} is not supported by {model}.", "invalid_value"
        )
    key = f"{seed}:{model}".encode()
    data = []
    for index, item in enumerate(_inputs(body.get("input"))):
        vec = embed_vector(key, item, dims)
        if body.get("encoding_format") == "base64":
            if sys.byteorder != "little":
                vec.byteswap()  # the API's base64 is little-endian float32
            emb: Any = base64.b64encode(vec.tobytes()).decode()
        else:
            emb = [round(float(x), 8) for x in vec]
        data.append({"object": "embedding", "index": index, "embedding": emb})
    tokens = request_input_tokens("/v1/embeddings", body)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def completions(body: dict[str, Any], rng: random.Random, digest: str, seed: int) -> dict[str, Any]:
    """`/v1/completions` (legacy): text per prompt and `n`, `max_tokens` default 16, `echo`, logprobs."""
    prompts = _inputs(body.get("prompt"))
    limit = body.get("max_tokens", 16)
    n = int(body.get("n") or 1)
    choices = []
    out_tokens = 0
    for p in prompts:
        prompt = p if isinstance(p, str) else ""
        for _ in range(n):
            text, finish = txt.limit_text(" " + txt.sentence(rng, prompt), limit)
            out_tokens += count_tokens(text)
            logprobs = None
            if body.get("logprobs") is not None:
                entries = txt.chat_logprobs(rng, text, int(body["logprobs"]) + 1, prompt)
                offsets, pos = [], len(prompt)
                for e in entries:
                    offsets.append(pos)
                    pos += len(e["token"])
                logprobs = {
                    "tokens": [e["token"] for e in entries],
                    "token_logprobs": [e["logprob"] for e in entries],
                    "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
                    "text_offset": offsets,
                }
            full = prompt + text if body.get("echo") else text
            choices.append(
                {"text": full, "index": len(choices), "logprobs": logprobs, "finish_reason": finish}
            )
    in_tokens = request_input_tokens("/v1/completions", body)
    return {
        "id": f"cmpl-{digest[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": str(body["model"]),
        "choices": choices,
        "usage": {
            "prompt_tokens": in_tokens,
            "completion_tokens": out_tokens,
            "total_tokens": in_tokens + out_tokens,
        },
    }


def moderations(body: dict[str, Any], rng: random.Random, digest: str, seed: int) -> dict[str, Any]:
    """`/v1/moderations`: low scores, flagged only on a few trigger words."""
    items = body.get("input")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        texts = [" ".join(str(p.get("text", "")) for p in items)]  # one multimodal input
    else:
        texts = [str(x) for x in _inputs(items)]
    results = []
    for text in texts:
        lower = text.lower()
        hits = {cat for word, cat in _MOD_TRIGGERS.items() if word in lower}
        scores = {
            c: (0.9 + 0.09 * rng.random()) if c in hits else round(rng.random() * 0.01, 6)
            for c in _MOD_CATEGORIES
        }
        results.append(
            {
                "flagged": bool(hits),
                "categories": {c: c in hits for c in _MOD_CATEGORIES},
                "category_scores": scores,
                "category_applied_input_types": {c: ["text"] for c in _MOD_CATEGORIES},
            }
        )
    return {
        "id": f"modr-{digest[:24]}",
        "model": str(body.get("model") or "omni-moderation-latest"),
        "results": results,
    }


HANDLERS: dict[str, Callable[[dict[str, Any], random.Random, str, int], dict[str, Any]]] = {
    "/v1/chat/completions": chat_completions,
    "/v1/responses": responses,
    "/v1/embeddings": embeddings,
    "/v1/completions": completions,
    "/v1/moderations": moderations,
}
