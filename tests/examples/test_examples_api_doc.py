"""The docs this part owns stay true: the API reference matches the code, the before/after page matches
its scripts and their counted lines, and the docs index links every page."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from api_doc import documented_signatures, public_members

import batch_openai
from batch_openai import flows

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _api_text() -> str:
    # Table cells escape `|` as `\|`; the signatures are compared unescaped.
    return (DOCS / "api.md").read_text(encoding="utf-8").replace("\\|", "|")


@pytest.mark.parametrize("module", [batch_openai, flows], ids=["batch_openai", "flows"])
def test_every_public_name_has_an_entry(module: ModuleType) -> None:
    """Each name of `__all__` has its own `### \\`name\\`` heading in docs/api.md."""
    text = _api_text()
    missing = [n for n in module.__all__ if f"### `{n}`\n" not in text]
    assert not missing, f"docs/api.md has no entry for {missing}"


@pytest.mark.parametrize("module", [batch_openai, flows], ids=["batch_openai", "flows"])
def test_every_signature_is_shown_as_the_code_has_it(module: ModuleType) -> None:
    """Constructors, functions and methods appear with the code's parameter names and defaults."""
    text = _api_text()
    stale = [sig for sig in documented_signatures(module) if sig not in text]
    assert not stale, "docs/api.md lacks or misstates:\n" + "\n".join(stale)


def test_every_public_property_is_listed() -> None:
    """Each public property of each public class appears as `.name`."""
    text = _api_text()
    missing = []
    for name in batch_openai.__all__:
        obj = getattr(batch_openai, name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, kind, _ in public_members(obj) if kind == "property"]
    missing = [m for m in missing if f"`.{m.split('.', 1)[1]}`" not in text]
    assert not missing, f"docs/api.md does not list the properties {missing}"


def _count_lines_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("count_lines", REPO / "benchmarks" / "count_lines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("count_lines", module)
    spec.loader.exec_module(module)
    return module


def test_before_after_page_shows_the_scripts_and_their_counts() -> None:
    """docs/before-after.md embeds both scripts verbatim and quotes the counts the script prints."""
    count_lines = _count_lines_module()
    page = (DOCS / "before-after.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    for path in count_lines.SCRIPTS.values():
        assert path.read_text(encoding="utf-8") in blocks, f"{path.name} differs from its copy in the page"
    counts = count_lines.counts()
    before, after = counts["raw OpenAI SDK"], counts["batch-openai"]
    assert after < before / 2  # the claim the page makes
    assert f"| {before} |" in page and f"| {after} |" in page
    assert f"**{round(100 * (1 - after / before))} %**" in page


def test_count_lines_skips_blanks_comments_and_docstrings(tmp_path: Path) -> None:
    """The counting rule the page states, on a file with one of each."""
    count_lines = _count_lines_module()
    f = tmp_path / "x.py"
    source = '"""Doc\nstring."""\n\n# comment\nx = 1  # trailing\n\ndef f():\n    """Doc."""\n    return x\n'
    f.write_text(source)
    assert count_lines.count_code_lines(f) == 3


def test_docs_index_links_every_page() -> None:
    """docs/index.md is a complete map: it links each docs/*.md page."""
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    missing = [p for p in pages if f"({p})" not in index]
    assert not missing, f"docs/index.md does not link {missing}"
