"""Read the public API from the code, the way docs/api.md writes it (shared by its test and its draft)."""

from __future__ import annotations

import contextlib
import enum
import inspect
from collections.abc import Iterator
from typing import Any


def render_signature(name: str, obj: Any) -> str:
    """`name(a, b=1, *, c=None, **params) -> R`: names and defaults as in the code, no annotations."""
    sig = inspect.signature(obj)
    parts: list[str] = []
    star_done = False
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            star_done = True
            continue
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
            continue
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    ret = sig.return_annotation
    ret_name = ret if isinstance(ret, str) else getattr(ret, "__name__", str(ret))
    ret_text = "" if ret in (sig.empty, "None", None) else f" -> {ret_name}"
    return f"{name}({', '.join(parts)}){ret_text}"


def public_members(cls: type) -> Iterator[tuple[str, str, Any]]:
    """(name, kind, object) of the public methods, classmethods and properties a class defines itself."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            yield name, "property", value
        elif isinstance(value, classmethod | staticmethod):
            yield name, "classmethod", value.__func__
        elif inspect.isfunction(value):
            yield name, "method", value


def documented_signatures(module: Any) -> list[str]:
    """Every signature docs/api.md must show for `module.__all__`: functions, classes and their methods."""
    out: list[str] = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, enum.Enum):
            continue
        if inspect.isclass(obj):
            if not issubclass(obj, BaseException) or "__init__" in vars(obj):
                # a builtin without a signature (the base exception) has none to show
                with contextlib.suppress(ValueError):
                    out.append(render_signature(name, obj))
            for member, kind, value in public_members(obj):
                if kind != "property":
                    out.append(render_signature(f"{name}.{member}", value))
        elif callable(obj):
            out.append(render_signature(name, obj))
    return out
