"""A real S3 API on loopback: moto's server as a subprocess, and the environment that points at it.

Nothing mocks boto or s3fs: every test talks HTTP to this server, as it would to S3.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from flows_harness import VENV_BIN, free_port, stop_process, track_process, wait_until

# moto accepts any key pair; these are the names S3 clients look for.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moto-test-key-id", "AWS_SECRET_ACCESS_KEY": "moto-test-secret-0a1b2c"}


@dataclass
class MotoServer:
    """`python -m moto.server` on 127.0.0.1."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What an S3 client needs to reach this server from the environment."""
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def new_bucket(self) -> str:
        """A fresh, empty bucket (created through the S3 API)."""
        import fsspec

        name = f"bkt-{uuid.uuid4().hex[:12]}"
        fs = fsspec.filesystem(
            "s3",
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            client_kwargs={"endpoint_url": self.endpoint},
        )
        fs.mkdir(name)
        return name

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.process)


def forget_s3_clients() -> None:
    """Drop the S3 clients fsspec keeps per process: each was made for the endpoint and key in the
    environment at the time, and a test that points S3 elsewhere (another moto) must not reuse one."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def start_moto(log_dir: Path) -> MotoServer:
    """Start moto's server on a free port and wait until it answers."""
    port = free_port()
    log = open(log_dir / f"moto-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    track_process(proc)
    server = MotoServer(port=port, process=proc)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((log_dir / f"moto-{port}.log").read_text()[-2000:])
        try:
            return httpx.get(f"{server.endpoint}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    if not wait_until(up, timeout=60, interval=0.2):
        server.stop()
        raise RuntimeError("moto server did not start")
    return server
