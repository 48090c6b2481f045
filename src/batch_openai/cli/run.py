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
        str,
        typer.Argument(
            metavar="INPUT",
            help="Native batch-input JSONL (one request a line), or with --prompt-template a CSV/JSONL "
            "of records: a path or a URL (s3://, gs://, az://).",
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Output rows: .jsonl (default), .csv or .parquet; a path or a URL."
        ),
    ],
    poll_interval: Annotated[
        float, typer.Option(help="First polling interval, seconds (grows 1.5x per poll).")
    ] = 30.0,
    max_poll_interval: Annotated[float, typer.Option(help="Longest polling interval, seconds.")] = 600.0,
    batch_size: Annotated[int, typer.Option(help="Most requests per batch (service limit 50,000).")] = 50_000,
    max_rounds: Annotated[int, typer.Option(help="Rounds in total; retryable lines get another batch.")] = 2,
    description: Annotated[str | None, typer.Option(help="Stored in each batch's metadata.")] = None,
    work_dir: Annotated[
        str | None,
        typer.Option(
            help="Shards and downloads, a path or a URL (default $BATCH_OPENAI_WORK_DIR or "
            "./.batch_openai/work)."
        ),
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
    output_format: Annotated[
        str | None,
        typer.Option(help="Write jsonl, csv or parquet whatever the --output suffix says."),
    ] = None,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse/--no-reuse",
            help="Reuse answers an earlier run in the work directory finished (by request content).",
        ),
    ] = True,
    prompt_template: Annotated[
        str | None,
        typer.Option(
            help="Template mode: INPUT is a CSV/JSONL of records; one chat request per record, with "
            "{field} placeholders filled from it.",
            rich_help_panel="Template mode",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Template mode: the model every request uses.", rich_help_panel="Template mode"),
    ] = None,
    id_field: Annotated[
        str,
        typer.Option(
            help="Template mode: the record field that becomes the custom_id.",
            rich_help_panel="Template mode",
        ),
    ] = "id",
    system_prompt: Annotated[
        str | None,
        typer.Option(
            help="Template mode: a system message for every request.", rich_help_panel="Template mode"
        ),
    ] = None,
    response_schema: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="Template mode: a JSON Schema (root type object) the answers must follow; rows gain "
            "'parsed' and 'parse_error'.",
            rich_help_panel="Template mode",
        ),
    ] = None,
    response_model: Annotated[
        str | None,
        typer.Option(
            metavar="module:Class",
            help="Template mode: a Pydantic model the answers must follow (instead of --response-schema).",
            rich_help_panel="Template mode",
        ),
    ] = None,
) -> None:
    """Run a batch job as a resumable Prefect flow; rerun the same command after a crash to resume."""
    from batch_openai import BatchAuthError, BatchStorageError, BatchTransientError, BatchValidationError

    template_options: dict[str, object] = {}
    try:  # fail fast, before Prefect starts or anything is uploaded
        template_options = _check_input(
            input_path,
            prompt_template=prompt_template,
            model=model,
            id_field=id_field,
            system_prompt=system_prompt,
            response_schema=response_schema,
            response_model=response_model,
        )
    except (BatchValidationError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if work_dir is not None:
        from batch_openai.storage import filesystem, is_url

        try:
            if is_url(work_dir):
                filesystem(work_dir)  # an unknown scheme or a missing extra, before Prefect starts
        except BatchStorageError as exc:
            typer.echo(f"error: --work-dir: {exc}", err=True)
            raise typer.Exit(2) from None
    from batch_openai.flows.output import (  # light: no Prefect
        OutputPathError,
        check_output_path,
        infer_format,
    )
    from batch_openai.flows.reuse import same_file

    try:
        check_output_path(output)
        infer_format(output, output_format)
        if same_file(input_path, output):
            raise ValueError(
                f"--output {str(output)!r} is the input file (the same path, a hard link or a symlink): "
                "writing the rows there would destroy the input; choose another output path"
            )
    except (OutputPathError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if batch_size < 1 or max_rounds < 1 or poll_interval <= 0:
        typer.echo("error: --batch-size and --max-rounds must be >= 1 and --poll-interval > 0", err=True)
        raise typer.Exit(2)
    if api_key_block is None:  # (a key in a Secret block is read inside the flow, on the worker)
        from batch_openai.flows.client import MissingAPIKeyError, check_service, resolve_api_key

        try:
            resolve_api_key(None)
            check_service(base_url, None)  # a refused key or a dead URL: found now, not after start-up
        except (MissingAPIKeyError, BatchAuthError, BatchTransientError, ValueError) as exc:
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
            work_dir=work_dir or None,
            base_url=base_url,
            api_key_block=api_key_block,
            max_enqueued_tokens=max_enqueued_tokens,
            output_format=output_format,
            reuse=reuse,
            **template_options,
        )
    except BatchValidationError as exc:  # e.g. a shard over --max-enqueued-tokens: refused before upload
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except BatchAuthError as exc:  # rerunning will not help until the key is fixed
        typer.echo(
            f"error: the service refused the API key ({exc}); fix OPENAI_API_KEY or --api-key-block", err=True
        )
        raise typer.Exit(1) from None
    except OSError as exc:  # a full disk, a read-only or vanished directory: a rerun alone cannot help
        import errno

        from batch_openai.flows.workspace import work_root

        where = f" at {exc.filename}" if exc.filename else f" in {work_root(work_dir or None)}"
        fix = "free some space" if exc.errno == errno.ENOSPC else "fix the path or its permissions"
        typer.echo(f"error: cannot write{where} ({exc.strerror or exc}); {fix}, then run it again", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # one line, no traceback: the Prefect UI / logs hold the details
        typer.echo(
            f"error: the run did not finish ({type(exc).__name__}: {exc}); rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {name}" for name, n in summary["outcomes"].items() if n)
    typer.echo(f"{summary['total']} rows → {summary['output']} ({counts})")


def _check_input(
    input_path: str,
    *,
    prompt_template: str | None,
    model: str | None,
    id_field: str,
    system_prompt: str | None,
    response_schema: Path | None,
    response_model: str | None,
) -> dict[str, object]:
    """Validate INPUT as the flow will read it; return the template-mode keywords for `run_batch`.

    Native mode: every request line is checked by the library. Template mode: the records are rendered
    to a temporary file exactly as the flow renders them, so a bad template, a missing field, a bad schema
    or an unimportable model fails here. Raises ValueError / BatchValidationError / OSError with one line.
    """
    from batch_openai import BatchRequestBuilder
    from batch_openai.storage import basename

    name = basename(input_path)
    if prompt_template is None:
        given = [
            flag
            for flag, value in (
                ("--model", model),
                ("--system-prompt", system_prompt),
                ("--response-schema", response_schema),
                ("--response-model", response_model),
            )
            if value is not None
        ]
        if Path(name).suffix.lower() == ".csv":
            raise ValueError(
                f"{name} is a CSV of records; pass --prompt-template (with {{field}} "
                "placeholders) and --model to send one chat request per record"
            )
        if given:
            raise ValueError(f"{', '.join(given)} only apply in template mode; pass --prompt-template too")
        BatchRequestBuilder.check_jsonl(input_path)  # streamed: a million requests never sit in memory
        return {}
    if not model:
        raise ValueError("--prompt-template needs --model: the model every rendered request uses")
    if response_schema is not None and response_model is not None:
        raise ValueError("pass either --response-schema or --response-model, not both")
    schema: object = None
    if response_schema is not None:
        import orjson

        try:
            schema = orjson.loads(response_schema.read_bytes())
        except OSError as exc:
            raise ValueError(
                f"cannot read --response-schema {str(response_schema)!r} ({exc.strerror})"
            ) from None
        except orjson.JSONDecodeError as exc:
            raise ValueError(
                f"--response-schema {str(response_schema)!r} is not valid JSON ({exc}); give a .json file "
                "holding one JSON Schema object"
            ) from None
        if not isinstance(schema, dict):
            raise ValueError(
                f"--response-schema {str(response_schema)!r} holds a JSON {type(schema).__name__}, not a "
                "JSON Schema object"
            )
    import tempfile

    from batch_openai.flows.template import render_requests, response_format_for  # light: no Prefect

    response_format = response_format_for(schema, response_model)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="batch-openai-check-") as tmp:
        try:
            render_requests(
                input_path,
                Path(tmp) / "input.jsonl",
                prompt_template=prompt_template,
                model=model,
                id_field=id_field,
                system_prompt=system_prompt,
                response_format=response_format,
            )
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not UTF-8 text; save the records as UTF-8") from None
    options: dict[str, object] = {
        "prompt_template": prompt_template,
        "model": model,
        "id_field": id_field,
        "system_prompt": system_prompt,
    }
    if schema is not None:  # only when set: the flow gains these parameters with the parse step
        options["response_schema"] = schema
    if response_model is not None:
        options["response_model"] = response_model
    return options


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
