"""`batch-openai demo`: the quick-start job, end to end, on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", "-w", help="Where requests, results and shards go.")
    ] = Path("batch-openai-demo"),
    use_openai: Annotated[
        bool, typer.Option("--openai", help="Run the job on OpenAI (needs OPENAI_API_KEY; costs money).")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N reviews.")] = None,
    step_seconds: Annotated[
        float, typer.Option("--step-seconds", min=0.0, help="Local server: seconds per step (0 = fastest).")
    ] = 0.2,
) -> None:
    """Classify and extract facts from 300 product reviews through the resumable Batch flow.

    By default everything runs on this machine: a local Prefect server (started on first need and left
    running for the next command; `batch-openai prefect stop` stops it) and the local Batch API server
    (mock responder), so no key and no money are needed. Rerun it and the flow re-attaches to the
    batches it already made instead of creating new ones.
    """
    from rich.console import Console
    from rich.table import Table

    from batch_openai.demo.job import run_demo

    console = Console()
    where = "OpenAI" if use_openai else "the local Batch API server (mock responder)"
    console.print(f"[bold]batch-openai demo[/]: 2 requests per review through the Prefect flow, on {where}")
    report = run_demo(workdir.resolve(), use_openai=use_openai, limit=limit, step_seconds=step_seconds)
    summary = report.summary

    table = Table(title="Outcomes", show_header=True)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome, count in sorted(summary["outcomes"].items()):
        table.add_row(outcome, str(count))
    console.print(table)

    usage = summary.get("usage", {})
    cost = summary.get("estimated_cost_usd")
    cost_text = "unknown model price" if cost is None else f"${cost:.4f} at OpenAI batch prices"
    tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    console.print(f"tokens: {tokens_in:,} in, {tokens_out:,} out  ·  cost: {cost_text}")
    sentiments = ", ".join(f"{word} {n}" for word, n in report.sentiments.most_common(5))
    console.print(f"sentiment answers: {sentiments or 'none'}")
    aspects = ", ".join(f"{name} {n}" for name, n in report.aspects.most_common(5))
    console.print(
        f"structured extractions valid against ReviewFacts: {report.extracted}"
        f" (invalid: {len(report.invalid_extractions)}); top aspects: {aspects or 'none'}"
    )
    if not use_openai:
        console.print("[dim]Mock answers are placeholders that respect each request's schema.[/]")
    console.print(
        f"batches: {', '.join(summary.get('batch_ids', []))}  ·  rounds: {summary.get('rounds')}"
        f"  ·  {report.seconds:.1f} s"
    )
    console.print(f"results: {report.output}")
    ui, run_id = summary.get("prefect_ui_url"), summary.get("flow_run_id")
    if ui:
        console.print(
            f"Prefect UI: {ui}/runs/flow-run/{run_id}  (the run, its logs and artifacts)", soft_wrap=True
        )
        console.print(
            f"            {ui}/variables  (the batch registry: one Variable per batch)", soft_wrap=True
        )
        console.print(
            "[dim]The Prefect server stays up so the next command skips its start-up: "
            "`batch-openai prefect status` shows it, `batch-openai prefect stop` stops it.[/]",
            soft_wrap=True,
        )
    else:
        console.print(
            "Prefect ran ephemeral (no UI to show): `batch-openai prefect start`, then rerun, to see the run "
            "and its artifacts in the Prefect UI."
        )
    total = sum(summary["outcomes"].values())
    if total != summary.get("total", total):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command("demo")(demo)
