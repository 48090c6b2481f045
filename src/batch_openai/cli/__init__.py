"""The `batch-openai` command line.

Each command group lives in its own module and imports heavy dependencies (Prefect, the
server, pandas) inside the command body, so `batch-openai --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from batch_openai.cli import _context
from batch_openai.cli import batches as _batches
from batch_openai.cli import demo as _demo
from batch_openai.cli import local as _local
from batch_openai.cli import prefect_server as _prefect_server
from batch_openai.cli import run as _run

app = typer.Typer(
    name="batch-openai",
    help="Run and manage OpenAI Batch API jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            metavar="PATH",
            help="A Prefect home of its own for the batch registry (records in PATH/prefect.db). "
            "Default: $OPENAI_BATCH_REGISTRY, else Prefect's active settings "
            "(PREFECT_API_URL, else PREFECT_HOME).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Run and manage OpenAI Batch API jobs."""
    _context.OPTIONS.registry = registry
    _context.OPTIONS.debug = debug or _context.OPTIONS.debug


app.add_typer(_local.app, name="local")
app.add_typer(_prefect_server.app, name="prefect")
_batches.register(app)
_run.register(app)
_demo.register(app)


def main() -> None:
    """Console-script entry point: errors become one line on stderr (full traceback with `--debug`)."""
    try:
        app()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if _context.OPTIONS.debug:
            raise
        print(f"error: {_context.one_line(exc)}", file=sys.stderr)
        sys.exit(exc.code if isinstance(exc, _context.CliError) else 1)
