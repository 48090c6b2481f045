"""`batch-openai local ...`: the local Batch API server."""

from __future__ import annotations

import typer

app = typer.Typer(help="A local, faithful OpenAI Batch API server.", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Serve the local Batch API (placeholder until the server lands)."""
    raise typer.Exit(1)
