"""Token usage, cost at batch prices and the estimate before submitting, against the local server."""

from __future__ import annotations

import math
import pickle
from typing import Any

import orjson
import pytest
from frames_helpers import chat_requests

import batch_openai
from batch_openai import (
    BATCH_PRICES,
    PRICES_AS_OF,
    PRICES_SOURCE,
    BatchRequestBuilder,
    BatchResult,
    ModelPrice,
    cost_of,
    price_for,
    register_prices,
)


def test_table_is_dated_sourced_and_half_the_standard_price() -> None:
    assert PRICES_SOURCE.startswith("https://") and len(PRICES_AS_OF) == 10
    mini = BATCH_PRICES["gpt-4o-mini"]
    assert (mini.input, mini.cached, mini.output) == (0.075, 0.0375, 0.30)  # standard 0.15 / 0.075 / 0.60
    for name in ("gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano"):
        assert BATCH_PRICES[name].output > BATCH_PRICES[name].input > BATCH_PRICES[name].cached > 0
    assert BATCH_PRICES["omni-moderation-latest"] == ModelPrice(0.0, 0.0, 0.0)
    assert BATCH_PRICES["text-embedding-3-small"].output == 0.0


def test_snapshots_match_but_other_prefixes_do_not() -> None:
    assert price_for("gpt-4o-2024-08-06") == BATCH_PRICES["gpt-4o"]
    assert price_for("gpt-4o-mini-2024-07-18") == BATCH_PRICES["gpt-4o-mini"]  # not gpt-4o's price
    assert price_for("gpt-5.4-mini") is None  # a newer model is unknown, never priced as gpt-5
    assert price_for("my-finetune") is None and price_for(None) is None
    assert price_for("x", {"x": [1.0, 2.0]}) == ModelPrice(1.0, 2.0)
    assert price_for("x", {"x": [1.0, 0.5, 2.0]}) == ModelPrice(1.0, 2.0, 0.5)
    with pytest.raises(ValueError, match=r"\[input, output\]"):
        price_for("x", {"x": [1.0]})


def test_cost_of_charges_cached_and_reasoning_tokens_correctly() -> None:
    usage = {
        "input_tokens": 1_000_000,
        "input_tokens_details": {"cached_tokens": 400_000},
        "output_tokens": 2_000_000,
        "output_tokens_details": {"reasoning_tokens": 1_500_000},  # already inside output_tokens
    }
    p = BATCH_PRICES["gpt-5"]
    assert cost_of(usage, "gpt-5") == pytest.approx(0.6 * p.input + 0.4 * p.cached + 2 * p.output)
    chat = {"prompt_tokens": 2_000_000, "completion_tokens": 0}
    assert cost_of(chat, "text-embedding-3-large") == pytest.approx(2 * 0.065)
    assert cost_of(chat, "unknown-model") is None


def test_usage_and_cost_of_a_real_run(fast_client: Any) -> None:
    job = chat_requests(5, prefix="cost").submit(fast_client)
    result = job.wait(poll_interval=0.02)
    usage = result.usage
    items = list(result)
    prompt = sum(i.usage["prompt_tokens"] for i in items)
    completion = sum(i.usage["completion_tokens"] for i in items)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        prompt,
        completion,
        prompt + completion,
    )
    assert usage["prompt_tokens"] == prompt  # still the dict of raw sums it always was
    batch_usage = job.batches[0].usage
    assert usage.batch is not None and usage.batch.input_tokens == batch_usage.input_tokens
    assert usage.matches_batch is True
    assert set(usage.by_model) == {"gpt-4o-mini"}
    p = BATCH_PRICES["gpt-4o-mini"]
    assert result.cost == pytest.approx((prompt * p.input + completion * p.output) / 1e6)
    assert result.cost_for({"gpt-4o-mini": [1.0, 2.0]}) == pytest.approx((prompt + 2 * completion) / 1e6)


def test_usage_that_disagrees_with_the_batch_is_flagged(fast_client: Any, caplog: Any, tmp_path: Any) -> None:
    from batch_openai._usage import batch_usage_of

    job = chat_requests(2, prefix="mismatch").submit(fast_client)
    job.wait(poll_interval=0.02)
    out, _ = job.download(tmp_path)
    assert out is not None
    first_line_only = tmp_path / "one.jsonl"
    first_line_only.write_bytes(out.read_bytes().splitlines(keepends=True)[0])
    partial = BatchResult(files=[first_line_only], batch_usage=batch_usage_of(job.batches))
    with caplog.at_level("WARNING", logger="batch_openai"):
        assert partial.usage.matches_batch is False
    assert "differs from the batch's usage" in caplog.text
    assert BatchResult.from_files(out).usage.matches_batch is None  # no batch usage to compare with


def test_unknown_model_cost_is_none_and_register_prices_fixes_it(fast_client: Any) -> None:
    b = BatchRequestBuilder(check_models=False)
    b.add([{"role": "user", "content": "hello there"}], model="house-model-1", custom_id="h")
    result = b.submit(fast_client).wait(poll_interval=0.02)
    assert result.usage.input_tokens > 0 and result.cost is None
    est = b.estimate_cost()
    assert math.isnan(est) and est.low is None and est.unknown_models == ["house-model-1"]
    try:
        register_prices({"house-model-1": {"input": 1.0, "output": 4.0}})
        u = result.usage
        assert result.cost == pytest.approx((u.input_tokens + 4 * u.output_tokens) / 1e6)
        assert b.estimate_cost().low == pytest.approx(u.input_tokens / 1e6)
    finally:
        BATCH_PRICES.pop("house-model-1", None)
    with pytest.raises(ValueError, match="negative"):
        register_prices({"x": [-1, 1]})


def test_estimate_bounds_hold_the_real_cost(fast_client: Any) -> None:
    b = chat_requests(8, prefix="est", max_completion_tokens=12)
    est = b.estimate_cost()
    result = b.submit(fast_client).wait(poll_interval=0.02)
    # The estimate uses the same token rule as the server, so the input side is exact here.
    assert est.input_tokens == result.usage.input_tokens
    assert est.max_output_tokens == 8 * 12 and result.usage.output_tokens <= est.max_output_tokens
    assert est.low <= result.cost <= est.high
    assert float(est) == est.low and est * 2 == pytest.approx(2 * est.low)  # usable as a number
    again = pickle.loads(pickle.dumps(est))
    assert float(again) == float(est) and again.high == est.high
    assert "input tokens" in repr(est)


def test_estimate_without_output_limits_is_unbounded_above() -> None:
    b = chat_requests(3, prefix="nolimit")
    b.add_embedding(["one", "two"], model="text-embedding-3-small", custom_id="emb")
    est = b.estimate_cost()
    assert est.high is None and est.low > 0
    assert est.by_model["text-embedding-3-small"].max_output_tokens == 0  # embeddings have no output
    assert est.by_model["gpt-4o-mini"].max_output_tokens is None
    completions = BatchRequestBuilder().add_completion("hi", model="gpt-3.5-turbo-instruct", n=2)
    assert completions.estimate_cost().max_output_tokens == 32  # the endpoint's default of 16, times n


def test_estimate_reads_the_request_bodies(tmp_path: Any) -> None:
    path = tmp_path / "in.jsonl"
    line = {
        "custom_id": "r",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "gpt-5-mini", "input": "word " * 40, "max_output_tokens": 100},
    }
    path.write_bytes(orjson.dumps(line) + b"\n")
    est = BatchRequestBuilder.from_jsonl(path).estimate_cost()
    p = BATCH_PRICES["gpt-5-mini"]
    assert 35 <= est.input_tokens <= 45  # ~one token a word under the documented heuristic
    assert est.high == pytest.approx(est.low + 100 * p.output / 1e6)


def test_import_stays_light_with_the_new_names() -> None:
    assert {"CostEstimate", "TokenUsage", "register_prices", "BATCH_PRICES"} <= set(batch_openai.__all__)
