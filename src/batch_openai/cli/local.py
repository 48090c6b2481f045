"""`batch-openai local ...`: the local Batch API server."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from batch_openai.local.faults import FaultBoard

app = typer.Typer(help="A local, faithful OpenAI Batch API server.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8123,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where files and batches live; a restart resumes from it. Default: a temp dir."),
    ] = None,
    step_seconds: Annotated[
        float,
        typer.Option(help="Seconds in validating and finalizing, and the least in in_progress (0 = fast)."),
    ] = 1.0,
    responder: Annotated[
        str, typer.Option(help="mock (deterministic answers) or forward (to --upstream).")
    ] = "mock",
    upstream: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL for --responder forward, e.g. http://h:8000/v1."),
    ] = None,
    upstream_api_key_env: Annotated[
        str, typer.Option(help="Name of the environment variable holding the upstream's API key, if any.")
    ] = "BATCH_OPENAI_UPSTREAM_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Requests in flight to the upstream (forward).")] = 16,
    enqueued_token_limit: Annotated[
        int | None, typer.Option(help="Per-model cap on input tokens of in-flight batches.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Require this bearer key (401 otherwise). Prefer the env var.",
            envvar="BATCH_OPENAI_LOCAL_API_KEY",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the mock's answers and of random faults.")] = 0,
    completion_window_seconds: Annotated[
        float | None, typer.Option(help="Shorten the 24 h completion window (batches then expire).")
    ] = None,
    shuffle_output: Annotated[bool, typer.Option(help="Finish lines in a shuffled order.")] = False,
    line_failure_rate: Annotated[float, typer.Option(help="Share of lines answered with a 500.")] = 0.0,
    stall_finalizing: Annotated[
        float, typer.Option(help="Extra seconds every batch sits in finalizing.")
    ] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault: 'ROUTE=KIND[,nth=N][,rate=R][,times=T][,retry_after_ms=M]'. Repeatable."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="A model to know beyond those OpenAI's spec names (e.g. a fine-tune). Repeatable."),
    ] = None,
    unknown_models: Annotated[
        str, typer.Option(help="reject (a per-line 404 model_not_found, as OpenAI answers) or accept.")
    ] = "reject",
    strict_bodies: Annotated[
        bool | None,
        typer.Option(
            "--strict-bodies/--no-strict-bodies",
            help="Check each line's body against OpenAI's schemas (default: on for mock, off for forward).",
        ),
    ] = None,
) -> None:
    """Serve the local Batch API at http://HOST:PORT/v1 until interrupted."""
    import asyncio

    import uvicorn

    from batch_openai.local.app import build_app
    from batch_openai.local.config import ServerConfig
    from batch_openai.local.server import bind_socket, build_state, uvicorn_config

    temp_dir = None
    if state_dir is None:  # nothing asked to keep: a private directory, removed on exit
        temp_dir = state_dir = Path(tempfile.mkdtemp(prefix="batch-openai-local-"))
    try:  # a bad setting (e.g. --unknown-models sideways) is one line, and the temp dir goes
        config = ServerConfig(
            state_dir=state_dir,
            step_seconds=step_seconds,
            seed=seed,
            api_key=api_key,
            responder=responder,
            upstream=upstream,
            upstream_api_key=os.environ.get(upstream_api_key_env) or None,
            concurrency=concurrency,
            enqueued_token_limit=enqueued_token_limit,
            completion_window_seconds=completion_window_seconds,
            shuffle_output=shuffle_output,
            line_failure_rate=line_failure_rate,
            stall_finalizing_seconds=stall_finalizing,
            models=tuple(model or ()),
            unknown_models=unknown_models,
            strict_bodies=strict_bodies,
        )
        state = build_state(config)
        for spec in fault or []:
            _add_fault_spec(state.faults, spec)
    except ValueError as exc:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise typer.BadParameter(str(exc)) from None
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise typer.BadParameter(f"cannot bind {host}:{port} ({exc.strerror}); pick another --port") from None
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(build_app(state)))
    state.engine.start()
    kept = "temporary, removed on exit" if temp_dir is not None else str(config.state_dir)
    typer.echo(f"batch-openai local Batch API: http://{host}:{bound}/v1  (state: {kept})")
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        state.engine.stop()
        sock.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _add_fault_spec(board: FaultBoard, spec: str) -> None:
    """Parse 'ROUTE=KIND,key=value,...' into a fault rule."""
    head, *opts = spec.split(",")
    if "=" not in head:
        raise ValueError(f"fault {spec!r}: expected 'ROUTE=KIND', e.g. 'POST /v1/batches=429,nth=1'")
    route, kind = head.rsplit("=", 1)
    kwargs: dict[str, float | int] = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        key = key.strip()
        if key not in ("nth", "rate", "times", "retry_after_ms"):
            raise ValueError(f"fault {spec!r}: unknown option {key!r} (use nth, rate, times, retry_after_ms)")
        kwargs[key] = float(value) if key == "rate" else int(value)
    board.add(route=route.strip(), kind=kind.strip(), **kwargs)  # type: ignore[arg-type]
