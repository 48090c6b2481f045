"""The flow's side of issue 6: pacing shards under `max_enqueued_tokens`, and the library's price table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from frames_helpers import server_batches

from batch_openai import BATCH_PRICES, BatchValidationError
from batch_openai.local import LocalBatchServer

# 12 requests of ~14 tokens in shards of 4 (~56 tokens each): the limit admits two shards at a time.
LIMIT = 120


@pytest.fixture
def frames_api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The local server's key, reaching the flow's tasks only through the environment."""
    key = "sk-frames-test-key"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return key


def test_flow_paces_shards_under_the_cap_and_prices_from_the_library(
    frames_prefect_api: Any, frames_api_key: str, tmp_path: Path
) -> None:
    from flows_harness import read_rows, write_requests

    from batch_openai.flows.runner import run_batch

    src = write_requests(tmp_path / "in.jsonl", 12, prefix="pace")
    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.1, api_key=frames_api_key, enqueued_token_limit=LIMIT) as server:
        summary = run_batch(
            src,
            out,
            base_url=server.base_url,
            batch_size=4,
            poll_interval=0.05,
            max_poll_interval=0.2,
            max_rounds=1,
            max_enqueued_tokens=LIMIT,
        )
        statuses = [b.status for b in server_batches(server.client())]
    assert statuses == ["completed"] * 3  # paced: not one batch hit token_limit_exceeded
    rows = read_rows(out)
    assert len(rows) == 12 and {r["outcome"] for r in rows} == {"succeeded"}
    usage = summary["usage"]
    price = BATCH_PRICES["gpt-4o-mini"]
    expected = (usage["input_tokens"] * price.input + usage["output_tokens"] * price.output) / 1e6
    assert summary["estimated_cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_flow_refuses_a_shard_over_the_cap_before_submitting(
    frames_prefect_api: Any, frames_api_key: str, tmp_path: Path
) -> None:
    from flows_harness import write_requests

    from batch_openai.flows.runner import run_batch

    src = write_requests(tmp_path / "in.jsonl", 8, prefix="huge")
    with LocalBatchServer(step_seconds=0.0, api_key=frames_api_key) as server:
        with pytest.raises(BatchValidationError, match="max_enqueued_tokens=30"):
            run_batch(src, tmp_path / "out.jsonl", base_url=server.base_url, max_enqueued_tokens=30)
        assert server.stats().get("POST /v1/files", 0) == 0
