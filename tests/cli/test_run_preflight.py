"""`batch-openai run` finds the user's mistakes before Prefect starts: one line that says what to do."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error

LINE = (
    '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n'
)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(LINE)
    return path


def test_a_refused_key_is_found_before_prefect_starts(cli, src: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    result = cli("run", str(src), "-o", str(tmp_path / "out.jsonl"), env={"OPENAI_API_KEY": "sk-wrong"})
    assert_one_line_error(result, "refused the API key", "OPENAI_API_KEY")
    assert result.returncode == 2 and "rerun" not in result.stderr
    assert time.monotonic() - started < 60  # no Prefect start-up was paid for


def test_a_dead_base_url_is_named_and_never_called_resumable(cli, src: Path, tmp_path: Path) -> None:
    result = cli("run", str(src), "-o", str(tmp_path / "out.jsonl"), "--base-url", "http://127.0.0.1:9/v1")
    assert_one_line_error(result, "cannot reach the Batch API at http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "rerun" not in result.stderr


def test_an_unknown_output_suffix_needs_output_format(cli, src: Path, tmp_path: Path) -> None:
    result = cli("run", str(src), "-o", str(tmp_path / "out.xlsx"))
    assert_one_line_error(result, "'.xlsx'", "--output-format")
    assert result.returncode == 2


@pytest.mark.parametrize("kind", ["same", "hardlink", "symlink"])
def test_an_output_that_is_the_input_is_refused(cli, src: Path, tmp_path: Path, kind: str) -> None:
    target = src
    if kind == "hardlink":
        target = tmp_path / "hard.jsonl"
        os.link(src, target)
    elif kind == "symlink":
        target = tmp_path / "soft.jsonl"
        target.symlink_to(src)
    result = cli("run", str(src), "-o", str(target))
    assert_one_line_error(result, "is the input file")
    assert result.returncode == 2 and src.read_text() == LINE


def test_a_full_disk_names_the_place_and_the_fix(cli, tmp_path: Path) -> None:
    """A work directory on a full file system (a 64 KiB tmpfs): one line naming where and what to do."""
    import subprocess

    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        src = tmp_path / "big.jsonl"  # ~700 KB: more than the file system holds
        long_line = LINE.replace("hi", "hello " * 40)
        src.write_text("".join(long_line.replace('"a"', f'"r{i}"') for i in range(1500)))
        result = cli("run", str(src), "-o", str(tmp_path / "out.jsonl"), "--work-dir", str(full / "work"))
        assert_one_line_error(result, "No space left on device", str(full / "work"), "free some space")
        assert "rerun" not in result.stderr
    finally:
        subprocess.run(["umount", str(full)])
