"""The mock responder over the real path: every endpoint, structured output, determinism, limits."""

from __future__ import annotations

import base64
import math
import random
from array import array
from typing import Any, Literal

import jsonschema
import orjson
import pytest
from local_helpers import chat_line, read_lines, submit, wait
from pydantic import BaseModel, ConfigDict, Field

from batch_openai.local import LocalBatchServer, MockResponder
from batch_openai.local.schema_gen import generate
from batch_openai.tokens import count_tokens, split_tokens


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str
    zip_code: str = Field(min_length=5, max_length=5)


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    age: int = Field(ge=18, le=99)
    score: float = Field(gt=0, lt=1)
    role: Literal["admin", "user", "guest"]
    tags: list[str] = Field(min_length=2, max_length=4)
    address: Address
    history: list[Address]
    nickname: str | None


SCHEMAS: list[dict[str, Any]] = [
    Person.model_json_schema(),
    {
        "type": "object",
        "properties": {"n": {"type": "integer", "multipleOf": 5, "minimum": 7, "maximum": 40}},
    },
    {"type": "array", "items": {"enum": [1, "two", None]}, "minItems": 3, "maxItems": 3},
    {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    },
    {"type": ["string", "null"], "format": "date-time"},
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "uniqueItems": True,
        "minItems": 5,
    },
    {"allOf": [{"type": "object", "properties": {"x": {"const": 1}}, "required": ["x"]}]},
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_generated_values_satisfy_the_schema(schema: dict[str, Any]) -> None:
    for seed in range(25):
        jsonschema.validate(generate(schema, random.Random(seed)), schema)


def test_token_pieces_rejoin_and_count() -> None:
    text = "Summarise: naïve café 12345 ok!\n"
    assert "".join(split_tokens(text)) == text
    assert count_tokens(text) == len(split_tokens(text)) == 12


def test_same_request_same_answer_and_seed_matters() -> None:
    body = chat_line(1)["body"]
    a = MockResponder(seed=7).respond("/v1/chat/completions", body)[1]
    b = MockResponder(seed=7).respond("/v1/chat/completions", dict(reversed(list(body.items()))))[1]
    c = MockResponder(seed=8).respond("/v1/chat/completions", body)[1]
    assert a["choices"] == b["choices"] and a["usage"] == b["usage"] and a["id"] == b["id"]
    assert a["choices"] != c["choices"]


def bodies(
    client: Any, lines: list[dict[str, Any]], endpoint: str = "/v1/chat/completions"
) -> dict[str, Any]:
    done = wait(client, submit(client, lines, endpoint=endpoint).id)
    assert done.status == "completed", done.errors
    out = {x["custom_id"]: x["response"] for x in read_lines(client, done.output_file_id)}
    out.update({x["custom_id"]: x["response"] for x in read_lines(client, done.error_file_id)})
    return out


def test_chat_structured_outputs_and_json_object(client: Any) -> None:
    schema = Person.model_json_schema()
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    lines = [chat_line(i, response_format=fmt) for i in range(10)]
    lines.append(chat_line("obj", response_format={"type": "json_object"}))
    out = bodies(client, lines)
    for i in range(10):
        content = out[f"req-{i}"]["body"]["choices"][0]["message"]["content"]
        Person.model_validate_json(content)
    assert isinstance(orjson.loads(out["req-obj"]["body"]["choices"][0]["message"]["content"]), dict)


def test_chat_logprobs_n_and_length_limit(client: Any) -> None:
    lines = [
        chat_line(
            "lp",
            content="Is this review positive? Reply Yes or No.",
            logprobs=True,
            top_logprobs=5,
            max_tokens=1,
        ),
        chat_line("n", n=3),
        chat_line("cut", max_tokens=2),
        chat_line("cut5", model="gpt-4o-mini", max_completion_tokens=3),
    ]
    out = bodies(client, lines)
    lp = out["req-lp"]["body"]["choices"][0]
    assert lp["message"]["content"] in ("Yes", "No")
    top = lp["logprobs"]["content"][0]["top_logprobs"]
    assert len(top) == 5 and {t["token"] for t in top} >= {"Yes", "No"}
    assert all(t["logprob"] <= 0 for t in top)
    n = out["req-n"]["body"]
    assert [c["index"] for c in n["choices"]] == [0, 1, 2]
    assert n["usage"]["completion_tokens"] == sum(count_tokens(c["message"]["content"]) for c in n["choices"])
    for cid, limit in (("req-cut", 2), ("req-cut5", 3)):
        choice = out[cid]["body"]["choices"][0]
        assert choice["finish_reason"] == "length" and count_tokens(choice["message"]["content"]) == limit
        assert out[cid]["body"]["usage"]["completion_tokens"] == limit


def test_reasoning_models_reject_what_the_readme_says(client: Any) -> None:
    lines = [
        {
            **chat_line(1, max_tokens=5),
            "body": {**chat_line(1)["body"], "model": "gpt-5.4-mini", "max_tokens": 5},
        },
        {**chat_line(2), "body": {**chat_line(2)["body"], "model": "gpt-5.4-mini", "temperature": 0.2}},
        {
            **chat_line(3),
            "body": {**chat_line(3)["body"], "model": "gpt-5.4-mini", "max_completion_tokens": 50},
        },
    ]
    out = bodies(client, lines)
    assert out["req-1"]["status_code"] == 400 and out["req-1"]["body"]["error"]["param"] == "max_tokens"
    assert out["req-2"]["status_code"] == 400 and out["req-2"]["body"]["error"]["param"] == "temperature"
    assert out["req-3"]["status_code"] == 200


def test_chat_tools(client: Any) -> None:
    params = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": params}}
    lines = [
        chat_line("call", tools=[tool]),
        chat_line("none", tools=[tool], tool_choice="none"),
    ]
    out = bodies(client, lines)
    choice = out["req-call"]["body"]["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(orjson.loads(call["function"]["arguments"]), params)
    assert out["req-none"]["body"]["choices"][0]["message"]["content"]


def test_responses_endpoint(client: Any) -> None:
    schema = Address.model_json_schema()
    line = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": "gpt-4o-mini",
            "input": "Where?",
            "text": {"format": {"type": "json_schema", "name": "addr", "schema": schema, "strict": True}},
        },
    }
    plain = {
        **line,
        "custom_id": "r2",
        "body": {"model": "gpt-4o-mini", "input": "Hi", "max_output_tokens": 16},  # the least the API takes
    }
    out = bodies(client, [line, plain], endpoint="/v1/responses")
    body = out["r1"]["body"]
    assert body["object"] == "response" and body["status"] == "completed"
    text = body["output"][0]["content"][0]
    assert text["type"] == "output_text"
    Address.model_validate_json(text["text"])
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    cut = out["r2"]["body"]
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}


def test_embeddings_are_deterministic_unit_vectors(client: Any) -> None:
    def line(cid: str, inp: Any, **kw: Any) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": inp, **kw}
        return {"custom_id": cid, "method": "POST", "url": "/v1/embeddings", "body": body}

    out = bodies(
        client,
        [
            line("a", "hello"),
            line("b", ["hello", "world"]),
            line("c", "hello", dimensions=64),
            line("d", "hello", encoding_format="base64"),
        ],
        endpoint="/v1/embeddings",
    )
    va = out["a"]["body"]["data"][0]["embedding"]
    vb = out["b"]["body"]["data"]
    assert len(va) == 1536 and abs(math.sqrt(sum(x * x for x in va)) - 1) < 1e-5
    assert va == vb[0]["embedding"] and va != vb[1]["embedding"]
    assert len(out["c"]["body"]["data"][0]["embedding"]) == 64
    decoded = array("f", base64.b64decode(out["d"]["body"]["data"][0]["embedding"]))  # little-endian here
    assert all(abs(a - b) < 1e-6 for a, b in zip(decoded, va, strict=True))
    assert out["b"]["body"]["usage"]["prompt_tokens"] == count_tokens("hello") + count_tokens("world")


def test_completions_and_moderations(client: Any) -> None:
    comp = {
        "custom_id": "c",
        "method": "POST",
        "url": "/v1/completions",
        "body": {"model": "gpt-3.5-turbo-instruct", "prompt": ["a", "b"], "max_tokens": 4, "logprobs": 2},
    }
    out = bodies(client, [comp], endpoint="/v1/completions")["c"]["body"]
    assert out["object"] == "text_completion" and len(out["choices"]) == 2
    assert all(count_tokens(c["text"]) <= 4 for c in out["choices"])
    assert len(out["choices"][0]["logprobs"]["tokens"]) == count_tokens(out["choices"][0]["text"])
    mod = {
        "custom_id": "m",
        "method": "POST",
        "url": "/v1/moderations",
        "body": {"input": ["nice day", "I will kill it"]},
    }
    res = bodies(client, [mod], endpoint="/v1/moderations")["m"]["body"]["results"]
    assert [r["flagged"] for r in res] == [False, True] and res[1]["categories"]["violence"] is True


def test_identical_requests_across_batches_get_identical_content() -> None:
    with LocalBatchServer(step_seconds=0, seed=3) as srv:
        client = srv.client(max_retries=0)
        first = bodies(client, [chat_line(i) for i in range(3)])
        second = bodies(client, [chat_line(i) for i in range(3)])
    for cid in first:
        assert first[cid]["body"]["choices"] == second[cid]["body"]["choices"]
        assert first[cid]["request_id"] != second[cid]["request_id"]
