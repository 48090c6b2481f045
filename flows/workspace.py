"""Where a run keeps its files: a local work directory, or one on object storage that any machine can use.

A `work_dir` URL (`s3://bucket/batch-work`) is mirrored by a local staging directory
(`$BATCH_OPENAI_STAGING_DIR`, else the temp dir; one folder per URL). Tasks read and write the staging
copy, as they would a local work directory, and publish what a run elsewhere needs: the shard files,
each batch's downloads and rows files with their summaries, the answers store's segments, and the
input pointers. A rerun on another machine (another Prefect home, another temp dir) pulls a batch's rows
instead of collecting it again, and finds the batches themselves through the submit cache, which lives
beside them (`<work_dir>/submit-cache`, Prefect result storage on the same bucket) unless
`result_storage` names another place.

Credentials: the back end's usual places (environment, instance roles, its config files), or a Prefect
block named by `storage_block` (see `load_storage_block`). Nothing here logs them or puts them in a
parameter, a result or an artifact.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_openai import BatchStorageError
from batch_openai.storage import (
    fetch,
    filesystem,
    is_url,
    join,
    local_path,
    publish,
    use_storage_options,
)

__all__ = [
    "DEFAULT_WORK_DIR",
    "STAGING_ENV",
    "WORK_DIR_ENV",
    "Workspace",
    "load_storage_block",
    "submit_cache_storage",
    "work_root",
]

WORK_DIR_ENV = "BATCH_OPENAI_WORK_DIR"
DEFAULT_WORK_DIR = ".batch_openai/work"
STAGING_ENV = "BATCH_OPENAI_STAGING_DIR"
SUBMIT_CACHE = "submit-cache"


@dataclass(frozen=True)
class Workspace:
    """A work directory: `local` is where tasks read and write; `remote` the URL mirrored, if any."""

    local: Path
    remote: str | None = None

    @classmethod
    def of(cls, work_dir: str | None = None) -> Workspace:
        """The parameter, else `$BATCH_OPENAI_WORK_DIR`, else `./.batch_openai/work`."""
        chosen = str(work_dir or os.environ.get(WORK_DIR_ENV) or DEFAULT_WORK_DIR)
        if not is_url(chosen):
            return cls(local_path(chosen).resolve())
        url = chosen.rstrip("/")
        filesystem(url)  # an unknown scheme or a missing extra fails here, before any work
        staging = Path(os.environ.get(STAGING_ENV) or Path(tempfile.gettempdir()) / "batch-openai-staging")
        return cls((staging.expanduser() / hashlib.sha256(url.encode()).hexdigest()[:16]).resolve(), url)

    def url_of(self, path: str | Path) -> str | None:
        """The remote URL of a file under the local copy (None for a local work dir or a file outside)."""
        if self.remote is None:
            return None
        try:
            relative = Path(path).resolve().relative_to(self.local)
        except ValueError:
            return None
        return join(self.remote, relative.as_posix())

    def push(self, paths: Iterable[str | Path]) -> None:
        """Publish local files under the work dir to its URL (nothing for a local work dir)."""
        for path in paths:
            url = self.url_of(path)
            if url is not None and Path(path).is_file():
                publish(path, url)

    def pull(self, paths: Iterable[str | Path]) -> bool:
        """Fetch the files missing locally from the work dir's URL; True when every one is here now."""
        for path in paths:
            if Path(path).exists():
                continue
            url = self.url_of(path)
            if url is None:
                return False
            try:
                fetch(url, path)
            except (BatchStorageError, FileNotFoundError):
                return False
        return True

    def remote_names(self, directory: str | Path) -> list[str]:
        """Names of the files in the remote copy of a local directory ([] when local or absent)."""
        url = self.url_of(directory)
        if url is None:
            return []
        fs, inner = filesystem(url)
        try:
            return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(inner, detail=False))
        except FileNotFoundError:
            return []


def work_root(work_dir: str | None = None) -> Path:
    """The local root of the work directories (the staging copy of a URL work dir)."""
    return Workspace.of(work_dir).local


def submit_cache_storage(work_dir: str | None, result_storage: str | None) -> str | None:
    """Where the submit task keeps its cache records, as a Prefect storage block slug: `result_storage`
    (a slug such as `remote-file-system/batch-cache`, or a URL), else `<work_dir>/submit-cache` for a URL
    work dir, else None (Prefect's default result storage, local to this machine's Prefect home).

    Prefect keeps result storage only in saved blocks, so a URL becomes a saved `remote-file-system`
    block named after it. The block holds the URL alone: credentials stay where fsspec finds them."""
    if result_storage and "://" not in result_storage:
        return result_storage
    remote = Workspace.of(work_dir).remote
    url = result_storage or (join(remote, SUBMIT_CACHE) if remote else None)
    if url is None:
        return None
    if is_url(url):
        filesystem(url)  # a missing extra fails here
    else:
        url = str(local_path(url).resolve())
    from prefect.settings import PREFECT_API_URL

    return _saved_storage_block(url, str(PREFECT_API_URL.value()))


@functools.lru_cache(maxsize=32)
def _saved_storage_block(url: str, api_url: str) -> str:
    """Save the block once per process and Prefect server (`api_url` is only part of the cache key)."""
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    name = f"batch-openai-cache-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    block = RemoteFileSystem(basepath=url) if is_url(url) else LocalFileSystem(basepath=url)
    block.save(name, overwrite=True)
    return f"{block.get_block_type_slug()}/{name}"


def load_storage_block(name: str) -> list[str]:
    """Use the object-storage credentials of a Prefect block for this process; returns the protocols set.

    `name` is `<block type>/<block name>`: a `secret` holding `{"s3": {fsspec options}, ...}` as JSON, a
    `remote-file-system` block (its `settings`, for its basepath's protocol), or prefect-aws's
    `aws-credentials`. The values stay in memory: never logged, never a parameter.
    """
    from prefect.blocks.core import Block
    from prefect.blocks.system import Secret
    from prefect.filesystems import RemoteFileSystem

    try:
        block = Block.load(name)
    except ValueError as exc:
        raise BatchStorageError(
            f"storage_block {name!r}: {' '.join(str(exc).split())}; give '<block type>/<block name>' of a "
            "saved block (secret, remote-file-system or aws-credentials)"
        ) from None
    if isinstance(block, Secret):
        value = block.get()
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise BatchStorageError(
                f'storage_block {name!r}: the secret must hold JSON like {{"s3": {{"key": ..., '
                '"secret": ...}}}: fsspec options per protocol'
            )
        chosen = {str(protocol): dict(options) for protocol, options in value.items()}
    elif isinstance(block, RemoteFileSystem):
        chosen = {block.basepath.split("://", 1)[0].lower(): dict(block.settings)}
    elif hasattr(block, "aws_access_key_id"):  # prefect-aws AwsCredentials, read by its fields
        chosen = {"s3": _aws_options(block)}
    else:
        raise BatchStorageError(
            f"storage_block {name!r} is a {type(block).__name__}; use a secret, remote-file-system or "
            "aws-credentials block"
        )
    for protocol, options in chosen.items():
        use_storage_options(protocol, **options)
    return sorted(chosen)


def _aws_options(block: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    options: dict[str, Any] = {
        "key": plain(block.aws_access_key_id),
        "secret": plain(getattr(block, "aws_secret_access_key", None)),
        "token": plain(getattr(block, "aws_session_token", None)),
    }
    client_kwargs: dict[str, Any] = {}
    if getattr(block, "region_name", None):
        client_kwargs["region_name"] = block.region_name
    endpoint = getattr(getattr(block, "aws_client_parameters", None), "endpoint_url", None)
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return {k: v for k, v in options.items() if v is not None}
