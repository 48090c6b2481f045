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

    Uses the Prefect server in `PREFECT_API_URL`; when none is set, batch-openai's local Prefect server
    (reused if running, else started once and left running for later calls: `batch-openai prefect
    status|stop`; see `batch_openai.flows.embedded`). `options` are the flow's parameters
    (`description`, `max_rounds`, `batch_size`, `poll_interval`, `base_url`, ...). The summary also holds
    `flow_run_id` and `prefect_ui_url` (the Prefect UI showing the run, None on the ephemeral engine).
    """
    from batch_openai.flows import embedded

    with embedded.default_api() as api_url, fast_flow_calls():
        from batch_openai.flows.batch_flow import batch_run_flow

        state = batch_run_flow(
            input_path=str(input_path), output_path=str(output_path), return_state=True, **options
        )
        summary = dict(state.result())  # raises what the flow raised
        run_id = state.state_details.flow_run_id
        summary["flow_run_id"] = str(run_id) if run_id else None
        summary["prefect_ui_url"] = _ui_url() if api_url else None
    return summary


def _ui_url() -> str | None:
    """The Prefect UI of the current API (None when Prefect cannot say, e.g. no UI)."""
    from prefect.settings import PREFECT_UI_URL

    url = PREFECT_UI_URL.value()
    return str(url).rstrip("/") if url else None


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
    """Run the flow (Prefect as in `run_batch`) on an in-process `LocalBatchServer`.

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
