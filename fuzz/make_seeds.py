#!/usr/bin/env python3
"""Writes the committed seed corpus of each harness (fuzz/corpus/<harness>/). Run once after
a format change; the fuzzers add their finds to build-fuzz, not here.

The cursor seeds are made with the harness's key and scope, which needs the cursor format:
    [2][sort][created_at: 8 BE][id: 16][HMAC-SHA256(key, [2][kind][sort][list][created_at][id])[:12]]
key = HMAC-SHA256(secret, "commentd cursor key v2").
"""
import base64
import hashlib
import hmac
import json
import struct
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(harness: str, seeds):
    d = HERE / "corpus" / harness
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds):
        (d / f"seed{i:02d}").write_bytes(s if isinstance(s, bytes) else s.encode())


def jwt(payload: dict, secret="fuzz-secret", header=None) -> str:
    h = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


def cursor(sort: int, created_at: int, cid: bytes, kind=b"v",
           lst=uuid.UUID("0190a6c4-0000-7abc-8def-0123456789ab").bytes) -> str:
    key = hmac.new(b"fuzz-secret", b"commentd cursor key v2", hashlib.sha256).digest()
    pos = bytes([2, sort]) + struct.pack(">Q", created_at) + cid
    mac = hmac.new(key, bytes([2]) + kind + bytes([sort]) + lst + pos[2:], hashlib.sha256).digest()
    return b64url(pos + mac[:12])


USER = "0190a6c4-1234-7abc-8def-0123456789ab"
EXP = 4102444800  # 2100-01-01

write("json_body", [
    '{"content":"hello","parent_id":null}',
    '{"content":"a reply","parent_id":"0190a6c4-1234-7abc-8def-0123456789ab"}',
    '{"type":"like"}', '{"type":"like","type":"bogus"}', '{"status":"hidden"}',
    '{"a":[[[1]]]}', '{"a":[[[[1]]]]}', '[[[[[[[[[[', '{"a":{"b":{"c":{"d":{}}}}}',
    '{"content":"\\u00e9\\ud83d\\ude00 \\n"}', '{"x":1.5e300,"y":-0,"z":true,"w":false}',
    b'{"content":"\xff\xfe"}', '', '{} {}', '{"a":"\\u0000"}',
])
write("cursor", [
    cursor(0, 1_700_000_123_456, uuid.UUID(USER).bytes),
    cursor(1, 0, bytes(16)),
    cursor(0, 2**63 - 1, b"\xff" * 16),
    "AQ", "A" * 51, cursor(0, 5, bytes(16)) + "=",
])
write("jwt", [
    jwt({"sub": USER, "exp": EXP}),
    jwt({"sub": USER, "exp": EXP, "role": "moderator"}),
    jwt({"sub": USER, "exp": EXP, "nbf": 1.5}),
    jwt({"sub": USER, "exp": 1}),
    jwt({"sub": USER, "exp": EXP}, header={"alg": "none"}),
    jwt({"sub": "not-a-uuid", "exp": EXP}),
    jwt({"sub": USER, "exp": EXP}, header={"alg": "HS256", "crit": ["x"]}),
    jwt({"sub": USER, "exp": EXP}) + "=",
])
methods = bytes([0, 1, 2, 3, 4, 5])
targets = [
    "/v1/videos/0190a6c4-1234-7abc-8def-0123456789ab/comments?sort=oldest&limit=5&cursor=abc%2D_",
    "/v1/comments/0190a6c4-1234-7abc-8def-0123456789ab/replies?limit=100&utm=%41",
    "/v1/comments/0190a6c4-1234-7abc-8def-0123456789ab/reaction",
    "/v1/videos/x/stats", "//v1//comments//", "/comment/%zz/reaction?limit=0",
    "/v1/comments/0190A6C4-1234-7ABC-8DEF-0123456789AB/status?cursor=%", "/healthz?", "*", "",
]
write("query_path", [bytes([methods[i % 6]]) + t.encode() for i, t in enumerate(targets)])
write("http_request", [
    b"\x10GET /v1/comments/0190a6c4-1234-7abc-8def-0123456789ab HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\x20POST /v1/videos/0190a6c4-1234-7abc-8def-0123456789ab/comments HTTP/1.1\r\nHost: a\r\n"
    b"Content-Type: application/json\r\nContent-Length: 19\r\n\r\n{\"content\":\"hello\"}",
    b"\x05PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    b"GET /y HTTP/1.1\r\nHost: b\r\n\r\n",
    b"\x01GET / HTTP/1.0\r\n\r\n",
    b"\x03HEAD /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"\x07GET / HTTP/1.1\r\nX: \xff\x00\r\n folded\r\n\r\n",
])
