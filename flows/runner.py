"""Plain-Python entry points: run the flow from a script, or on a local server for a demo."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def fast_flow_calls() -> Iterator[None]:
    """Turn off the flow-run heartbeat thread, whose join costs ~1 s per flow call (PREFECT_NOTES)."""
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):  # type: ignore[dict-item]
        yield


def run_batch(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Run `batch_run_flow` in this process and return its summary (counts, usage, batch ids, output path).

    Uses the Prefect server in `PREFECT_API_URL`, or an ephemeral one when it is unset. `options` are the
    flow's parameters (`description`, `max_rounds`, `batch_size`, `poll_interval`, `base_url`, ...).
    """
    from batch_openai.flows.batch_flow import batch_run_flow

    with fast_flow_calls():
        return batch_run_flow(input_path=str(input_path), output_path=str(output_path), **options)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_local_demo(
    output_path: str | os.PathLike[str],
    *,
    input_path: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    step_seconds: float = 0.2,
    poll_interval: float = 0.5,
    server_options: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run the flow (ephemeral Prefect unless `PREFECT_API_URL` is set) on an in-process `LocalBatchServer`.

    With no `input_path`, runs the bundled demo job: the 300 product reviews in
    `batch_openai/demo/reviews.csv`, each classified by a chat request rendered from a prompt template.
    Returns the flow's summary.
    """
    from batch_openai.local import LocalBatchServer

    if input_path is None:
        import batch_openai

        input_path = Path(batch_openai.__file__).parent / "demo" / "reviews.csv"  # data, not an import
        options.setdefault(
            "prompt_template", "Is this review positive or negative? Reply with one word.\n\n{text}"
        )
        options.setdefault("model", "gpt-4o-mini")
        options.setdefault("id_field", "review_id")
    work = (
        Path(work_dir) if work_dir else Path(output_path).expanduser().resolve().parent / ".batch_openai_work"
    )
    api_key = "sk-local-demo"
    # The key reaches the tasks through the environment, never through a parameter.
    with (
        LocalBatchServer(step_seconds=step_seconds, api_key=api_key, **(server_options or {})) as server,
        _env(OPENAI_API_KEY=api_key),
    ):
        return run_batch(
            input_path,
            output_path,
            base_url=server.base_url,
            work_dir=str(work),
            poll_interval=poll_interval,
            max_poll_interval=max(poll_interval, 2.0),
            **options,
        )
