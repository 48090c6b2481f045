"""`batch-openai run INPUT --output OUT`: the resumable Prefect flow from the command line.

Prefect and `flows` are imported inside the command body, so `batch-openai --help` stays fast. The input
is validated before Prefect starts, so bad input fails in a second with one line and nothing uploaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command(name="run")(run)


def run(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Native batch-input JSONL (one request a line).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output rows: .jsonl (default), .csv or .parquet.")
    ],
    poll_interval: Annotated[
        float, typer.Option(help="First polling interval, seconds (grows 1.5x per poll).")
    ] = 30.0,
    max_poll_interval: Annotated[float, typer.Option(help="Longest polling interval, seconds.")] = 600.0,
    batch_size: Annotated[int, typer.Option(help="Most requests per batch (service limit 50,000).")] = 50_000,
    max_rounds: Annotated[int, typer.Option(help="Rounds in total; retryable lines get another batch.")] = 2,
    description: Annotated[str | None, typer.Option(help="Stored in each batch's metadata.")] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Shards and downloads (default $BATCH_OPENAI_WORK_DIR or ./.batch_openai/work)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL (default $OPENAI_BASE_URL).")
    ] = None,
    api_key_block: Annotated[
        str | None,
        typer.Option(help="Prefect Secret block holding the API key (default $OPENAI_API_KEY / .env)."),
    ] = None,
    max_enqueued_tokens: Annotated[
        int | None,
        typer.Option(
            help="Your enqueued-token limit per model: submit shards in waves that fit under it.", min=1
        ),
    ] = None,
) -> None:
    """Run a batch job as a resumable Prefect flow; rerun the same command after a crash to resume."""
    from batch_openai import BatchAuthError, BatchRequestBuilder, BatchValidationError

    try:
        BatchRequestBuilder.from_jsonl(input_path)  # fail fast, before Prefect starts or anything is uploaded
    except BatchValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from batch_openai.flows.output import OutputPathError, check_output_path  # light: no Prefect

    try:
        check_output_path(output)
    except OutputPathError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if batch_size < 1 or max_rounds < 1 or poll_interval <= 0:
        typer.echo("error: --batch-size and --max-rounds must be >= 1 and --poll-interval > 0", err=True)
        raise typer.Exit(2)
    if api_key_block is None:
        from batch_openai.flows.client import MissingAPIKeyError, resolve_api_key

        try:
            resolve_api_key(None)
        except MissingAPIKeyError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    from batch_openai.cli._context import OPTIONS
    from batch_openai.flows.runner import run_batch

    if not OPTIONS.debug:
        _one_line_console_logs()
    try:
        summary = run_batch(
            input_path,
            output,
            description=description,
            max_rounds=max_rounds,
            batch_size=batch_size,
            poll_interval=poll_interval,
            max_poll_interval=max(max_poll_interval, poll_interval),
            work_dir=str(work_dir) if work_dir else None,
            base_url=base_url,
            api_key_block=api_key_block,
            max_enqueued_tokens=max_enqueued_tokens,
        )
    except BatchValidationError as exc:  # e.g. a shard over --max-enqueued-tokens: refused before upload
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except BatchAuthError as exc:  # rerunning will not help until the key is fixed
        typer.echo(
            f"error: the service refused the API key ({exc}); fix OPENAI_API_KEY or --api-key-block", err=True
        )
        raise typer.Exit(1) from None
    except Exception as exc:  # one line, no traceback: the Prefect UI / logs hold the details
        typer.echo(
            f"error: the run did not finish ({type(exc).__name__}: {exc}); rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {name}" for name, n in summary["outcomes"].items() if n)
    typer.echo(f"{summary['total']} rows → {summary['output']} ({counts})")


def _one_line_console_logs() -> None:
    """Show Prefect's progress logs on the terminal without tracebacks (they stay in Prefect's own logs).

    A failed run ends with one `error:` line; `--debug` keeps the tracebacks.
    """
    import logging

    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()  # Prefect configures its handlers lazily; make them exist before wrapping them
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _NoTraceback):
                handler.setFormatter(_NoTraceback(handler.formatter or logging.Formatter()))


class _NoTraceback(logging.Formatter):
    """Formats a record with the wrapped formatter, minus exception and stack text."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        return text.split("\nTraceback (most recent call last)", 1)[0]
