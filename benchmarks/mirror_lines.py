"""Count the lines of async code that mirror sync code: the measure of "sync and async written once".

    .venv/bin/python benchmarks/mirror_lines.py [--threshold 0.7] [--verbose] [PATH ...]

For every `async def` in the package (src/batch_openai and flows/), the most similar sync `def` of the
same files is found; `await`, `async` and the `async_` name prefix are stripped from both, and the pair
counts as a mirror when difflib's ratio of their lines is at least the threshold. The figure is the
number of async body lines (below the signature and docstring) in mirrored pairs; `--with-signatures`
counts the definitions whole (a public twin must spell out its typed parameters either way).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = [ROOT / "src" / "batch_openai", ROOT / "flows"]
_STRIP = re.compile(r"\bawait\s+|\basync\s+|\basync_|\bacall\b|\bas_completed\b")


def _functions(path: Path, with_signature: bool) -> list[tuple[str, bool, list[str], tuple[int, int]]]:
    """(qualified name, is async, normalised lines) of every function in a file: its body (below the
    docstring), or with `with_signature` the whole definition."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            statements = node.body
            if (
                statements
                and isinstance(statements[0], ast.Expr)
                and isinstance(statements[0].value, ast.Constant)
            ):
                statements = statements[1:] or statements  # the docstring is prose, not code
            first = node.lineno if with_signature else statements[0].lineno
            body = lines[first - 1 : node.end_lineno]
            norm = [_STRIP.sub("", ln).strip() for ln in body]
            norm = [ln for ln in norm if ln and not ln.startswith(("#", '"""'))]
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            span = (node.lineno, node.end_lineno or node.lineno)
            out.append((f"{where}:{node.name}", isinstance(node, ast.AsyncFunctionDef), norm, span))
    return out


def mirrors(
    paths: list[Path], threshold: float, with_signature: bool = False
) -> list[tuple[str, str, float, int]]:
    """(async function, its sync twin, similarity, async lines) for every pair at or over `threshold`."""
    found = []
    for root in paths:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        functions = [f for path in files for f in _functions(path, with_signature)]
        sync = [f for f in functions if not f[1]]
        for name, is_async, body, span in functions:
            if not is_async or not sync:
                continue
            file = name.rsplit(":", 1)[0]
            candidates = [  # not the sync function an async one is nested in (it holds its lines)
                (difflib.SequenceMatcher(None, body, other).ratio(), other_name)
                for other_name, _, other, (start, end) in sync
                if not (other_name.rsplit(":", 1)[0] == file and start <= span[0] and span[1] <= end)
            ]
            best = max(candidates, default=(0.0, ""))
            if best[0] >= threshold:
                found.append((name, best[1], best[0], len(body)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, default=DEFAULT_PATHS)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--with-signatures", action="store_true", help="count each definition's signature lines too"
    )
    args = parser.parse_args()
    pairs = mirrors(args.paths, args.threshold, args.with_signatures)
    total = sum(n for *_, n in pairs)
    for name, twin, ratio, n in sorted(pairs, key=lambda p: -p[3]):
        if args.verbose or n >= 5:
            print(f"  {n:4d} lines  {ratio:.2f}  {name}  ~  {twin.split(':')[-1]}")
    what = "lines (signatures included)" if args.with_signatures else "body lines"
    print(
        f"async {what} mirroring sync code (>= {args.threshold:.0%} alike once await is stripped): "
        f"{total} in {len(pairs)} pairs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
