"""Options of the root command (`--registry`, `--debug`) and the CLI's one-line error type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OPTIONS", "CliError", "CliOptions", "one_line"]


class CliError(Exception):
    """An error the CLI reports as one line on stderr, with exit code `code`."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class CliOptions:
    """What the root callback parsed; read by every command group."""

    registry: Path | None = None
    debug: bool = bool(os.environ.get("BATCH_OPENAI_DEBUG"))


#: Set by the root callback before any command runs.
OPTIONS = CliOptions()


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type when it has no message."""
    from batch_openai import redact

    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact(first)
