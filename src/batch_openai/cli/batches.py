"""`batch-openai list | prune | status | cancel | download | results | wait`: batches from the terminal.

`list` reads only the registry (no API key, no OpenAI call, no Prefect server start-up); `list --refresh`
first asks the Batch API about every unfinished batch and updates those records. The other
commands talk to the Batch API through the library (its retries and error mapping), with the client
built from `OPENAI_API_KEY` / `OPENAI_BASE_URL` in the environment or a `.env` file, and update the
registry record of a tracked batch when what they saw differs from what it holds.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batch_openai.cli._context import OPTIONS, CliError

if TYPE_CHECKING:
    from openai import OpenAI

    from batch_openai import BatchJob, BatchRegistry

STATUSES = (
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)
FORMATS = ("jsonl", "csv", "parquet")

BatchIdArg = Annotated[str, typer.Argument(metavar="BATCH_ID", help="The batch id, e.g. batch_abc123.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command(name="list")(list_batches)
    app.command(name="prune")(prune)
    app.command(name="status")(status)
    app.command(name="cancel")(cancel)
    app.command(name="download")(download)
    app.command(name="results")(results)
    app.command(name="wait")(wait)


# ------------------------------------------------------------------------------------------ helpers
def _registry() -> BatchRegistry:
    from batch_openai.flows.registry import BatchRegistry  # the Prefect layer's; imports no Prefect yet

    return BatchRegistry(OPTIONS.registry)


def _client() -> OpenAI:
    """An OpenAI client from OPENAI_API_KEY / OPENAI_BASE_URL (environment first, then `./.env`)."""
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)
    if not os.environ.get("OPENAI_API_KEY"):
        raise CliError(
            "OPENAI_API_KEY is not set: export it, or put OPENAI_API_KEY=... in a .env file here "
            "(OPENAI_BASE_URL selects another Batch API, e.g. `batch-openai local serve`)"
        )
    from openai import OpenAI

    return OpenAI()


def _job(batch_id: str) -> BatchJob:
    from batch_openai import BatchJob

    return BatchJob.from_id(_client(), batch_id)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _observe(batches: list[Any]) -> None:
    """Bring the records of tracked batches up to date; never fails the command (it already succeeded)."""
    try:
        registry = _registry()
        for batch in batches:
            try:
                record = registry.get_record(batch.id)
            except KeyError:
                continue  # not tracked: `status` of someone else's batch must not start tracking it
            counts = batch.request_counts.model_dump() if batch.request_counts else None
            seen = (batch.status, counts, batch.output_file_id, batch.error_file_id)
            stored = (record.status, record.request_counts, record.output_file_id, record.error_file_id)
            if seen != stored:  # writes may start Prefect's ephemeral engine: only when something changed
                registry.track_batch(batch)
    except Exception as exc:
        if OPTIONS.debug:
            raise
        from batch_openai.cli._context import one_line

        _err(f"warning: the registry record was not updated: {one_line(exc)}")


def _require_terminal(job: BatchJob) -> None:
    if not job.is_terminal:
        raise CliError(
            f"batch {job.batch_id} is {job.status!r}, not finished: "
            f"run `batch-openai wait {job.batch_id}` first"
        )


def _settle(job: BatchJob) -> None:
    """A terminal batch can lag a poll or two before its file ids appear: the library's late-file rule."""
    job.settle(poll_interval=2.0, token_limit_retries=0)


# ------------------------------------------------------------------------------------------ list
def list_batches(
    status_filter: Annotated[
        str | None,
        typer.Option("--status", "-s", help=f"Only batches with this status ({', '.join(STATUSES)})."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of a table.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Show at most N (newest).")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Ask the Batch API for the live status and counts of every unfinished batch first, "
            "and update their records (needs OPENAI_API_KEY).",
        ),
    ] = False,
) -> None:
    """List tracked batches, newest first (reads the registry only: no API key, no API call)."""
    if status_filter is not None and status_filter not in STATUSES:
        raise CliError(f"unknown status {status_filter!r}: use one of {', '.join(STATUSES)}", code=2)
    registry = _registry()
    if refresh:
        _refresh(registry)
    records = registry.list(status=status_filter)
    if limit is not None:
        records = records[:limit]
    if as_json:
        import orjson

        from batch_openai.cli._batches_io import record_json

        sys.stdout.buffer.write(
            orjson.dumps([record_json(r) for r in records], option=orjson.OPT_INDENT_2) + b"\n"
        )
        return
    if not records:
        what = f"with status {status_filter!r} " if status_filter else ""
        typer.echo(f"No batches {what}tracked in {registry.location}.")
        return
    from batch_openai.cli._batches_io import records_table

    # On a terminal, long descriptions are cut to its width (ids never are); piped output is never cut.
    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if tty else None
    sys.stdout.write("\n".join(records_table(records, colour=tty, width=width)) + "\n")


def _refresh(registry: BatchRegistry) -> None:
    """Bring every unfinished record up to date from the Batch API (one call per batch)."""
    pending = [r for r in registry.list() if not r.is_terminal]
    if not pending:
        return
    from batch_openai import BatchJob

    client = _client()
    failures = 0
    with registry:
        for record in pending:
            try:
                job = BatchJob.from_id(client, record.batch_id)
            except Exception as exc:  # one unknown or unreachable batch must not hide the others
                failures += 1
                from batch_openai.cli._context import one_line

                _err(f"warning: {record.batch_id} not refreshed: {one_line(exc)}")
                continue
            for batch in job.batches:
                registry.track_batch(batch)
    _err(f"refreshed {len(pending) - failures} unfinished batch(es) from the Batch API")


# ------------------------------------------------------------------------------------------ prune
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", metavar="AGE", help="Only records created longer ago than AGE: 30d, 12h, 90m, 2w."
        ),
    ],
    status_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only these statuses (repeatable). Default: finished ones (completed, failed, expired, "
            "cancelled).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go; delete nothing.")] = False,
) -> None:
    """Delete old records of finished batches from the registry (the batches and their files stay)."""
    from batch_openai.flows.registry import parse_age

    for value in status_filter or []:
        if value not in STATUSES:
            raise CliError(f"unknown status {value!r}: use one of {', '.join(STATUSES)}", code=2)
    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None
    registry = _registry()
    gone = registry.prune(age, statuses=status_filter or None, dry_run=dry_run)
    for record in gone:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {record.batch_id}  {record.status}")
    verb = "would be pruned" if dry_run else "pruned"
    typer.echo(f"{len(gone)} record(s) older than {older_than} {verb} from {registry.location}.")


# ------------------------------------------------------------------------------------------ status
def _requests_text(counts: dict[str, int] | None) -> str:
    if not counts:
        return "-"
    return f"{counts['total']} total, {counts['completed']} completed, {counts['failed']} failed"


def status(
    batch_id: BatchIdArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the batch object as JSON.")] = False,
) -> None:
    """Show the live status of a batch (updates its registry record)."""
    job = _job(batch_id)
    batch = job.batches[0]
    if as_json:
        typer.echo(batch.model_dump_json(indent=2))
    else:
        from rich.console import Console

        counts = batch.request_counts.model_dump() if batch.request_counts else None
        rows = [
            ("Batch", batch.id),
            ("Status", batch.status),
            ("Description", (batch.metadata or {}).get("description") or "-"),
            ("Endpoint", batch.endpoint),
            ("Model", getattr(batch, "model", None) or "-"),
            ("Requests", _requests_text(counts)),
            ("Input file", batch.input_file_id),
            ("Output file", batch.output_file_id or "-"),
            ("Error file", batch.error_file_id or "-"),
        ]
        for error in job.errors[:5]:
            line = f" (line {error.line})" if getattr(error, "line", None) else ""
            rows.append(("Error", f"{error.code}: {error.message}{line}"))
        console = Console(width=None if sys.stdout.isatty() else 100_000, highlight=False)
        for key, value in rows:
            console.print(f"[bold]{key + ':':<13}[/] {value}", soft_wrap=True)
    _observe(job.batches)


# ------------------------------------------------------------------------------------------ cancel
def cancel(batch_id: BatchIdArg) -> None:
    """Cancel a running batch (irreversible; finished requests stay in its output file)."""
    job = _job(batch_id)
    if job.is_terminal:
        raise CliError(f"batch {batch_id} is already {job.status!r}: nothing to cancel")
    job.cancel()
    typer.echo(f"Batch {batch_id} cancel requested. Status: {job.status}")
    _observe(job.batches)


# ------------------------------------------------------------------------------------------ download
def download(
    batch_id: BatchIdArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Download a finished batch's output and error files, merged into one JSONL stream."""
    from batch_openai.cli._batches_io import atomic_output, merge_jsonl

    job = _job(batch_id)
    _require_terminal(job)
    _settle(job)
    with tempfile.TemporaryDirectory(prefix="batch-openai-dl-") as tmp:
        out_path, err_path = job.download(tmp)  # streamed to disk by the library, with its retries
        sources = [p for p in (out_path, err_path) if p is not None]
        with atomic_output(output) as out:
            written = merge_jsonl(sources, out)  # type: ignore[arg-type]
    if output is not None:
        typer.echo(f"Wrote {written} records to {output}")
    _observe(job.batches)


# ------------------------------------------------------------------------------------------ results
def _expected_ids(job: BatchJob, directory: str) -> list[str] | None:
    """The custom_ids of the batch's input file, in order, so requests with no line show as `missing`."""
    import orjson

    from batch_openai import retry_call

    path = Path(directory) / "input.jsonl"
    client = job.client

    def fetch() -> None:
        with (
            client.files.with_streaming_response.content(job.input_file_id) as response,
            open(path, "wb") as f,
        ):
            for chunk in response.iter_bytes(1 << 20):
                f.write(chunk)

    try:
        retry_call(fetch, context=f"downloading input file {job.input_file_id}")
    except Exception as exc:
        from batch_openai.cli._context import one_line

        _err(f"warning: input file unavailable, missing requests cannot be listed: {one_line(exc)}")
        return None
    ids: list[str] = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                ids.append(str(orjson.loads(line)["custom_id"]))
    return ids


def results(
    batch_id: BatchIdArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl, csv or parquet.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """One outcome row per request (succeeded, failed, expired, cancelled, missing) of a finished batch."""
    from batch_openai.cli import _batches_io as io

    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}", code=2)
    if fmt == "parquet" and output is None:
        raise CliError("--format parquet writes a binary file: add --output FILE.parquet", code=2)
    job = _job(batch_id)
    _require_terminal(job)
    _settle(job)
    with tempfile.TemporaryDirectory(prefix="batch-openai-results-") as tmp:
        result = job.result(expected_ids=_expected_ids(job, tmp))
        rows = (io.result_row(item) for item in result)
        if fmt == "csv":
            with io.atomic_output(output, binary=False) as out:
                written = io.write_csv(rows, out)  # type: ignore[arg-type]
        else:
            writer = io.write_parquet if fmt == "parquet" else io.write_jsonl
            with io.atomic_output(output) as out:
                written = writer(rows, out)  # type: ignore[arg-type]
    if output is not None:
        typer.echo(f"Wrote {written} rows to {output}")
    _observe(job.batches)


# ------------------------------------------------------------------------------------------ wait
def wait(
    batch_id: BatchIdArg,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="First polling interval, seconds (grows 1.5x per poll).")
    ] = 15.0,
    max_poll_interval: Annotated[
        float, typer.Option(min=0.01, help="Longest polling interval, seconds.")
    ] = 300.0,
    timeout: Annotated[
        float | None, typer.Option(min=0.0, help="Give up after this many seconds (the batch keeps running).")
    ] = None,
) -> None:
    """Wait for a batch to finish, with a progress bar; exit 0 only if it completed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from batch_openai import BatchTimeoutError

    job = _job(batch_id)
    progress = Progress(
        TextColumn("[bold]{task.fields[status]:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )

    def show(batch: Any) -> None:
        counts = batch.request_counts
        total = counts.total if counts and counts.total else None
        done = (counts.completed + counts.failed) if counts else 0
        progress.update(task, total=total, completed=done, status=batch.status)

    last = {"status": job.status}

    def on_progress(batch: Any) -> None:
        show(batch)
        if batch.status != last["status"]:  # keep the record current as the batch moves
            last["status"] = batch.status
            _observe([batch])

    with progress:
        task = progress.add_task(batch_id, total=None, status=job.status)
        show(job.batches[0])
        try:  # the library's cadence: starts at --poll-interval, grows 1.5x up to --max-poll-interval
            job.settle(
                poll_interval=poll_interval,
                max_poll_interval=max(poll_interval, max_poll_interval),
                on_progress=on_progress,
                timeout=timeout,
                token_limit_retries=0,
            )
        except BatchTimeoutError:
            _observe(job.batches)
            raise CliError(
                f"batch {batch_id} still {job.status!r} after {timeout}s; it keeps running"
            ) from None
    _observe(job.batches)
    counts = job.request_counts
    summary = f"{counts.completed} completed, {counts.failed} failed of {counts.total}"
    if job.status != "completed":
        raise CliError(f"batch {batch_id} ended {job.status!r} ({summary})")
    typer.echo(f"Batch {batch_id} completed: {summary}")
