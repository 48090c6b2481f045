"""The README's Python blocks, run in order against the local Batch API server, so the README stays true.

Blocks share one namespace, as a reader following the README would. The prelude supplies what the README
leaves to the reader (`my_documents`, `documents`), and `OpenAI()` reaches the local server through
OPENAI_BASE_URL. Two textual changes only: poll intervals (60 s, or the default) become 0.05 s, and
`[...]` placeholders are not runnable, so blocks holding them only have to compile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from batch_openai.local import LocalBatchServer

README = Path(__file__).resolve().parents[2] / "README.md"

# Covered elsewhere with its own Prefect home (tests/library/test_readme.py::test_registry_sample).
NEEDS_PREFECT = "BatchRegistry()"


@dataclass
class Document:
    id: int
    title: str
    text: str


def python_blocks() -> list[str]:
    """Every ```python fenced block of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_the_documented_sections() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1]
    commands = re.search(r"```bash\n(.*?)```", quick, flags=re.S)
    assert commands is not None
    lines = [ln for ln in commands.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2 and "batch-openai demo" in lines[0] and "pytest" in lines[1]


def test_readme_python_blocks_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 8
    ran = 0
    with LocalBatchServer(step_seconds=0.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-readme")
        namespace: dict[str, object] = {
            "my_documents": [f"readme document {i}" for i in range(3)],
            "documents": [Document(i, f"Title {i}", f"readme document {i}") for i in range(3)],
        }
        for block in blocks:
            source = block.replace("poll_interval=60", "poll_interval=0.05").replace(
                ".wait()", ".wait(poll_interval=0.05)"
            )
            if source.lstrip().startswith("except "):
                continue  # a fragment of the try block above it, shown on its own in the reference
            code = compile(source, str(README), "exec")
            if "[...]" in source or NEEDS_PREFECT in source:
                continue
            if "logprobs=True" in source:
                # The README shows this on a builder of its own: start from an empty one.
                from batch_openai import BatchRequestBuilder

                namespace["builder"] = BatchRequestBuilder()
            exec(code, namespace)
            ran += 1
    out = capsys.readouterr().out
    assert ran >= 5
    assert re.search(r"Batch submitted: batch_\w+", out)
    assert "Succeeded: 3  Failed: 0" in out
    # The structured-output block parsed one Summary per document, and the logprob block found a value.
    assert len(namespace["summaries"]) == 3  # type: ignore[arg-type]
    assert isinstance(namespace["prob_yes"], float | None)
    assert "top_logprobs" in namespace
