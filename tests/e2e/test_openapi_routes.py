"""api/openapi.yaml is well-formed, covers the contract, and matches `commentd --print-routes`."""
from __future__ import annotations

import re
import subprocess

import pytest

from e2e_lib import REPO_ROOT

try:
    import yaml  # optional; the fallback parser below needs nothing
except ImportError:  # pragma: no cover
    yaml = None

OPENAPI = REPO_ROOT / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

CONTRACT_ROUTES = {
    "GET /v1/videos/{video_id}/comments",
    "POST /v1/videos/{video_id}/comments",
    "GET /v1/comments/{id}",
    "PATCH /v1/comments/{id}",
    "DELETE /v1/comments/{id}",
    "GET /v1/comments/{id}/replies",
    "PUT /v1/comments/{id}/reaction",
    "DELETE /v1/comments/{id}/reaction",
    "PATCH /v1/comments/{id}/status",
    "GET /v1/videos/{video_id}/stats",
    "POST /video/{video_id}/comment",
    "POST /comment/{id}/reaction",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}


def routes_fallback(text: str) -> set[str]:
    """Tiny parser for the `paths:` block: 2-space-indented path keys, 4-space method keys."""
    routes, in_paths, path = set(), False, None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            in_paths = line.strip() == "paths:"
            path = None
            continue
        if not in_paths:
            continue
        m = re.match(r"^  (['\"]?)(/[^'\"]*)\1:\s*$", line)
        if indent == 2 and m:
            path = m.group(2)
            continue
        m = re.match(r"^    ([a-z]+):\s*$", line)
        if indent == 4 and m and path and m.group(1) in HTTP_METHODS:
            routes.add(f"{m.group(1).upper()} {path}")
    return routes


def routes_yaml(doc: dict) -> set[str]:
    return {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item
            if m in HTTP_METHODS}


def openapi_routes() -> set[str]:
    text = OPENAPI.read_text()
    if yaml is not None:
        return routes_yaml(yaml.safe_load(text))
    return routes_fallback(text)


def normalize(route: str) -> str:
    """Parameter names don't matter for matching: `/v1/comments/{id}` == `/v1/comments/{x}`."""
    method, _, path = route.strip().partition(" ")
    return f"{method.upper()} {re.sub(r'{[^}/]+}', '{}', path.strip())}"


def test_openapi_covers_the_contract():
    text = OPENAPI.read_text()
    fallback = routes_fallback(text)
    assert {normalize(r) for r in fallback} == {normalize(r) for r in CONTRACT_ROUTES}
    if yaml is not None:
        assert routes_yaml(yaml.safe_load(text)) == fallback, "fallback parser disagrees"


@pytest.mark.skipif(yaml is None, reason="PyYAML not installed; structure check needs it")
def test_openapi_structure():
    doc = yaml.safe_load(OPENAPI.read_text())
    assert str(doc["openapi"]).startswith("3.1")
    schemas = doc["components"]["schemas"]
    for name in ("Comment", "CommentPage", "ReactionAccepted", "VideoStats", "Error"):
        assert name in schemas, name
    assert set(schemas["Comment"]["required"]) == {
        "id", "video_id", "user_id", "parent_id", "reply_to", "content", "status", "created_at",
        "updated_at", "edited", "likes", "dislikes", "reply_count", "user_reacted",
        "reaction_type"}

    # Every $ref resolves.
    def resolve(ref):
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert part in node, f"dangling $ref {ref}"
            node = node[part]
        return node

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)

    def response(r):
        return resolve(r["$ref"]) if "$ref" in r else r

    for path, item in doc["paths"].items():
        params = set(re.findall(r"{([^}]+)}", path))
        declared = {resolve(p["$ref"])["name"] if "$ref" in p else p["name"]
                    for p in item.get("parameters", []) if
                    (resolve(p["$ref"]) if "$ref" in p else p)["in"] == "path"}
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert op.get("operationId"), where
            responses = op["responses"]
            assert responses, where
            op_params = {(resolve(p["$ref"]) if "$ref" in p else p)["name"]
                         for p in op.get("parameters", [])
                         if (resolve(p["$ref"]) if "$ref" in p else p)["in"] == "path"}
            assert params == declared | op_params, f"{where}: path parameters"
            # Error responses use the Error schema.
            for code, r in responses.items():
                if str(code)[0] in "45":
                    schema = response(r)["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (where, code)
            writes = method in ("post", "put", "patch", "delete")
            if writes and path.startswith(("/v1", "/video", "/comment")):
                assert "401" in responses and "400" in responses, where
                assert op.get("security") == [{"bearerAuth": []}], where
            if "{id}" in path and path.startswith("/v1/comments"):
                assert "404" in responses, where
    assert "Retry-After" in doc["components"]["responses"]["TooManyRequests"]["headers"]


def test_served_routes_match_openapi(commentd_bin):
    p = subprocess.run([str(commentd_bin), "--print-routes"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, f"--print-routes exited {p.returncode}\n{p.stderr[-2000:]}"
    served = {normalize(ln) for ln in p.stdout.splitlines() if ln.strip()}
    for ln in p.stdout.splitlines():
        if ln.strip():
            assert re.match(r"^[A-Z]+ /\S*$", ln.strip()), f"unexpected line {ln!r}"
    documented = {normalize(r) for r in openapi_routes()}
    assert not served - documented, f"served but not in openapi.yaml: {sorted(served - documented)}"
    assert not documented - served, f"in openapi.yaml but not served: {sorted(documented - served)}"
