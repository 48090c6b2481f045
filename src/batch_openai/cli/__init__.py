"""The `batch-openai` command line.

Each command group lives in its own module and imports heavy dependencies (Prefect, the
server, pandas) inside the command body, so `batch-openai --help` stays fast.
"""

from __future__ import annotations

import typer

from batch_openai.cli import batches as _batches
from batch_openai.cli import demo as _demo
from batch_openai.cli import local as _local
from batch_openai.cli import run as _run

app = typer.Typer(
    name="batch-openai",
    help="Run and manage OpenAI Batch API jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(_local.app, name="local")
_batches.register(app)
_run.register(app)
_demo.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
