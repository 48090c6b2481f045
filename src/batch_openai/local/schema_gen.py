"""Values that satisfy a JSON Schema, chosen by a random generator (the mock's structured output).

Covers what structured outputs use: `$ref`/`$defs`, `anyOf`/`oneOf`/`allOf`, `enum`, `const`,
type lists, objects (`properties`, `required`, `additionalProperties`), arrays (`items`,
`prefixItems`, `minItems`/`maxItems`, `uniqueItems`), strings (`minLength`/`maxLength`, common
`format`s), numbers (`minimum`/`maximum`, exclusive bounds, `multipleOf`) and booleans.
"""

from __future__ import annotations

import math
import random
from typing import Any

WORDS = (
    "alpha",
    "bright",
    "calm",
    "delta",
    "early",
    "fresh",
    "green",
    "happy",
    "ideal",
    "jolly",
    "keen",
    "light",
    "merry",
    "noble",
    "open",
    "prime",
    "quick",
    "ready",
    "solid",
    "true",
    "vivid",
    "warm",
    "young",
    "zesty",
    "amber",
    "bold",
    "clear",
    "deep",
    "even",
    "fair",
    "grand",
    "honest",
)
_MAX_DEPTH = 8


class _Gen:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if ref != "#":
                for part in ref.lstrip("#/").split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
        return schema

    def value(self, schema: Any, depth: int = 0) -> Any:
        if schema is True or schema is None or schema == {}:
            return self.word()
        if schema is False:
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                sub = self.resolve(sub)
                for k, v in sub.items():
                    if k in ("properties", "$defs") and k in merged:
                        merged[k] = {**merged[k], **v}
                    elif k == "required" and k in merged:
                        merged[k] = list(dict.fromkeys([*merged[k], *v]))
                    else:
                        merged.setdefault(k, v)
            return self.value(merged, depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                # Deep in a recursive schema, prefer a null branch so the value stays finite.
                if depth >= _MAX_DEPTH:
                    nulls = [o for o in options if o.get("type") == "null"]
                    options = nulls or options
                return self.value(self.rng.choice(options), depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            kind = "null" if depth >= _MAX_DEPTH and "null" in kind else self.rng.choice(kinds)
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        return getattr(self, f"gen_{kind}", self.gen_string)(schema, depth)

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def gen_null(self, schema: dict[str, Any], depth: int) -> None:
        return None

    def gen_boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def gen_string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        r = self.rng
        if fmt == "date-time":
            day = f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
            return f"{day}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z"
        if fmt == "date":
            return f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if fmt == "time":
            return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00"
        if fmt == "email":
            return f"{self.word()}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self.word()}"
        if fmt == "uuid":
            h = f"{r.getrandbits(128):032x}"
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
        lo = int(schema.get("minLength", 0))
        hi = int(schema.get("maxLength", max(lo, 40)))
        text = " ".join(self.word() for _ in range(r.randint(1, 5)))
        while len(text) < lo:
            text += " " + self.word()
        return text[: max(hi, lo)] if len(text) > hi else text

    def gen_integer(self, schema: dict[str, Any], depth: int) -> int:
        lo = schema.get("minimum")
        hi = schema.get("maximum")
        if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
            lo = math.floor(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
            hi = math.ceil(schema["exclusiveMaximum"]) - 1
        lo = math.ceil(lo) if lo is not None else (0 if hi is None or hi >= 0 else int(hi) - 100)
        hi = math.floor(hi) if hi is not None else lo + 100
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = math.ceil(lo / step)
            last = math.floor(hi / step)
            if first <= last:
                return self.rng.randint(first, last) * step
        return self.rng.randint(lo, max(lo, hi))

    def gen_number(self, schema: dict[str, Any], depth: int) -> float | int:
        if schema.get("multipleOf"):
            return self.gen_integer(schema, depth)
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        lo = (
            float(lo)
            if lo is not None and not isinstance(lo, bool)
            else (0.0 if hi is None else float(hi) - 100)
        )
        hi = float(hi) if hi is not None and not isinstance(hi, bool) else lo + 100.0
        value = round(lo + (hi - lo) * (0.05 + 0.9 * self.rng.random()), 3)
        return min(max(value, lo), hi) if lo != hi else lo

    def gen_array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, len(prefix), 3 if depth < _MAX_DEPTH else 0)))
        n = self.rng.randint(max(lo, len(prefix) if lo else 0), max(lo, hi))
        items = schema.get("items", {})
        out: list[Any] = []
        attempts = 0
        while len(out) < n and attempts < n * 10 + 10:
            attempts += 1
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            value = self.value(sub, depth + 1)
            if schema.get("uniqueItems") and value in out:
                continue
            out.append(value)
        return out

    def gen_object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or (depth < _MAX_DEPTH and self.rng.random() < 0.5):
                out[name] = self.value(sub, depth + 1)
        lo = int(schema.get("minProperties", 0))
        extra = schema.get("additionalProperties", True)
        while len(out) < lo and extra is not False:
            out[f"{self.word()}_{len(out)}"] = self.value(extra if isinstance(extra, dict) else {}, depth + 1)
        return out


def generate(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value valid against `schema`, fixed by the generator's state."""
    return _Gen(schema, rng).value(schema)
