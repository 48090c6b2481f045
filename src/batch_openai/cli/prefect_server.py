"""`batch-openai prefect status | start | stop`: the local Prefect server batch-openai keeps for you.

The first command that needs Prefect (run, demo, a registry write) starts it when `PREFECT_API_URL` is
not set; every later command reuses it (see `batch_openai.flows.embedded`). These commands show it,
start it ahead of time, and stop it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from batch_openai.cli._context import CliError

app = typer.Typer(
    name="prefect",
    help="The local Prefect server batch-openai starts on first need and reuses (status, start, stop).",
    no_args_is_help=True,
)


def _where() -> tuple[str | None, Path]:
    from batch_openai.flows.embedded import user_prefect

    return user_prefect()


@app.command("status")
def status() -> None:
    """Show whether batch-openai's local Prefect server is running, where, and how to stop it."""
    from batch_openai.flows import embedded

    api_url, home = _where()
    if api_url:
        typer.echo(
            f"PREFECT_API_URL is set ({api_url}): batch-openai uses that Prefect server and starts none."
        )
    server = embedded.running(home)
    if server is None:
        typer.echo(f"No batch-openai Prefect server is running for Prefect home {home}.")
        if not api_url:
            mode = embedded.mode()
            what = {
                "auto": "the next command that needs Prefect starts one",
                "reuse": f"{embedded.MODE_ENV}=reuse: commands use Prefect's ephemeral engine",
                "off": f"{embedded.MODE_ENV}=off: commands use Prefect's ephemeral engine",
            }[mode]
            typer.echo(f"{what} (`batch-openai prefect start` starts it now).")
        return
    typer.echo(f"Prefect server running: UI {server.url}  ·  API {server.api_url}")
    typer.echo(f"  pid {server.pid}, started {server.started_at}, Prefect home {server.home}")
    typer.echo(f"  log {server.log}")
    typer.echo("  runs:      " + server.url + "/runs")
    typer.echo("  registry:  " + server.url + "/variables")
    typer.echo("Stop it with `batch-openai prefect stop`.")


@app.command("start")
def start() -> None:
    """Start the local Prefect server now (no-op if it runs); later commands reuse it."""
    from batch_openai.flows import embedded

    api_url, home = _where()
    if api_url:
        raise CliError(f"PREFECT_API_URL is set ({api_url}): batch-openai uses that server; unset it first")
    server = embedded.running(home)
    if server is not None:
        typer.echo(f"Already running: UI {server.url} (pid {server.pid}).")
        return
    typer.echo(f"Starting a Prefect server for Prefect home {home} …", err=True)
    server = embedded.start(home)
    typer.echo(
        f"Prefect server running: UI {server.url} (pid {server.pid}); "
        "stop it with `batch-openai prefect stop`."
    )


@app.command("stop")
def stop() -> None:
    """Stop the local Prefect server batch-openai started (its database and records stay)."""
    from batch_openai.flows import embedded

    _, home = _where()
    server = embedded.stop(home)
    if server is None:
        typer.echo(f"No batch-openai Prefect server was running for Prefect home {home}.")
    else:
        typer.echo(f"Stopped the Prefect server at {server.url} (pid {server.pid}).")
