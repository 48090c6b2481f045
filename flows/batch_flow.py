"""The resumable flow: build → submit → wait → collect, in rounds, with one output row per input.

Rerunning with the same input after a crash at any point re-attaches: shards are named by content, the
submit task is cached by content (and the fingerprint in batch metadata backs the cache up), finished
downloads are reused, and the output is written atomically at the end.

Work directory layout (`work_dir`, default `$BATCH_OPENAI_WORK_DIR` or `./.batch_openai/work`):
    <work_dir>/<input key>/input.jsonl                 rendered requests (template mode only)
    <work_dir>/<input key>/round-<n>/shards/*.jsonl    content-named batch input files
    <work_dir>/<input key>/round-<n>/retry-input.jsonl lines that get another round (n >= 2)
    <work_dir>/<input key>/round-<n>/downloads/        <batch_id>/ files, <batch_id>.rows.jsonl
    <work_dir>/<input key>/result.jsonl                merged rows before they are copied to the output
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from prefect import flow, task
from prefect.logging import get_run_logger
from prefect.states import Completed, Failed
from pydantic import BaseModel, ConfigDict, Field

from batch_openai import BatchAuthError, BatchTransientError
from batch_openai.flows.artifacts import (
    board_for,
    drop_board,
    estimate_cost,
    outcome_line,
    publish_report,
    publish_summary,
)
from batch_openai.flows.client import MissingAPIKeyError, check_service
from batch_openai.flows.output import check_output_path, convert_jsonl, infer_format
from batch_openai.flows.results import (
    USAGE_KEYS,
    concatenate,
    count_lines,
    merge_rows,
    write_retry_input,
    write_rows,
)
from batch_openai.flows.reuse import (
    STORE_NAME,
    AnswerStore,
    pointer_path,
    previous_key,
    publish_segment,
    remember,
    same_file,
    snapshot_input,
    split_reusable,
    sync_segments,
)
from batch_openai.flows.suspend import wait_by_suspending
from batch_openai.flows.tasks import (
    BatchRef,
    build_shards,
    collect_batch,
    submit_batch,
    wait_for_batch,
)
from batch_openai.flows.workspace import Workspace, load_storage_block
from batch_openai.storage import atomic_binary, basename, fetch, is_file, is_url, open_read, publish

MAX_RESUBMITS = 5  # per shard and round: remote cancels/deletes (token-limit requeues happen in the wait)
COLLECT_PARALLELISM = 4  # batches downloaded and classified at once


@task(name="render-input")
def render_input(
    records_path: str,
    target: str,
    prompt_template: str,
    model: str,
    id_field: str,
    system_prompt: str | None,
    response_format: dict[str, Any] | None = None,
) -> str:
    """Template mode: write one chat request per record (see `batch_openai.flows.template`).

    A record the template cannot be filled from is the user's mistake: the task ends Failed with that
    one-line message (no traceback), and the flow reports it.
    """
    from batch_openai.flows.template import render_requests

    try:
        return str(
            render_requests(
                records_path,
                target,
                prompt_template=prompt_template,
                model=model,
                id_field=id_field,
                system_prompt=system_prompt,
                response_format=response_format,
            )
        )
    except (ValueError, FileNotFoundError) as exc:
        return Failed(message=_one_line(exc), data=exc)  # type: ignore[return-value]


@task(name="plan-retry", task_run_name="plan-retry-{round_no}")
def plan_retry(rows_paths: list[str], shard_paths: list[str], target: str, round_no: int) -> int:
    """Write the lines that can pass on another try into the next round's input; return their count."""
    return write_retry_input(rows_paths, shard_paths, Path(target))


@task(name="merge-output")
def merge_output(
    input_path: str,
    rows_by_round: list[list[str]],
    merged_path: str,
    output_path: str,
    output_format: str,
    in_order: bool = False,
    response_schema: dict[str, Any] | str | None = None,
    response_model: str | None = None,
) -> dict[str, Any]:
    """Merge every round's rows in input order, parse them (when a schema or model is given) and
    write the output file atomically.

    `in_order`: one round whose rows files, in the order given, already follow the input (a single
    endpoint and model): they are concatenated without parsing a line.
    """
    from batch_openai.flows.parsing import parse_rows_file, row_parser

    fmt = infer_format(output_path, output_format)
    target = output_path
    if is_url(output_path):  # written here, then published whole (one upload)
        output_path = str(staged_output(merged_path, fmt))
    parser = row_parser(response_schema, response_model)
    direct = fmt == "jsonl" and parser is None  # the merged rows are the output
    merged: dict[str, Any] = {}
    if in_order and len(rows_by_round) == 1:
        concatenate(rows_by_round[0], Path(output_path if direct else merged_path))
    else:
        merged = merge_rows(input_path, rows_by_round, Path(output_path if direct else merged_path))
    if parser is not None:  # each row gains `parsed` and `parse_error`
        merged["parse"] = parse_rows_file(merged_path, output_path if fmt == "jsonl" else merged_path, parser)
    if fmt != "jsonl":
        convert_jsonl(merged_path, output_path, fmt)
    if target != output_path:
        publish(output_path, target)
    return merged


def staged_output(merged_path: str | Path, fmt: str) -> Path:
    """Where an output bound for a URL is written before it is published."""
    return Path(merged_path).with_name(f"output.{fmt}")


def _run_round(
    shards: list[dict[str, Any]], round_no: int, round_dir: Path, opts: dict[str, Any]
) -> list[dict[str, Any]]:
    """Submit, wait for and collect one round of shards with the public tasks; one summary per shard.

    Each shard carries a `label` ("shard 3/12", "shard 1/2 of round 2") that names its task runs and its
    row in the progress table.
    """
    log = get_run_logger()
    Workspace.of(opts["work_dir"]).push(s["path"] for s in shards)  # a rerun elsewhere finds them
    conn = {
        "base_url": opts["base_url"],
        "api_key_block": opts["api_key_block"],
        "work_dir": opts["work_dir"],
        "result_storage": opts["result_storage"],
    }
    board = board_for(opts["run_id"])
    by_fp = {s["fingerprint"]: s for s in shards}
    label = {s["fingerprint"]: s["label"] for s in shards}
    futures = {
        s["fingerprint"]: submit_batch.with_options(task_run_name=f"submit {s['label']}").submit(
            s, description=opts["description"], **conn
        )
        for s in shards
    }
    pending = {fp: f.result() for fp, f in futures.items()}
    for fp, ref in pending.items():
        for batch_id in ref.batch_ids:
            board.label(batch_id, label[fp])
    if opts["wait_mode"] == "suspend":
        wait_by_suspending([b for ref in pending.values() for b in ref.batch_ids], round_no, opts)
    ended: dict[str, BatchRef] = {}
    resubmits: dict[str, int] = defaultdict(int)
    while pending:
        waits = {
            fp: wait_for_batch.with_options(
                task_run_name=f"wait for {label[fp]} ({ref.batch_ids[0]})"
            ).submit(ref, poll_interval=opts["poll_interval"], max_poll_interval=opts["max_poll_interval"])
            for fp, ref in pending.items()
        }
        pending = {}
        for fp, future in waits.items():
            ref = future.result()
            if ref.resubmit is None:
                ended[fp] = ref
                continue
            if resubmits[fp] >= MAX_RESUBMITS:
                raise RuntimeError(
                    f"batch {ref.batch_ids[0]} was {ref.resubmit} {MAX_RESUBMITS} times; giving up"
                )
            resubmits[fp] += 1
            log.info("resubmitting %s (attempt %d): %s", label[fp], ref.attempt + 1, ref.resubmit)
            pending[fp] = submit_batch.with_options(
                task_run_name=f"resubmit {label[fp]} (attempt {ref.attempt + 1})"
            )(by_fp[fp], description=opts["description"], attempt=ref.attempt + 1, **conn)
            for batch_id in pending[fp].batch_ids:
                board.label(batch_id, label[fp])
    downloads = round_dir / "downloads"
    # Each rows file is built from one batch at a time; a bounded number at once keeps a
    # 20-batch run's peak at a few batches' worth instead of all twenty.
    order = [(ended[s["fingerprint"]], s["label"]) for s in shards]
    summaries: list[dict[str, Any]] = []
    for start in range(0, len(order), COLLECT_PARALLELISM):
        wave = [
            write_batch_rows.with_options(task_run_name=f"collect {name} ({ref.batch_ids[0]})").submit(
                ref, str(downloads), round_no, work_dir=opts["work_dir"]
            )
            for ref, name in order[start : start + COLLECT_PARALLELISM]
        ]
        summaries.extend(w.result() for w in wave)
    return summaries


def _label_shards(shards: list[dict[str, Any]], round_no: int) -> list[dict[str, Any]]:
    """The shard records with a human label: "shard 3/12", or "shard 1/2 of round 2"."""
    suffix = f" of round {round_no}" if round_no > 1 else ""
    return [{**s, "label": f"shard {i}/{len(shards)}{suffix}"} for i, s in enumerate(shards, 1)]


@task(name="write-rows", task_run_name="rows of {ref.batch_ids[0]}")
def write_batch_rows(
    ref: BatchRef, download_dir: str, round_no: int, work_dir: str | None = None
) -> dict[str, Any]:
    """Collect an ended batch (`collect_batch`) and write one row per shard line, in shard order.

    The rows file is named by batch id and written atomically; a terminal batch never changes, so a
    rerun after a crash reuses a finished rows file instead of collecting again. With a URL `work_dir`
    the downloads, rows and summary are published there, and a run on another machine pulls them.
    """
    workspace = Workspace.of(work_dir)
    rows_path = Path(download_dir) / f"{ref.batch_ids[0]}.rows.jsonl"
    summary_path = rows_path.with_suffix(".summary.json")
    if workspace.pull([summary_path, rows_path]):
        summary = orjson.loads(summary_path.read_bytes())
        if count_lines(rows_path) == sum(summary["outcomes"].values()):  # whole: reuse it
            # paths are this machine's (a pulled summary names another's)
            return {**summary, "rows_path": str(rows_path), "shard_path": ref.input_files[0]}
    result = collect_batch.fn(ref, download_dir)
    summary = write_rows(result, ref, rows_path, round_no)
    with atomic_binary(summary_path, durable=False) as fh:
        fh.write(orjson.dumps(summary))
    batch_dir = Path(download_dir) / ref.batch_ids[0]
    workspace.push([*sorted(batch_dir.glob("*.jsonl")), rows_path, summary_path])  # the summary last
    get_run_logger().info("batch %s: %s", ref.batch_ids[0], summary["outcomes"])
    return summary


def _queue_waves(
    shards: list[dict[str, Any]], max_enqueued_tokens: int | dict[str, int] | None
) -> list[list[dict[str, Any]]]:
    """Shards grouped into waves that fit the enqueued-token cap per model (one wave when there is none)."""
    if max_enqueued_tokens is None:
        return [shards]
    from batch_openai import plan_waves
    from batch_openai.tokens import file_input_tokens

    sized = [(s["model"], file_input_tokens(s["path"], s["endpoint"])) for s in shards]
    waves = plan_waves(sized, max_enqueued_tokens)
    if len(waves) > 1:
        get_run_logger().info("%d shard(s) in %d wave(s) under max_enqueued_tokens", len(shards), len(waves))
    return [[shards[i] for i in wave] for wave in waves]


# ---------------------------------------------------------------- what a person sees
# A user's mistake (a missing input, a template field the records lack, a CSV without a template, a dead
# base URL, a refused key) ends the run Failed with a one-line message naming the fix: the flow returns
# `Failed(message=..., data=exc)`, which Prefect logs as one line (no traceback), while a caller of the
# flow still gets `exc` raised. Anything else is a bug and keeps Prefect's traceback.
USER_MISTAKES: tuple[type[BaseException], ...] = (
    ValueError,  # BatchValidationError, OutputPathError and the template's errors too
    FileNotFoundError,
    MissingAPIKeyError,
    BatchAuthError,
    BatchTransientError,
)


class _Mistake(Exception):
    """Carries a user's mistake out of the checks to the flow's single `Failed` return."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _first_model(path: Any) -> str | None:
    """The model of a native batch-input file's first request, or None (never raises)."""
    with contextlib.suppress(Exception), open_read(str(path)) as fh:
        for line in fh:
            if line.strip():
                model = orjson.loads(line).get("body", {}).get("model")
                return str(model) if model else None
    return None


def run_name() -> str:
    """The flow run's name from its parameters: "<description or input file name> · <model>"."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    what = params.get("description") or basename(params.get("input_path") or "batch")
    model = params.get("model") or (
        None if params.get("prompt_template") else _first_model(params.get("input_path"))
    )
    return f"{what} · {model}" if model else str(what)


def _worker_path_hint() -> str:
    import os
    import socket

    return f"on the worker {socket.gethostname()!r} (working directory {os.getcwd()})"


def _check_input(input_path: str, prompt_template: str | None, model: str | None) -> None:
    """The input (a path on this machine, or a URL) exists and fits the mode (records need a template,
    requests do not)."""
    if not is_file(input_path):
        if is_url(input_path):
            raise FileNotFoundError(
                f"input_path {input_path!r} names no object (or these credentials cannot see it); check "
                "the URL and the storage credentials"
            )
        path = Path(input_path).expanduser()
        kind = "a directory, not a file" if path.is_dir() else "a path that does not exist"
        raise FileNotFoundError(
            f"input_path {input_path!r} is {kind} {_worker_path_hint()}; give the path of a file this "
            "worker can read"
        )
    name = basename(input_path)
    if prompt_template:
        if not model:
            raise ValueError("template mode needs `model`: the model every rendered request uses")
        return
    if Path(name).suffix.lower() in (".csv", ".tsv"):
        raise ValueError(
            f"input_path {name!r} is a CSV of records: give prompt_template (with {{column}} "
            "placeholders) and model to turn each row into a request, or a native batch-input JSONL"
        )
    with open_read(input_path) as fh:
        first = next((line for line in fh if line.strip()), b"")
    try:
        obj = orjson.loads(first) if first else None
    except orjson.JSONDecodeError:
        obj = None  # the builder names the line and the problem
    if isinstance(obj, dict) and "custom_id" not in obj and "body" not in obj:
        raise ValueError(
            f"input_path {name!r} holds records (fields {sorted(obj)[:6]}), not batch requests: give "
            "prompt_template and model to render them, or a native batch-input JSONL (custom_id, method, "
            "url, body per line)"
        )


def _tag_run(run_tags: list[str]) -> None:
    """Add tags to the current flow run (they show on the run page and in the Runs list filter)."""
    from prefect import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.update_flow_run(ctx.flow_run.id, tags=sorted({*(ctx.flow_run.tags or []), *run_tags}))


def _first_failures(rows_path: Path, limit: int = 10) -> list[dict[str, Any]]:
    """The first rows of the output that did not succeed (for the report)."""
    found: list[dict[str, Any]] = []
    with contextlib.suppress(Exception), open(rows_path, "rb") as fh:
        for line in fh:
            if b"succeeded" in line:
                row = orjson.loads(line)
                if row.get("outcome") == "succeeded":
                    continue
            else:
                row = orjson.loads(line)
            found.append(row)
            if len(found) >= limit:
                break
    return found


@flow(
    name="batch-openai-run",
    flow_run_name=run_name,
    persist_result=True,
    result_serializer="json",
    log_prints=False,
)
def batch_run_flow(
    input_path: Annotated[str, Field(examples=["/data/reviews.csv", "/data/requests.jsonl"])],
    output_path: Annotated[str, Field(examples=["/data/results.jsonl", "/data/results.parquet"])],
    description: Annotated[str | None, Field(examples=["nightly eval"])] = None,
    max_rounds: int = 2,
    batch_size: int = 50_000,
    max_bytes: int = 209_715_200,
    poll_interval: float = 30.0,
    max_poll_interval: float = 600.0,
    wait_mode: Literal["poll", "suspend"] = "poll",
    suspend_timeout_hours: float = 30.0,
    output_format: Literal["jsonl", "csv", "parquet"] | None = None,
    prompt_template: Annotated[
        str | None, Field(examples=["Is this review positive or negative? One word.\n\n{text}"])
    ] = None,
    model: Annotated[str | None, Field(examples=["gpt-4o-mini"])] = None,
    id_field: Annotated[str, Field(examples=["review_id"])] = "id",
    system_prompt: str | None = None,
    work_dir: str | None = None,
    base_url: str | None = None,
    api_key_block: str | None = None,
    prices: dict[str, list[float]] | None = None,
    max_enqueued_tokens: int | dict[str, int] | None = None,
    response_schema: dict[str, Any] | str | None = None,
    response_model: str | None = None,
    reuse: bool = True,
    storage_block: str | None = None,
    result_storage: str | None = None,
) -> dict[str, Any]:
    """Run bulk LLM work through the Batch API and write one row per input with its outcome.

    Args:
        input_path: A path on the worker that runs this flow (not on your laptop), or a URL
            (`s3://bucket/requests.jsonl`, `gs://`, `az://`): a native batch-input JSONL (one request a
            line), or, with `prompt_template`, a CSV/JSONL of records.
        output_path: A path on the worker, or a URL: where the rows go (`custom_id`, `outcome`,
            `content`, ...). JSONL unless the suffix or `output_format` says csv/parquet. Written
            atomically at the end (an object appears whole or not at all).
        description: Stored in each batch's metadata; shows up in the OpenAI dashboard.
        max_rounds: Rounds in total, the first included: lines that can pass on a second try
            (expired, timeouts, 429/5xx) go into a new batch, up to this many rounds. 1: no retries.
        batch_size: Most requests per batch file (the service allows 50,000).
        max_bytes: Largest batch file in bytes (the service allows 200 MB).
        poll_interval: First polling interval in seconds; it grows 1.5x per poll up to `max_poll_interval`.
        max_poll_interval: Longest polling interval in seconds.
        wait_mode: `poll` keeps this run polling (short or local jobs). `suspend` (deployments only)
            frees the worker after submitting; the collector deployment resumes the run when its
            batches have ended.
        suspend_timeout_hours: How long a suspended run may wait before Prefect fails it (longer than 24 h).
        output_format: Force jsonl, csv or parquet instead of inferring it from the output suffix.
        prompt_template: Template mode: a prompt with `{field}` placeholders filled from each record.
        model: Template mode: the model every request uses.
        id_field: Template mode: the record field that becomes the `custom_id`.
        system_prompt: Template mode: an optional system message.
        work_dir: Shards and downloads (default `$BATCH_OPENAI_WORK_DIR` or `./.batch_openai/work`); a URL
            (`s3://bucket/batch-work`) lets workers that share no disk share one job and its reruns.
        base_url: An OpenAI-compatible API base URL (default `OPENAI_BASE_URL` or OpenAI). Not a secret.
        api_key_block: Name of a Prefect `Secret` block holding the API key (default: `OPENAI_API_KEY`).
        prices: Batch prices as {model: [input_usd_per_1M, output_usd_per_1M]} for the cost estimate.
        max_enqueued_tokens: Your organisation's cap on enqueued input tokens per model (one number, or
            {model: tokens}): shards are submitted in waves whose estimated input tokens fit under it, so
            they do not fail with `token_limit_exceeded`. None: submit every shard at once.
        response_schema: A JSON Schema object (paste it here) the answers must follow: template-mode
            requests become strict structured-output requests, and each output row gains `parsed` (the
            validated object, or null) and `parse_error`.
        response_model: The same with a Pydantic model, as `"package.module:Model"` importable on the
            worker.
        reuse: Reuse finished answers: a request (url and body) that an earlier run in this work
            directory answered successfully is not submitted again, whatever its custom_id.
        storage_block: Object-storage credentials from a Prefect block, as `<type>/<name>`: a `secret`
            holding `{"s3": {fsspec options}}`, a `remote-file-system` block, or prefect-aws's
            `aws-credentials` (default: the environment, instance roles, the back end's config).
        result_storage: Where the submit cache lives: a Prefect storage block slug or a URL (default:
            `<work_dir>/submit-cache` for a URL work dir, else Prefect's local result storage).
    """
    log = get_run_logger()
    from prefect.runtime import flow_run

    run_id = str(flow_run.id or "")
    template_mode = bool(prompt_template)
    try:  # every check a user's mistake can fail comes first, before any artifact or upload
        checked = _checked_inputs(
            input_path,
            output_path,
            output_format,
            prompt_template,
            model,
            response_schema,
            response_model,
            work_dir,
            storage_block,
        )
        out, response_format, workspace = checked
        root = workspace.local
        if prompt_template:
            from batch_openai.flows.template import render_key

            records = _local_records(input_path, root)
            key = render_key(
                records,
                template=prompt_template,
                model=model,
                id=id_field,
                system=system_prompt,
                response_format=response_format,
            )
            run_dir = root / f"t-{key}"
            rendered = render_input.with_options(
                task_run_name=f"render requests from {basename(input_path)}"
            )(
                records,
                str(run_dir / "input.jsonl"),
                prompt_template,
                model,
                id_field,
                system_prompt,
                response_format,
                return_state=True,
            )
            if rendered.is_failed():
                exc = rendered.result(raise_on_failure=False)
                if not isinstance(exc, USER_MISTAKES):
                    rendered.result()  # a bug: raise it as it is
                raise _Mistake(exc)
            native = str(rendered.result())
        else:  # the run works from a copy: editing the input while it waits changes nothing
            snapshot, key = snapshot_input(input_path, root)
            native, run_dir = str(snapshot), snapshot.parent
        pointer = pointer_path(input_path, root)
        workspace.pull([pointer])  # the last run of this input may have been on another machine
        previous = previous_key(input_path, key, root)
        workspace.push([pointer])
        if previous not in (None, key):
            log.warning(
                "%s changed since its last run here: finished answers are reused, the rest submitted",
                basename(input_path),
            )
        try:
            check_service(base_url, api_key_block)
        except USER_MISTAKES as exc:
            raise _Mistake(exc) from None
    except _Mistake as mistake:
        message = _one_line(mistake.exc)
        log.error("%s", message)
        return Failed(message=message, data=mistake.exc)  # type: ignore[return-value]
    board = board_for(run_id)
    board.start()
    opts = {
        "description": description,
        "poll_interval": poll_interval,
        "max_poll_interval": max_poll_interval,
        "wait_mode": wait_mode,
        "suspend_timeout_hours": suspend_timeout_hours,
        "base_url": base_url,
        "api_key_block": api_key_block,
        "run_dir": str(run_dir),
        "run_id": run_id,
        "work_dir": workspace.remote or str(root),
        "result_storage": result_storage,
    }
    try:  # a failure from here on is shown on the progress artifact too (a suspension is no Exception)
        # The same input again re-attaches to its own batches (the submit cache); a new or edited one
        # takes every answer an earlier run finished.
        reused = _reuse_answers(native, run_dir, workspace) if reuse and previous != key else None
        to_submit = native if reused is None else reused["remaining"]
        shards = (
            build_shards(to_submit, str(run_dir / "round-1" / "shards"), batch_size, max_bytes, round_no=1)
            if reused is None or reused["submitted"]
            else []
        )
        run_tags = [
            *(f"model:{m}" for m in sorted({str(s["model"]) for s in shards if s["model"]})),
            *(f"endpoint:{e}" for e in sorted({str(s["endpoint"]) for s in shards if s["endpoint"]})),
            f"mode:{'template' if template_mode else 'requests'}",
            f"wait:{wait_mode}",
        ]
        _tag_run(run_tags)
        params = {
            "max_rounds": max_rounds,
            "batch_size": batch_size,
            "max_bytes": max_bytes,
            "max_enqueued_tokens": max_enqueued_tokens,
            "output_format": output_format,
            "response_schema": response_schema,
            "response_model": response_model,
            "prices": prices,
            "reused": reused,
            "store": str(root / STORE_NAME) if reuse else None,
        }
        # The tags go on the flow run only: a tagged task run asks the server for tag concurrency slots
        # at every start, and that sometimes holds the start for ~2 s (benchmarks/bench_run_overhead.py).
        summary = _run_rounds(shards, native, run_dir, out, opts, params)
    except Exception as exc:
        board.fail(_one_line(exc))
        drop_board(run_id)
        raise
    publish_summary(summary)
    fmt = infer_format(out, output_format)
    rows_file = run_dir / "result.jsonl" if fmt != "jsonl" else Path(out)
    if fmt == "jsonl" and is_url(out):
        rows_file = staged_output(run_dir / "result.jsonl", fmt)
    failed_rows = summary["total"] - summary["outcomes"].get("succeeded", 0)
    publish_report(
        summary,
        _first_failures(rows_file) if failed_rows else [],
        prices=prices,
        title=flow_run.name or run_name(),
    )
    drop_board(run_id)
    line = outcome_line(summary)
    log.info("done: %s → %s", line, out)
    return Completed(message=line, data=summary)  # type: ignore[return-value]


def _reuse_answers(native: str, run_dir: Path, workspace: Workspace) -> dict[str, Any] | None:
    """Split off the requests whose answers an earlier run already paid for (see `flows.reuse`); None
    when nothing can be reused (an empty store, or no request of this input in it)."""
    store_path = workspace.local / STORE_NAME
    if workspace.remote is not None:  # answers other machines finished
        with AnswerStore(store_path) as store:
            sync_segments(workspace, store)
    if not store_path.exists():
        return None
    with AnswerStore(store_path) as store:
        if not len(store):
            return None
        reused, left = split_reusable(
            Path(native), store, run_dir / "reused-rows.jsonl", run_dir / "to-submit.jsonl"
        )
    get_run_logger().info("reused %s, submitted %s", f"{reused:,}", f"{left:,}")
    if not reused:
        return None
    return {
        "reused": reused,
        "submitted": left,
        "rows": str(run_dir / "reused-rows.jsonl"),
        "remaining": str(run_dir / "to-submit.jsonl"),
    }


def _checked_inputs(
    input_path: str,
    output_path: str,
    output_format: str | None,
    prompt_template: str | None,
    model: str | None,
    response_schema: dict[str, Any] | str | None,
    response_model: str | None,
    work_dir: str | None = None,
    storage_block: str | None = None,
) -> tuple[str, dict[str, Any] | None, Workspace]:
    """The local checks (storage, input, output, format, schema, work dir): the output path, the
    response format and the workspace, or a `_Mistake` that names the fix."""
    from batch_openai.flows.template import response_format_for, template_fields

    try:
        if storage_block:
            load_storage_block(storage_block)
        workspace = Workspace.of(work_dir)  # an unknown scheme or a missing extra fails now
        _check_input(input_path, prompt_template, model)
        if same_file(input_path, output_path):
            raise ValueError(
                f"output_path {output_path!r} is the input file (the same path, a hard link or a symlink): "
                "writing the rows there would destroy the input; choose another output path"
            )
        if prompt_template:
            template_fields(prompt_template)
        out = str(check_output_path(output_path))  # an unwritable output fails now, before anything is paid
        infer_format(out, output_format)  # and so does an unknown format
        return out, response_format_for(response_schema, response_model), workspace  # a bad schema too
    except USER_MISTAKES as exc:
        raise _Mistake(exc) from None


def _local_records(input_path: str, root: Path) -> str:
    """Template mode: the records file on this machine (a URL's object fetched, streamed, into the work
    dir first)."""
    if not is_url(input_path):
        return input_path
    import hashlib

    name = hashlib.sha256(input_path.encode()).hexdigest()[:16]
    try:
        return str(fetch(input_path, root / "records" / name / basename(input_path)))
    except USER_MISTAKES as exc:
        raise _Mistake(exc) from None


def _run_rounds(
    shards: list[dict[str, Any]],
    native: str,
    run_dir: Path,
    out: str,
    opts: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Every round (submit → wait → collect, then the retryable lines again), the merge, and the summary."""
    log = get_run_logger()
    max_rounds = params["max_rounds"]
    reused = params["reused"]
    first_shards = shards
    shards = _label_shards(shards, 1)
    rows_by_round: list[list[str]] = []
    summaries: list[dict[str, Any]] = []
    for round_no in range(1, max(1, max_rounds) + 1):
        if not shards:  # every answer was reused: nothing to submit
            rows_by_round.append([])
            break
        round_dir = run_dir / f"round-{round_no}"
        collected = []
        for wave in _queue_waves(shards, params["max_enqueued_tokens"]):
            collected.extend(_run_round(wave, round_no, round_dir, opts))
        summaries.extend(collected)
        rows_by_round.append([c["rows_path"] for c in collected])
        if round_no >= max_rounds or not sum(c["retryable"] for c in collected):
            break
        retry_path = run_dir / f"round-{round_no + 1}" / "retry-input.jsonl"
        n_retry = plan_retry(
            [c["rows_path"] for c in collected], [s["path"] for s in shards], str(retry_path), round_no + 1
        )
        if not n_retry:
            break
        log.info("round %d: %d line(s) can pass on another try", round_no + 1, n_retry)
        shards = _label_shards(
            build_shards(
                str(retry_path),
                str(run_dir / f"round-{round_no + 1}" / "shards"),
                params["batch_size"],
                params["max_bytes"],
                round_no=round_no + 1,
            ),
            round_no + 1,
        )
    if params["store"] is not None and summaries:  # this run's succeeded answers serve later runs
        workspace = Workspace.of(opts["work_dir"])
        rows_paths, shard_paths = [c["rows_path"] for c in summaries], [c["shard_path"] for c in summaries]
        with AnswerStore(params["store"]) as store:
            if workspace.remote is None:
                remember(rows_paths, shard_paths, store)
            else:
                publish_segment(workspace, rows_paths, shard_paths, store, f"{run_dir.name}-{opts['run_id']}")
    if reused is not None and reused["reused"]:  # reused rows first; this run's rows replace none of them
        rows_by_round[0].insert(0, reused["rows"])
    # One round over one (endpoint, model), nothing reused: the shards, in build order, are the input order.
    in_order = (
        len(rows_by_round) == 1
        and not (reused and reused["reused"])
        and len({(s["endpoint"], s["model"]) for s in first_shards}) == 1
    )
    if in_order:
        by_shard = {c["shard_path"]: c["rows_path"] for c in summaries}
        rows_by_round = [[by_shard[s["path"]] for s in first_shards]]
    merged = merge_output.with_options(task_run_name=f"write {Path(out).name}")(
        native,
        rows_by_round,
        str(run_dir / "result.jsonl"),
        out,
        params["output_format"] or "",
        in_order=in_order,
        response_schema=params["response_schema"],
        response_model=params["response_model"],
    )
    if in_order:  # every shard line has exactly one row: the counts are the collect counts
        counts = {k: sum(c["outcomes"].get(k, 0) for c in summaries) for k in summaries[0]["outcomes"]}
        merged = {**merged, "total": sum(counts.values()), "outcomes": counts}
    usage_by_model: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(USAGE_KEYS, 0))
    for s in summaries:
        for k in USAGE_KEYS:
            usage_by_model[s["model"] or "unknown"][k] += s["usage"][k]
    summary = {
        "output": out,
        "total": merged["total"],
        "outcomes": merged["outcomes"],
        "usage": {k: sum(u[k] for u in usage_by_model.values()) for k in USAGE_KEYS},
        "usage_by_model": dict(usage_by_model),
        "estimated_cost_usd": estimate_cost(usage_by_model, params["prices"]),
        "batch_ids": [s["batch_id"] for s in summaries],
        "rounds": len(rows_by_round),
        "work_dir": Workspace.of(opts["work_dir"]).url_of(run_dir) or str(run_dir),
        "reused": reused["reused"] if reused else 0,
        "submitted": reused["submitted"] if reused else sum(s["count"] for s in first_shards),
    }
    if "parse" in merged:
        summary["parse"] = merged["parse"]
    return summary


# ---------------------------------------------------------------- the form
# Prefect 3.9.1 titles every flat flow parameter with its name and groups fields into sections only for
# pydantic-model parameters. `batch_run_flow` keeps its flat parameters (callers and deployments rely on
# them); `batch_form_flow` is the same run behind a form in three sections with real titles and examples.


class FormJob(BaseModel):
    """What to run and where the rows go."""

    model_config = ConfigDict(title="Job")

    input_path: str = Field(
        title="Input file (a path on the worker)",
        description="Read on the machine of the worker that runs this flow, not on yours: a native "
        "batch-input JSONL (one request a line), or a CSV/JSONL of records with a prompt template below.",
        examples=["/data/reviews.csv", "/data/requests.jsonl"],
    )
    output_path: str = Field(
        title="Output file (a path on the worker)",
        description="One row per input (custom_id, outcome, content, error, usage, ...): JSONL, or CSV / "
        "Parquet by the suffix. Written atomically at the end.",
        examples=["/data/results.jsonl", "/data/results.parquet"],
    )
    description: str | None = Field(
        None,
        title="Description",
        description="Names the run and is stored in each batch's metadata (shows in the OpenAI dashboard).",
        examples=["nightly eval"],
    )


class FormTemplate(BaseModel):
    """Template mode: turn each record of a CSV/JSONL into one chat request (leave empty for native JSONL)."""

    model_config = ConfigDict(title="Prompt template (records in, one request each)")

    prompt_template: str | None = Field(
        None,
        title="Prompt template",
        description="The prompt, with {column} placeholders filled from each record.",
        examples=["Is this review positive or negative? Reply with one word.\n\n{text}"],
    )
    model: str | None = Field(None, title="Model", examples=["gpt-4o-mini"])
    id_field: str = Field("id", title="ID column", description="The column that becomes the custom_id.")
    system_prompt: str | None = Field(None, title="System prompt", examples=["You are a careful rater."])
    response_schema: dict[str, Any] | str | None = Field(
        None,
        title="Response JSON Schema",
        description="Answers must follow it (strict structured output); rows gain `parsed` and "
        "`parse_error`.",
        examples=['{"type": "object", "properties": {"label": {"type": "string"}}}'],
    )
    response_model: str | None = Field(
        None,
        title="Response Pydantic model",
        description="The same as a model importable on the worker.",
        examples=["myproject.schemas:Review"],
    )


class FormAdvanced(BaseModel):
    """Rounds, limits, waiting, the service and prices: the defaults suit most jobs."""

    model_config = ConfigDict(title="Advanced settings")

    max_rounds: int = Field(2, title="Rounds in total", ge=1, description="1: no retry round.")
    wait_mode: Literal["poll", "suspend"] = Field(
        "poll", title="While batches run", description="poll: keep polling; suspend: free the worker."
    )
    poll_interval: float = Field(30.0, title="First poll interval (s)", gt=0)
    max_poll_interval: float = Field(600.0, title="Longest poll interval (s)", gt=0)
    suspend_timeout_hours: float = Field(30.0, title="Longest suspension (hours)", gt=0)
    batch_size: int = Field(50_000, title="Most requests per batch", ge=1, le=50_000)
    max_bytes: int = Field(209_715_200, title="Largest batch file (bytes)", ge=1)
    output_format: Literal["jsonl", "csv", "parquet"] | None = Field(None, title="Output format")
    base_url: str | None = Field(
        None, title="API base URL", examples=["https://api.openai.com/v1"], description="Not a secret."
    )
    api_key_block: str | None = Field(
        None,
        title="API key Secret block",
        description="Name of a Prefect Secret block (default: the worker's OPENAI_API_KEY).",
        examples=["openai-api-key"],
    )
    work_dir: str | None = Field(
        None,
        title="Work directory (on the worker, or a URL)",
        description="Shards, downloads and rows; a URL such as s3://bucket/batch-work lets workers that "
        "share no disk share the job.",
        examples=["s3://my-bucket/batch-work"],
    )
    storage_block: str | None = Field(
        None,
        title="Object-storage credentials block",
        description='<type>/<name> of a Prefect block: a secret holding {"s3": {...fsspec options}}, a '
        "remote-file-system or an aws-credentials block (default: the worker's environment).",
        examples=["secret/s3-credentials"],
    )
    result_storage: str | None = Field(
        None,
        title="Submit cache storage",
        description="A Prefect storage block slug or URL (default: beside a URL work directory).",
    )
    max_enqueued_tokens: int | dict[str, int] | None = Field(None, title="Enqueued-token cap per model")
    prices: dict[str, list[float]] | None = Field(
        None, title="Batch prices (USD per 1M tokens)", examples=[{"gpt-4o-mini": [0.075, 0.3]}]
    )


def form_run_name() -> str:
    """The form run's name, as `run_name` builds it from the flat parameters."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    job = params.get("job") or {}
    template = params.get("template") or {}
    job = job if isinstance(job, dict) else job.model_dump()
    template = template if isinstance(template, dict) else template.model_dump()
    what = job.get("description") or basename(job.get("input_path") or "batch")
    model = template.get("model") or (
        None if template.get("prompt_template") else _first_model(job.get("input_path"))
    )
    return f"{what} · {model}" if model else str(what)


@flow(
    name="batch-openai-form",
    flow_run_name=form_run_name,
    persist_result=True,
    result_serializer="json",
    log_prints=False,
)
def batch_form_flow(
    job: FormJob,
    template: FormTemplate = FormTemplate(),  # noqa: B008 - pydantic defaults, shown in the form
    advanced: FormAdvanced = FormAdvanced(),  # noqa: B008
) -> dict[str, Any]:
    """Run bulk LLM work through the Batch API from a form: the job, an optional prompt template, and
    advanced settings. The same run as `batch_run_flow` (same tasks, artifacts and state messages).

    Args:
        job: What to run and where the rows go.
        template: For a CSV/JSONL of records: the prompt template and model.
        advanced: Rounds, limits, waiting, the service and prices.
    """
    flat = {**job.model_dump(), **template.model_dump(), **advanced.model_dump()}
    return batch_run_flow.fn(**flat)
