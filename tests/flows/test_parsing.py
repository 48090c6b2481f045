"""Template mode's structured output: response formats from a schema or a model, and the parse step."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from batch_openai.flows.parsing import parse_rows_file, row_parser
from batch_openai.flows.template import render_requests, response_format_for, strict_schema

MODEL = "batch_openai.demo.job:ReviewFacts"
SCHEMA = {
    "title": "Sentiment label",
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "negative"]},
        "score": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
    },
}


def test_neither_gives_none_and_both_is_refused():
    assert response_format_for(None, None) is None
    assert row_parser(None, None) is None
    with pytest.raises(ValueError, match="either response_schema or response_model"):
        response_format_for(SCHEMA, MODEL)
    with pytest.raises(ValueError, match="either response_schema or response_model"):
        row_parser(SCHEMA, MODEL)


def test_a_schema_is_normalised_to_strict_where_rules_are_absent():
    fmt = response_format_for(SCHEMA, None)
    assert fmt is not None and fmt["type"] == "json_schema"
    inner = fmt["json_schema"]
    assert inner["name"] == "Sentiment_label" and inner["strict"] is True
    schema = inner["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["label", "score", "tags"]
    item = schema["properties"]["tags"]["items"]
    assert item["additionalProperties"] is False and item["required"] == ["name"]
    assert "additionalProperties" not in SCHEMA  # the caller's dict is not changed
    untitled = dict(SCHEMA)
    untitled.pop("title")
    assert response_format_for(untitled, None)["json_schema"]["name"] == "response"


def test_a_schema_as_json_text_from_a_ui_form_is_accepted():
    assert response_format_for(json.dumps(SCHEMA), None) == response_format_for(SCHEMA, None)


@pytest.mark.parametrize(
    ("schema", "needles"),
    [
        ("{not json", ["not valid JSON"]),
        ([1, 2], ["JSON Schema object"]),
        ({"type": "array", "items": {"type": "string"}}, ['"type": "object"', "root"]),
        (
            {"type": "object", "properties": {"a": {"type": 12}}},
            ["not a valid JSON Schema", "properties/a/type"],
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a"],
            },
            ["its root", "not required: ['b']", "nullable"],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "object", "additionalProperties": True}}},
            ["properties.a", "'additionalProperties': false"],
        ),
        (
            {"type": "object", "properties": {}, "required": ["ghost"]},
            ["['ghost']", "not in 'properties'"],
        ),
    ],
)
def test_bad_schemas_are_refused_with_the_path_and_the_fix(schema, needles):
    with pytest.raises(ValueError) as info:
        response_format_for(schema, None)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_a_model_gives_the_sdk_strict_format():
    from openai.lib._parsing._completions import type_to_response_format_param

    from batch_openai.demo.job import ReviewFacts

    assert response_format_for(None, MODEL) == dict(type_to_response_format_param(ReviewFacts))


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("ReviewFacts", ["'ReviewFacts'", "package.module:Model"]),
        ("no_such_pkg.models:X", ["cannot import 'no_such_pkg.models'", "install the package"]),
        ("batch_openai.demo.job:Nope", ["has no 'Nope'", "class name"]),
        ("batch_openai.demo.job:SENTIMENT_PROMPT", ["not a Pydantic model"]),
        ("pydantic:BaseModel", ["not a Pydantic model"]),
    ],
)
def test_bad_model_strings_name_the_string_and_the_fix(spec, needles):
    with pytest.raises(ValueError) as info:
        response_format_for(None, spec)
    for needle in [spec, *needles]:
        assert needle in str(info.value), str(info.value)


def test_a_model_in_the_current_directory_is_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "my_answer_models.py").write_text(
        "from pydantic import BaseModel\n\nclass Answer(BaseModel):\n    text: str\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    fmt = response_format_for(None, "my_answer_models:Answer")
    assert fmt["json_schema"]["name"] == "Answer"


def test_render_requests_puts_the_format_on_every_request(tmp_path: Path):
    records = tmp_path / "records.csv"
    records.write_text("id,text\na,good\nb,bad\n")
    fmt = response_format_for(SCHEMA, None)
    target = render_requests(
        records,
        tmp_path / "req.jsonl",
        prompt_template="Rate: {text}",
        model="gpt-4o-mini",
        response_format=fmt,
    )
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [line["custom_id"] for line in lines] == ["a", "b"]
    assert all(line["body"]["response_format"] == fmt for line in lines)
    plain = render_requests(
        records, tmp_path / "plain.jsonl", prompt_template="Rate: {text}", model="gpt-4o-mini"
    )
    assert all(
        "response_format" not in orjson.loads(line)["body"] for line in plain.read_bytes().splitlines()
    )


@pytest.mark.parametrize(
    ("template", "needles"),
    [
        ("Rate: {text", ["not a valid template", "{{"]),
        ("Rate: {0}", ["{0}", "plain field names"]),
        ("Rate: {text.upper}", ["{text.upper}", "plain field names"]),
        ("Rate: {text:d}", ["record 1", "could not be filled in"]),
    ],
)
def test_template_mistakes_are_one_line_errors(tmp_path: Path, template, needles):
    records = tmp_path / "records.csv"
    records.write_text("id,text\na,good\n")
    with pytest.raises(ValueError) as info:
        render_requests(records, tmp_path / "req.jsonl", prompt_template=template, model="gpt-4o-mini")
    assert "\n" not in str(info.value)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_empty_and_broken_records_files_are_named(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("id,text\n")
    with pytest.raises(ValueError, match="holds no records"):
        render_requests(empty, tmp_path / "r.jsonl", prompt_template="{text}", model="gpt-4o-mini")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "text": "x"}\n{"id": \n')
    with pytest.raises(ValueError, match=r"broken\.jsonl line 2 is not valid JSON"):
        render_requests(broken, tmp_path / "r.jsonl", prompt_template="{text}", model="gpt-4o-mini")


def test_schema_parser_validates_against_the_strict_schema():
    parse = row_parser(json.dumps(SCHEMA), None)
    good = {"label": "positive", "score": 0.9, "tags": [{"name": "x"}]}
    assert parse(json.dumps(good)) == (good, None)
    assert parse(good) == (good, None)  # already decoded
    assert parse(None) == (None, None)
    parsed, error = parse("{oops")
    assert parsed is None and error.startswith("not valid JSON")
    parsed, error = parse(json.dumps({**good, "label": "meh"}))
    assert parsed is None and "label" in error and "schema" in error
    parsed, error = parse(json.dumps({"label": "positive", "score": 1}))
    assert parsed is None and "tags" in error  # required by the strict normalisation
    parsed, error = parse(json.dumps({**good, "extra": 1}))
    assert parsed is None and "extra" in error


def test_model_parser_validates_and_dumps_in_json_mode():
    parse = row_parser(None, MODEL)
    good = {"sentiment": "positive", "aspects": ["price"], "would_recommend": True, "stars": 5}
    assert parse(json.dumps(good)) == (good, None)
    parsed, error = parse(json.dumps({**good, "stars": 9}))
    assert parsed is None and "stars" in error
    parsed, error = parse("not json at all")
    assert parsed is None and error
    assert len(parse("x" * 10_000)[1]) <= 300


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_parse_rows_file_adds_two_fields_to_every_row_and_counts(tmp_path: Path):
    good = {"label": "negative", "score": 0.1, "tags": []}
    rows = [
        {"custom_id": "a", "outcome": "succeeded", "content": json.dumps(good), "usage": {"total_tokens": 3}},
        {"custom_id": "b", "outcome": "succeeded", "content": '{"label": "meh", "score": 1, "tags": []}'},
        {"custom_id": "c", "outcome": "failed", "content": None, "error": {"code": "server_error"}},
        {"custom_id": "d", "outcome": "succeeded", "content": None},
        {"custom_id": "e", "outcome": "expired", "content": "{bad json but not parsed}"},
    ]
    src = tmp_path / "rows.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"\n")
    dst = tmp_path / "out" / "parsed.jsonl"
    counts = parse_rows_file(str(src), str(dst), row_parser(SCHEMA, None))
    assert counts == {"parsed": 1, "parse_failed": 2}
    out = _rows(dst)
    assert [r["custom_id"] for r in out] == list("abcde")
    assert (
        out[0]["parsed"] == good and out[0]["parse_error"] is None and out[0]["usage"] == {"total_tokens": 3}
    )
    assert out[1]["parsed"] is None and "label" in out[1]["parse_error"]
    assert (out[2]["parsed"], out[2]["parse_error"]) == (None, None)
    assert out[3]["parsed"] is None and "no content" in out[3]["parse_error"]
    assert (out[4]["parsed"], out[4]["parse_error"]) == (None, None)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["parsed.jsonl"]  # no temp file left


def test_parse_rows_file_in_place_in_blocks_and_a_crashing_parser_is_one_row(tmp_path: Path):
    n = 2_500  # more than one write block
    src = tmp_path / "rows.jsonl"
    src.write_bytes(
        b"".join(
            orjson.dumps({"custom_id": f"r{i}", "outcome": "succeeded", "content": str(i)}) + b"\n"
            for i in range(n)
        )
    )

    def parser(content):
        if content == "7":
            raise RuntimeError("boom")
        return int(content), None

    counts = parse_rows_file(src, src, parser)
    assert counts == {"parsed": n - 1, "parse_failed": 1}
    out = _rows(src)
    assert len(out) == n and out[-1]["parsed"] == n - 1
    assert out[7]["parsed"] is None and out[7]["parse_error"] == "RuntimeError: boom"


def test_parse_rows_file_leaves_the_target_alone_on_a_broken_rows_file(tmp_path: Path):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"custom_id": "a", "outcome": "succeeded", "content": "{}"}\n{broken\n')
    dst = tmp_path / "parsed.jsonl"
    dst.write_text("old\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        parse_rows_file(src, dst, lambda content: (content, None))
    assert dst.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parsed.jsonl", "rows.jsonl"]


def test_strict_schema_leaves_an_already_strict_schema_as_it_is():
    strict = strict_schema(SCHEMA)
    assert strict_schema(strict) == strict
