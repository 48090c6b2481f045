"""The layers, checked and measured: run the import-linter contracts, or print the import-hygiene figures.

    python .ci/import_hygiene.py lint      # the [tool.importlinter] contracts in pyproject.toml (CI)
    python .ci/import_hygiene.py           # figures: import cycles, private imports across layers

Why not plain `lint-imports`: grimp finds a package's modules by walking its directory, and `flows/`
joins `batch_openai` as `batch_openai.flows` only through setuptools' package-dir mapping (the editable
finder), so a bare `lint-imports` would not see the Prefect layer at all. Both commands below first
assemble the installed package layout in a temporary directory (`src/batch_openai` with `flows/` as its
`flows` subpackage) and analyse that. grimp counts every import: inside functions and under
`TYPE_CHECKING` too. The one upward reference the design allows, `BatchRegistry` resolved by
`importlib.import_module("batch_openai.flows.registry")` in `batch_openai.__getattr__`, is a string,
so it is not an import edge and not counted.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "batch_openai"
#: The layers above the core, as in DESIGN.md; every other module of the package is the core.
OUTSIDE_CORE = (
    "batch_openai.__main__",
    "batch_openai.cli",
    "batch_openai.demo",
    "batch_openai.flows",
    "batch_openai.local",
)

try:  # the contract below is only needed (and import-linter only installed) for `lint`
    from importlinter import Contract, ContractCheck, fields, output
except ImportError:  # pragma: no cover - figures need grimp only
    Contract = object  # type: ignore[assignment,misc]


def assemble(dest: Path) -> Path:
    """Copy the package as it installs (`flows/` as `batch_openai.flows`) under `dest`; returns `dest`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "src" / PACKAGE, dest / PACKAGE, ignore=ignore)
    shutil.copytree(REPO / "flows", dest / PACKAGE / "flows", ignore=ignore)
    return dest


# ------------------------------------------------------------------------------------------ layers
def layer_of(module: str, outside: Iterable[str] = OUTSIDE_CORE) -> str:
    """The layer a module belongs to: the package above the core that holds it, else "core"."""
    for top in outside:
        if module == top or module.startswith(top + "."):
            return top
    return "core"


def is_private(module: str) -> bool:
    """True if any component below the top package starts with `_` (dunders like `__main__` are public)."""
    return any(p.startswith("_") and not p.startswith("__") for p in module.split(".")[1:])


def private_links(graph: Any, outside: Iterable[str] = OUTSIDE_CORE) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a private module is imported from another layer."""
    outside = tuple(outside)
    links = []
    for importer in sorted(graph.modules):
        if not importer.startswith(PACKAGE):
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if (
                imported.startswith(PACKAGE + ".")
                and is_private(imported)
                and layer_of(importer, outside) != layer_of(imported, outside)
            ):
                links.append((importer, imported))
    return links


class PrivateAcrossLayersContract(Contract):  # type: ignore[misc,valid-type]
    """import-linter contract: a private module (`pkg._x`, `pkg.cli._y`) is imported only from its own layer.

    Options: `outside_core`, the packages above the core (everything else in the root package is the core).
    """

    type_name = "private_across_layers"

    if Contract is not object:
        outside_core = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> Any:
        """Find every import of a private module from another layer."""
        links = [
            {
                "importer": importer,
                "imported": imported,
                "line_numbers": sorted(
                    d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)
                ),
            }
            for importer, imported in private_links(graph, self.outside_core)  # type: ignore[attr-defined]
        ]
        return ContractCheck(kept=not links, warnings=[], metadata={"links": links})

    def render_broken_contract(self, check: Any) -> None:
        """List the offending imports, with their lines."""
        output.print_error("Private modules imported from another layer (make the name public):", bold=False)
        output.new_line()
        for link in check.metadata["links"]:
            lines = ", ".join(map(str, link["line_numbers"]))
            output.print_error(f"- {link['importer']} -> {link['imported']} (l.{lines})", bold=False)
            output.new_line()


# ------------------------------------------------------------------------------------------ figures
def import_cycles(graph: Any) -> list[list[str]]:
    """The import cycles among package modules: strongly connected groups of 2+ modules (Tarjan)."""
    nodes = sorted(m for m in graph.modules if m.startswith(PACKAGE))
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith(PACKAGE))
        for m in nodes
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth <= number of modules (~150)
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1:
                groups.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(groups)


def private_names(root: Path, outside: Iterable[str] = OUTSIDE_CORE) -> list[tuple[str, int, str]]:
    """`from batch_openai.X import _name` across layers, found in the source: (module, line, import)."""
    outside = tuple(outside)
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
                for alias in node.names:
                    name = alias.name
                    if name.startswith("_") and not name.startswith("__"):
                        target = f"{node.module}.{name}"
                        if layer_of(module, outside) != layer_of(target, outside):
                            found.append((module, node.lineno, f"from {node.module} import {name}"))
    return found


def figures() -> int:
    """Print the figures for the release note (measured on the files on disk now)."""
    import grimp

    with tempfile.TemporaryDirectory(prefix="import-hygiene-") as tmp:
        root = assemble(Path(tmp))
        sys.path.insert(0, str(root))
        graph = grimp.build_graph(PACKAGE, cache_dir=None)
        runtime = grimp.build_graph(PACKAGE, cache_dir=None, exclude_type_checking_imports=True)
        ours = [m for m in graph.modules if m.startswith(PACKAGE)]
        cycles = import_cycles(graph)
        runtime_cycles = import_cycles(runtime)
        mutual = sorted(
            (a, b)
            for a in ours
            for b in graph.find_modules_directly_imported_by(a)
            if a < b and b.startswith(PACKAGE) and graph.direct_import_exists(importer=b, imported=a)
        )
        links = private_links(graph)
        names = private_names(root)
    in_cycles = sum(len(c) for c in cycles)
    print(
        f"import hygiene of {PACKAGE} ({len(ours)} modules; imports inside functions and TYPE_CHECKING count)"
    )
    print(
        f"  import cycles at run time (imports inside functions count, TYPE_CHECKING ones never run): "
        f"{len(runtime_cycles)}"
    )
    for group in runtime_cycles:
        print(f"    - {', '.join(group)}")
    print(f"  import cycles counting TYPE_CHECKING annotations too: {len(cycles)} ({in_cycles} modules)")
    for group in cycles:
        print(f"    - {', '.join(group)}")
    print(f"  module pairs importing each other directly: {len(mutual)}")
    for a, b in mutual:
        print(f"    - {a} <-> {b}")
    print(f"  private modules imported across layers: {len(links)}")
    for importer, imported in links:
        print(f"    - {importer} -> {imported}")
    print(f"  private names imported across layers: {len(names)}")
    for module, line, text in names:
        print(f"    - {module}:{line}: {text}")
    return 0


def lint(argv: list[str]) -> int:
    """Run `lint-imports` on the assembled package with the repository's pyproject.toml."""
    from importlinter.cli import lint_imports

    with tempfile.TemporaryDirectory(prefix="import-lint-") as tmp:
        root = assemble(Path(tmp))
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # this module's contract type
        cwd = os.getcwd()
        os.chdir(root)  # lint-imports puts the working directory first on sys.path
        try:
            return lint_imports(
                config_filename=str(REPO / "pyproject.toml"), no_cache=True, verbose="-v" in argv
            )
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(lint(args) if args[:1] == ["lint"] else figures())
