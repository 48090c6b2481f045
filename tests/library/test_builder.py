"""The builder on its own: encoding, copying, ids, validation, model rules and sharding (no server)."""

from __future__ import annotations

import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib._parsing._completions import type_to_response_format_param
from openai.lib._parsing._responses import type_to_text_format_param
from pydantic import BaseModel

from batch_openai import BatchRequestBuilder, BatchValidationError, fingerprint_file

MSG = [{"role": "user", "content": "hi"}]


class Summary(BaseModel):
    title: str
    key_points: list[str]


def lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_add_writes_native_batch_lines(tmp_path: Path) -> None:
    b = BatchRequestBuilder()
    assert b.add(MSG, model="gpt-4o-mini", custom_id="a", max_tokens=5, temperature=0.5) is b
    out = lines(b.to_jsonl(tmp_path / "in.jsonl"))
    assert out == [
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5, "temperature": 0.5},
        }
    ]
    assert len(b) == 1


def test_messages_are_copied_at_add(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "first"}]
    b = BatchRequestBuilder().add(messages, model="gpt-4o-mini")
    messages[0]["content"] = "changed"
    messages.append({"role": "user", "content": "second"})
    body = lines(b.to_jsonl(tmp_path / "x.jsonl"))[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "first"}]


def test_utf8_is_written_unescaped(tmp_path: Path) -> None:
    b = BatchRequestBuilder().add([{"role": "user", "content": "héllo ✓ 日本"}], model="gpt-4o-mini")
    raw = b.to_jsonl(tmp_path / "x.jsonl").read_bytes()
    assert "héllo ✓ 日本".encode() in raw and b"\\u" not in raw


def test_generated_ids_never_collide_with_explicit_ones() -> None:
    b = BatchRequestBuilder()
    b.add(MSG, model="m")  # would be request-0
    b.add(MSG, model="m", custom_id="request-0")
    b.add(MSG, model="m", custom_id="request-2")
    b.add(MSG, model="m")  # request-3
    b.add(MSG, model="m")  # request-4
    b.add(MSG, model="m", custom_id="request-4-1")
    ids = b.custom_ids
    assert len(set(ids)) == len(ids) == 6
    assert ids[1] == "request-0" and ids[2] == "request-2" and ids[5] == "request-4-1"
    # ids are stable for the same requests (the content fingerprint depends on them)
    assert (
        ids
        == BatchRequestBuilder()
        .add(MSG, model="m")
        .add(MSG, model="m", custom_id="request-0")
        .add(MSG, model="m", custom_id="request-2")
        .add(MSG, model="m")
        .add(MSG, model="m")
        .add(MSG, model="m", custom_id="request-4-1")
        .custom_ids
    )


def test_explicit_id_added_after_generation_regenerates() -> None:
    b = BatchRequestBuilder().add(MSG, model="m")
    assert b.custom_ids == ["request-0"]
    b.add(MSG, model="m", custom_id="request-0")
    assert len(set(b.custom_ids)) == 2


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": "hello"}, "non-empty list"),
        ({"messages": [{"content": "x"}]}, "role"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role 'robot'"),
        ({"messages": [{"role": "user"}]}, "no 'content'"),
        ({"messages": [{"role": "user", "content": ""}]}, "empty content"),
        ({"messages": MSG, "stream": True}, "stream=True"),
        ({"messages": MSG, "metadata": {"when": datetime.datetime(2026, 1, 1)}}, "not JSON"),
        ({"messages": [{"role": "user", "content": {1, 2}}]}, "not JSON"),
        ({"messages": MSG, "temperature": float("nan")}, "finite"),
        ({"messages": MSG, "model": ""}, "model"),
    ],
)
def test_bad_chat_requests_fail_at_add(kwargs: dict, needle: str) -> None:
    kwargs.setdefault("model", "gpt-4o-mini")
    b = BatchRequestBuilder()
    with pytest.raises(BatchValidationError, match=needle) as info:
        b.add(**kwargs)
    assert "request" in str(info.value)
    assert len(b) == 0  # nothing half-added


def test_errors_name_the_request() -> None:
    b = BatchRequestBuilder().add(MSG, model="m")
    with pytest.raises(BatchValidationError, match=r"custom_id 'x-1'") as info:
        b.add([], model="m", custom_id="x-1")
    assert info.value.custom_id == "x-1"
    with pytest.raises(BatchValidationError, match=r"request #1"):
        b.add([], model="m")


def test_duplicate_custom_id_rejected() -> None:
    b = BatchRequestBuilder().add(MSG, model="m", custom_id="a")
    with pytest.raises(BatchValidationError, match="duplicate custom_id 'a'"):
        b.add(MSG, model="m", custom_id="a")
    with pytest.raises(BatchValidationError, match="must be a string"):
        b.add(MSG, model="m", custom_id=7)  # type: ignore[arg-type]


def test_empty_builder_refuses_to_write(tmp_path: Path) -> None:
    with pytest.raises(BatchValidationError, match="empty"):
        BatchRequestBuilder().to_jsonl(tmp_path / "x.jsonl")
    with pytest.raises(BatchValidationError, match="empty"):
        BatchRequestBuilder().validate()


@pytest.mark.parametrize(
    ("model", "params", "needle"),
    [
        ("gpt-5.4-mini", {"max_tokens": 10}, "max_completion_tokens"),
        ("gpt-5", {"temperature": 0.2}, "temperature"),
        ("gpt-5.1", {"logprobs": True}, "logprobs"),
        ("gpt-5.2-nano", {"top_logprobs": 2}, "top_logprobs"),
        ("o3-mini", {"max_tokens": 10}, "max_completion_tokens"),
    ],
)
def test_model_rules(model: str, params: dict, needle: str) -> None:
    with pytest.raises(BatchValidationError, match=needle) as info:
        BatchRequestBuilder().add(MSG, model=model, **params)
    assert "check_models=False" in str(info.value)
    # the opt-out lets it through
    assert len(BatchRequestBuilder(check_models=False).add(MSG, model=model, **params)) == 1


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-5-chat-latest", "gpt-50"])
def test_model_rules_leave_other_models_alone(model: str) -> None:
    BatchRequestBuilder().add(MSG, model=model, max_tokens=5, temperature=0.3, logprobs=True, top_logprobs=2)


def test_gpt5_accepts_max_completion_tokens() -> None:
    BatchRequestBuilder().add(MSG, model="gpt-5.4-mini", max_completion_tokens=200)


def test_response_format_model_uses_sdk_strict_schema(tmp_path: Path) -> None:
    b = BatchRequestBuilder().add(MSG, model="gpt-5.4-mini", response_format=Summary)
    body = lines(b.to_jsonl(tmp_path / "x.jsonl"))[0]["body"]
    assert body["response_format"] == type_to_response_format_param(Summary)
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["additionalProperties"] is False


def test_text_format_for_responses(tmp_path: Path) -> None:
    b = BatchRequestBuilder().add_response(
        "hi", model="gpt-5.4-mini", text_format=Summary, text={"verbosity": "low"}
    )
    line = lines(b.to_jsonl(tmp_path / "x.jsonl"))[0]
    assert line["url"] == "/v1/responses"
    assert line["body"]["text"] == {"verbosity": "low", "format": type_to_text_format_param(Summary)}
    with pytest.raises(BatchValidationError, match="text_format"):
        BatchRequestBuilder().add_response("hi", model="gpt-5.4-mini", response_format=Summary)


def test_other_endpoints(tmp_path: Path) -> None:
    b = (
        BatchRequestBuilder()
        .add_embedding(["a", "b"], model="text-embedding-3-small", custom_id="e")
        .add_completion("once upon", model="gpt-3.5-turbo-instruct", custom_id="c", max_tokens=5)
        .add_moderation("text", custom_id="m")
        .add_request("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MSG}, custom_id="r")
    )
    got = {x["custom_id"]: (x["url"], x["body"]) for x in lines(b.to_jsonl(tmp_path / "x.jsonl"))}
    assert got["e"] == ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]})
    assert got["c"][0] == "/v1/completions" and got["c"][1]["prompt"] == "once upon"
    assert got["m"] == ("/v1/moderations", {"model": "omni-moderation-latest", "input": "text"})
    assert got["r"][0] == "/v1/chat/completions"
    assert b.endpoints == ["/v1/embeddings", "/v1/completions", "/v1/moderations", "/v1/chat/completions"]


@pytest.mark.parametrize(
    ("url", "body", "needle"),
    [
        ("/v1/unknown", {"model": "m"}, "unknown endpoint"),
        ("/v1/embeddings", {"model": "m", "input": ""}, "input is empty"),
        ("/v1/embeddings", {"input": "x"}, "no 'model'"),
        ("/v1/chat/completions", {"model": "m"}, "no 'messages'"),
        ("/v1/completions", {"model": "m", "prompt": []}, "prompt is empty"),
    ],
)
def test_add_request_is_validated(url: str, body: dict, needle: str) -> None:
    with pytest.raises(BatchValidationError, match=needle):
        BatchRequestBuilder().add_request(url, body)


# ---------------------------------------------------------------- from_jsonl


def write(tmp_path: Path, content: bytes | str) -> Path:
    p = tmp_path / "input.jsonl"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def good_line(cid: str = "a", url: str = "/v1/chat/completions") -> str:
    body = {"model": "gpt-4o-mini", "messages": MSG}
    return orjson.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body}).decode()


def test_from_jsonl_round_trips(tmp_path: Path) -> None:
    src = BatchRequestBuilder().add(MSG, model="gpt-4o-mini", custom_id="x").add_embedding("e", model="emb")
    path = src.to_jsonl(tmp_path / "a.jsonl")
    again = BatchRequestBuilder.from_jsonl(path).to_jsonl(tmp_path / "b.jsonl")
    assert fingerprint_file(path) == fingerprint_file(again)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "holds no requests"),
        ("\n\n", "holds no requests"),
        (good_line() + "\n{not json\n", "line 2: invalid JSON"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ('{"method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "line 1: missing 'custom_id'"),
        ('{"custom_id": "a", "url": "/v1/chat/completions", "body": {}}\n', "line 1: missing 'method'"),
        ('{"custom_id": "a", "method": "POST", "body": {}}\n', "line 1: missing 'url'"),
        ('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}\n', "line 1: missing 'body'"),
        (good_line("a") + "\n" + good_line("a") + "\n", "duplicate custom_id 'a' at line 2"),
        (good_line("a", "/v1/chat") + "\n", "line 1.*unknown endpoint"),
        (good_line("a").replace('"POST"', '"GET"') + "\n", 'line 1.*"POST"'),
        (good_line("a").replace('"messages"', '"stream":true,"messages"') + "\n", "line 1.*stream"),
        (
            good_line("a")
            .replace('"gpt-4o-mini"', '"gpt-5"')
            .replace('"messages"', '"max_tokens":3,"messages"'),
            "line 1.*max_completion_tokens",
        ),
    ],
)
def test_from_jsonl_defects(tmp_path: Path, content: str, needle: str) -> None:
    with pytest.raises(BatchValidationError, match=needle):
        BatchRequestBuilder.from_jsonl(write(tmp_path, content))


def test_from_jsonl_non_utf8_and_missing(tmp_path: Path) -> None:
    bad = good_line().encode().replace(b"hi", b"h\xff")
    with pytest.raises(BatchValidationError, match="line 1: not UTF-8"):
        BatchRequestBuilder.from_jsonl(write(tmp_path, bad + b"\n"))
    with pytest.raises(BatchValidationError, match="does not exist"):
        BatchRequestBuilder.from_jsonl(tmp_path / "nope.jsonl")


def test_from_jsonl_oversize_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import batch_openai._input_file as input_module

    monkeypatch.setattr(input_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(BatchValidationError, match=r"line 1: .*over the 100-byte"):
        BatchRequestBuilder.from_jsonl(write(tmp_path, good_line() + "\n"))


def test_from_jsonl_model_opt_out(tmp_path: Path) -> None:
    line = (
        good_line("a").replace('"gpt-4o-mini"', '"gpt-5"').replace('"messages"', '"temperature":1,"messages"')
    )
    assert len(BatchRequestBuilder.from_jsonl(write(tmp_path, line), check_models=False)) == 1


# ---------------------------------------------------------------- shards


def test_shards_group_by_endpoint_and_model_and_split(tmp_path: Path) -> None:
    b = BatchRequestBuilder()
    for i in range(7):
        b.add(MSG, model="gpt-4o-mini", custom_id=f"a{i}")
    b.add(MSG, model="gpt-5.4-mini", custom_id="b0")
    b.add_embedding("x", model="emb", custom_id="e0")
    shards = b.write_shards(tmp_path / "s", max_requests=3)
    assert [(s.endpoint, s.model, s.count) for s in shards] == [
        ("/v1/chat/completions", "gpt-4o-mini", 3),
        ("/v1/chat/completions", "gpt-4o-mini", 3),
        ("/v1/chat/completions", "gpt-4o-mini", 1),
        ("/v1/chat/completions", "gpt-5.4-mini", 1),
        ("/v1/embeddings", "emb", 1),
    ]
    for s in shards:
        assert s.path.stat().st_size == s.size_bytes
        assert fingerprint_file(s.path) == s.fingerprint and s.fingerprint[:16] in s.path.name
        assert len(lines(s.path)) == s.count
    ids = [x["custom_id"] for s in shards for x in lines(s.path)]
    assert sorted(ids) == sorted(b.custom_ids)
    assert not list((tmp_path / "s").glob("*.tmp"))
    # deterministic: same requests, same files
    again = b.write_shards(tmp_path / "t", max_requests=3)
    assert [s.fingerprint for s in again] == [s.fingerprint for s in shards]
    assert [s.path.name for s in again] == [s.path.name for s in shards]


def test_shards_split_by_bytes(tmp_path: Path) -> None:
    b = BatchRequestBuilder()
    for i in range(10):
        b.add([{"role": "user", "content": "x" * 100}], model="m", custom_id=f"r{i}")
    line_size = len(b.to_jsonl(tmp_path / "all.jsonl").read_bytes()) // 10
    shards = b.write_shards(tmp_path / "s", max_bytes=line_size * 4 + 1)
    assert [s.count for s in shards] == [4, 4, 2]
    assert all(s.size_bytes <= line_size * 4 + 1 for s in shards)
    with pytest.raises(BatchValidationError, match="over the 50-byte"):
        b.write_shards(tmp_path / "u", max_bytes=50)


def test_embedding_shards_count_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import batch_openai._shards as shards_module

    monkeypatch.setattr(shards_module, "MAX_REQUESTS", 5)
    b = BatchRequestBuilder()
    for i in range(4):
        b.add_embedding(["a", "b"], model="emb", custom_id=f"e{i}")  # 2 inputs each
    shards = b.write_shards(tmp_path / "s")
    assert [s.count for s in shards] == [2, 2]


def _fmt(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "additionalProperties",
        ),
        (
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"a": {"type": "string"}},
                "required": [],
            },
            r"not required: \['a'\]",
        ),
        (
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["a"],
                "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {"b": {}}}}},
            },
            r"schema.properties.a.items: .*additionalProperties",
        ),
        (
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["a"],
                "properties": {"a": {"$ref": "#/$defs/D"}},
                "$defs": {
                    "D": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"x": {}},
                        "required": [],
                    }
                },
            },
            r"\$defs.D",
        ),
    ],
)
def test_broken_strict_schemas_are_refused(schema: dict, needle: str) -> None:
    with pytest.raises(BatchValidationError, match=needle):
        BatchRequestBuilder().add(MSG, model="gpt-4o-mini", response_format=_fmt(schema))
    text = {"format": {"type": "json_schema", "name": "x", "strict": True, "schema": schema}}
    with pytest.raises(BatchValidationError, match=needle):
        BatchRequestBuilder().add_response("hi", model="gpt-4o-mini", text=text)
    # not strict: the service does not enforce these rules, neither do we
    loose = {"type": "json_schema", "json_schema": {"name": "x", "strict": False, "schema": schema}}
    BatchRequestBuilder().add(MSG, model="gpt-4o-mini", response_format=loose)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["request-0", "request-1", "request-1-1", "a", "request-3"]),
            st.text(min_size=1, max_size=8),
        ),
        max_size=12,
    )
)
def test_ids_are_unique_and_round_trip(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str | None]
) -> None:
    b = BatchRequestBuilder()
    seen: set[str] = set()
    for i, cid in enumerate(ids):
        if cid is not None and cid in seen:
            with pytest.raises(BatchValidationError, match="duplicate"):
                b.add([{"role": "user", "content": f"m{i}"}], model="m", custom_id=cid)
            continue
        b.add([{"role": "user", "content": f'm{i} \u00e9"\\\n'}], model="m", custom_id=cid)
        if cid is not None:
            seen.add(cid)
    final = b.custom_ids
    assert len(set(final)) == len(final) == len(b)
    assert seen <= set(final)
    if len(b):
        d = tmp_path_factory.mktemp("rt")
        path = b.to_jsonl(d / "a.jsonl")
        rows = lines(path)
        assert [r["custom_id"] for r in rows] == final
        again = BatchRequestBuilder.from_jsonl(path).to_jsonl(d / "b.jsonl")
        assert path.read_bytes() == again.read_bytes()


# -- OpenAI's own request schemas (batch_openai.spec), beyond the plain-chat fast path ----------
@pytest.mark.parametrize(
    ("params", "param", "needle"),
    [
        ({"bogus": 1}, "bogus", "Unknown parameter: 'bogus'"),
        ({"temperature": 9}, "temperature", "Expected a value <= 2, but got 9"),
        ({"n": 0}, "n", "Expected a value >= 1, but got 0"),
        ({"max_tokens": -5}, "max_tokens", "Expected a value >= 1, but got -5"),
        ({"max_tokens": "20"}, "max_tokens", "expected an integer, but got a string"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "Supported values are"),
    ],
)
def test_add_refuses_what_the_spec_refuses(params: dict, param: str, needle: str) -> None:
    with pytest.raises(BatchValidationError, match=needle) as info:
        BatchRequestBuilder().add(MSG, model="gpt-4o-mini", custom_id="c1", **params)
    assert info.value.custom_id == "c1" and getattr(info.value, "param", None) == param
    assert "Fix:" in str(info.value)


def test_integer_content_and_wrong_endpoint_models_are_refused() -> None:
    with pytest.raises(BatchValidationError, match=r"messages\[0\]\.content") as info:
        BatchRequestBuilder().add_request(
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 3}]},
            custom_id="c3",  # without one the builder relabels the error by position (and drops .param)
        )
    assert getattr(info.value, "param", None) == "messages[0].content"
    with pytest.raises(BatchValidationError, match="not a chat model"):
        BatchRequestBuilder().add(MSG, model="text-embedding-3-small", temperature=0.5)
    with pytest.raises(BatchValidationError, match="not an embedding model"):
        BatchRequestBuilder().add_embedding("x", model="gpt-4o-mini")
    # check_models=False skips the model table and the endpoint check (a house deployment may differ)
    BatchRequestBuilder(check_models=False).add_embedding("x", model="gpt-4o-mini")


def test_an_unknown_model_only_warns() -> None:
    with pytest.warns(UserWarning, match="not in OpenAI's published model list"):
        BatchRequestBuilder().add(MSG, model="gpt-from-next-month-1", temperature=0.2)


def test_valid_rich_bodies_pass_and_repeated_params_are_checked_once() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    b = BatchRequestBuilder()
    for i in range(200):
        b.add(MSG, model="gpt-4o-mini", temperature=0.2, max_tokens=30, tools=tools, custom_id=f"t{i}")
    b.add_response("hi", model="gpt-5.4-mini", max_output_tokens=64, text={"format": {"type": "json_object"}})
    b.add_embedding(["a", "b"], model="text-embedding-3-small", dimensions=256)
    b.add_completion("hi", model="gpt-3.5-turbo-instruct", max_tokens=5, echo=True)
    b.add_moderation(["a"])
    assert len(b) == 204
