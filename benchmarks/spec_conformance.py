"""Spec conformance of the local server: its Files, Batches and webhook answers against OpenAI's OpenAPI spec.

    .venv/bin/python benchmarks/spec_conformance.py [--spec ../shared/openai-openapi/openapi.json.gz] [-v]

Drives a `LocalBatchServer` over HTTP through a scenario (upload, list, retrieve, content, delete; create,
list, retrieve, cancel, a completed, a failed, a cancelled and an expired batch; errors: 400, 404, 409)
and validates every JSON answer against the response schema the spec declares for its path, method and
status (`ErrorResponse` for errors). Webhook deliveries are validated against `WebhookBatch*`, and the
`/v1/webhook_endpoints` answers (absent from this spec; the SDK is generated from a newer one) against the
SDK's own models. Each response gives one check per schema rule set: the whole object, then each required
property, so a failure names the field. Two figures: as published, and with the spec's one documented defect
allowed for (optional fields not marked nullable although the service sends null, see the spec's README).
Every answer must also carry `x-request-id` (one more check each).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT.parent / "shared" / "openai-openapi" / "openapi.json.gz"


def _nullable_optional(schema: Any) -> Any:
    """The spec with every optional property also allowed to be null (its documented defect)."""
    if isinstance(schema, list):
        return [_nullable_optional(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable_optional(v) for k, v in schema.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        required = set(out.get("required", []))
        for name, sub in props.items():
            if name not in required:
                props[name] = {"anyOf": [sub, {"type": "null"}]}
    return out


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable` into JSON Schema; refs into `#/$defs/`."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: ("#/$defs/" + v.rsplit("/", 1)[-1] if k == "$ref" else _openapi_to_jsonschema(v))
        for k, v in node.items()
        if k not in ("nullable", "discriminator")
    }
    if node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


class Spec:
    """The response schemas of the spec, by (method, path template, status)."""

    def __init__(self, path: Path) -> None:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            self.raw = json.load(fh)
        self.defs = {k: _openapi_to_jsonschema(v) for k, v in self.raw["components"]["schemas"].items()}
        self.loose_defs = {k: _nullable_optional(v) for k, v in self.defs.items()}
        self.paths = self.raw["paths"]

    def schema_name(self, method: str, template: str, status: int) -> str | None:
        op = self.paths.get(template, {}).get(method.lower())
        if op is None:
            return None
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        if resp is None:
            return "ErrorResponse" if status >= 400 else None
        content = resp.get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref")
        return ref.rsplit("/", 1)[-1] if ref else None

    def validators(self, name: str) -> tuple[Draft202012Validator, Draft202012Validator]:
        strict = Draft202012Validator({"$defs": self.defs, "$ref": f"#/$defs/{name}"})
        loose = Draft202012Validator({"$defs": self.loose_defs, "$ref": f"#/$defs/{name}"})
        return strict, loose


class Tally:
    """Checks passed / total, as published and with the documented defect allowed for."""

    def __init__(self, spec: Spec, verbose: bool) -> None:
        self.spec = spec
        self.verbose = verbose
        self.strict = [0, 0]
        self.loose = [0, 0]
        self.failures: list[str] = []
        self.responses = 0
        self.deliveries = 0

    def _count(self, name: str, value: Any, label: str) -> None:
        strict_v, loose_v = self.spec.validators(name)
        schema = self.spec.defs[name]
        units: list[tuple[str, Any, Any, Any]] = [("", value, strict_v, loose_v)]
        for prop in schema.get("required", []):
            sub = (schema.get("properties") or {}).get(prop)
            if sub is None or not isinstance(value, dict):
                continue
            s = Draft202012Validator({"$defs": self.spec.defs, **sub})
            loose_sub = _nullable_optional(sub)
            lv = Draft202012Validator({"$defs": self.spec.loose_defs, **loose_sub})
            units.append((f".{prop}", value.get(prop, _MISSING), s, lv))
        for suffix, val, s, lv in units:
            for tally, validator, kind in ((self.strict, s, "published"), (self.loose, lv, "null-tolerant")):
                tally[1] += 1
                ok = val is not _MISSING and validator.is_valid(val)
                tally[0] += ok
                if not ok and (kind == "null-tolerant" or self.verbose):
                    err = "missing" if val is _MISSING else next(iter(validator.iter_errors(val))).message
                    self.failures.append(f"[{kind}] {label}{suffix} vs {name}: {err[:160]}")

    def response(self, method: str, template: str, r: httpx.Response) -> None:
        """Check one HTTP answer."""
        self.responses += 1
        label = f"{method} {template} {r.status_code}"
        for tally in (self.strict, self.loose):
            tally[1] += 1
            tally[0] += bool(r.headers.get("x-request-id"))
        if not r.headers.get("x-request-id"):
            self.failures.append(f"{label}: no x-request-id")
        name = self.spec.schema_name(method, template, r.status_code)
        if name is None or "json" not in r.headers.get("content-type", ""):
            return
        self._count(name, r.json(), label)

    def payload(self, name: str, value: Any, label: str) -> None:
        """Check a JSON value (a webhook delivery) against a named schema."""
        self.responses += 1
        self._count(name, value, label)

    def sdk_model(self, model: type, value: Any, label: str) -> None:
        """Check a value against an SDK pydantic model (routes the spec does not have)."""
        self.responses += 1
        for tally in (self.strict, self.loose):
            tally[1] += 1
            try:
                model.model_validate(value, strict=False)
                ok = set(value) <= set(model.model_fields)
            except Exception:
                ok = False
            tally[0] += ok
        if not ok:
            self.failures.append(f"{label} vs SDK {model.__name__}")


_MISSING = object()
_LINES = [
    {
        "custom_id": f"r{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}."}]},
    }
    for i in range(3)
]


def run(spec_path: Path, verbose: bool) -> Tally:
    """Drive the server through the scenario and tally every check."""
    from openai.types.webhooks import (
        DeletedWebhookEndpoint,
        WebhookEndpoint,
        WebhookEndpointTestResult,
        WebhookEndpointWithSecret,
    )

    from batch_openai.local import LocalBatchServer

    spec = Spec(spec_path)
    t = Tally(spec, verbose)
    deliveries: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            deliveries.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    jsonl = "".join(json.dumps(x) + "\n" for x in _LINES).encode()

    with LocalBatchServer(step_seconds=0.2, webhook_backoff_seconds=0.1) as server:
        h = httpx.Client(base_url=server.base_url, headers={"authorization": "Bearer sk-local"}, timeout=30)

        def call(method: str, template: str, url: str, **kw: Any) -> httpx.Response:
            r = h.request(method, url, **kw)
            t.response(method, template, r)
            return r

        def until_final(batch_id: str) -> dict[str, Any]:
            for _ in range(300):
                b = call("GET", "/batches/{batch_id}", f"/batches/{batch_id}").json()
                if b["status"] in ("completed", "failed", "expired", "cancelled"):
                    return b
                time.sleep(0.05)
            raise RuntimeError(f"batch {batch_id} never ended")

        # webhooks first, so every batch below is delivered
        ep = call_ep = h.post(
            "/webhook_endpoints",
            json={
                "event_types": ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"],
                "name": "conformance",
                "url": hook_url,
            },
        )
        t.sdk_model(WebhookEndpointWithSecret, call_ep.json(), "POST /webhook_endpoints")
        ep_id = ep.json()["id"]
        for method, url, model in (
            ("GET", f"/webhook_endpoints/{ep_id}", WebhookEndpoint),
            ("POST", f"/webhook_endpoints/{ep_id}", WebhookEndpoint),
            ("POST", f"/webhook_endpoints/{ep_id}/rotate_secret", WebhookEndpointWithSecret),
        ):
            r = h.request(
                method, url, json={"name": "renamed"} if method == "POST" and "rotate" not in url else {}
            )
            t.sdk_model(model, r.json(), f"{method} {url}")
        hook_secret = h.post(f"/webhook_endpoints/{ep_id}/rotate_secret", json={}).json()["signing_secret"]
        del hook_secret
        r = h.post(f"/webhook_endpoints/{ep_id}/test", json={"event_type": "batch.completed"})
        t.sdk_model(WebhookEndpointTestResult, r.json(), "POST /webhook_endpoints/{id}/test")
        listing = h.get("/webhook_endpoints").json()
        for item in listing["data"]:
            t.sdk_model(WebhookEndpoint, item, "GET /webhook_endpoints data[]")

        # files
        up = call("POST", "/files", "/files", files={"file": ("in.jsonl", jsonl)}, data={"purpose": "batch"})
        file_id = up.json()["id"]
        call("GET", "/files", "/files")
        call("GET", "/files", "/files", params={"order": "asc", "limit": 1})
        call("GET", "/files/{file_id}", f"/files/{file_id}")
        call("GET", "/files/{file_id}", "/files/file-nope")
        call("GET", "/files", "/files", params={"order": "sideways"})
        call("POST", "/files", "/files", files={"file": ("x.txt", b"hi")}, data={"purpose": "batch"})
        tmp = call("POST", "/files", "/files", files={"file": ("t.jsonl", jsonl)}, data={"purpose": "batch"})
        call("DELETE", "/files/{file_id}", f"/files/{tmp.json()['id']}")
        call("DELETE", "/files/{file_id}", "/files/file-nope")

        # batches
        def create(body: dict[str, Any]) -> httpx.Response:
            return call("POST", "/batches", "/batches", json=body)

        base = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        done = create({**base, "metadata": {"k": "v"}}).json()
        create({**base, "bogus": 1})
        create({**base, "completion_window": "1h"})
        create({**base, "metadata": {"k": 1}})
        create({**base, "input_file_id": "file-nope"})
        final = until_final(done["id"])
        call("GET", "/files/{file_id}", f"/files/{final['output_file_id']}")
        call("GET", "/batches", "/batches")
        call("GET", "/batches", "/batches", params={"limit": 1})
        call("GET", "/batches", "/batches", params={"limit": 0})
        call("GET", "/batches/{batch_id}", "/batches/batch_nope")
        call("POST", "/batches/{batch_id}/cancel", f"/batches/{done['id']}/cancel")  # 409
        bad = call(
            "POST",
            "/files",
            "/files",
            files={"file": ("bad.jsonl", b"not json\n")},
            data={"purpose": "batch"},
        ).json()
        until_final(create({**base, "input_file_id": bad["id"]}).json()["id"])
        victim = create(base).json()
        call("POST", "/batches/{batch_id}/cancel", f"/batches/{victim['id']}/cancel")
        until_final(victim["id"])
        lapsing = create(base).json()
        server.expire(lapsing["id"])
        until_final(lapsing["id"])
        call("POST", "/batches/{batch_id}/cancel", "/batches/batch_nope/cancel")

        deadline = time.time() + 30
        while time.time() < deadline and len(deliveries) < 5:  # test + completed, failed, cancelled, expired
            time.sleep(0.05)
        names = {
            "batch.completed": "WebhookBatchCompleted",
            "batch.failed": "WebhookBatchFailed",
            "batch.cancelled": "WebhookBatchCancelled",
            "batch.expired": "WebhookBatchExpired",
        }
        t.deliveries = len(deliveries)
        for raw in deliveries:
            event = json.loads(raw)
            t.payload(names[event["type"]], event, f"webhook {event['type']}")
        r = h.delete(f"/webhook_endpoints/{ep_id}")
        t.sdk_model(DeletedWebhookEndpoint, r.json(), "DELETE /webhook_endpoints/{id}")
    hook.shutdown()
    return t


def main() -> int:
    """Print the checks passed / total."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("-v", "--verbose", action="store_true", help="list failures as published too")
    args = parser.parse_args()
    t = run(args.spec, args.verbose)
    print(f"responses and deliveries checked: {t.responses} ({t.deliveries} webhook deliveries)")
    print(f"spec conformance, as published:          {t.strict[0]} of {t.strict[1]} checks")
    print(f"spec conformance, optional fields null: {t.loose[0]} of {t.loose[1]} checks")
    for line in t.failures:
        print("  -", re.sub(r"\s+", " ", line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
